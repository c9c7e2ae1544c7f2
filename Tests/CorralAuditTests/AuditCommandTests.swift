import CorralSystem
import Foundation
import Testing
@testable import CorralAudit

/// `corral audit verify` and `show` as a user runs them: exit status and messages.
struct AuditCommandTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `corral` built next to the test bundle (the test target depends on it).
    static let corral: String = {
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                          Bundle.main.bundleURL]
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("corral").path) }
        return (found ?? candidates[0]).appendingPathComponent("corral").path
    }()

    func corral(_ arguments: [String], state: String) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.corral)
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin", "CORRAL_STATE_DIR": state]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test func verifyIntactLogWithTheStateDirectorysKey() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        let result = try corral(["audit", "verify"], state: scratch.state)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "ok: \(scratch.log): 12 events, 3 runs; 3 signatures and the head checked with key \(log.keyIdentity)\n")
    }

    /// No --key and no key in the state directory: the chain is checked, and the output says
    /// the signatures were not.
    @Test func verifyWithoutAnyKeySaysSo() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        let elsewhere = try Scratch()
        let result = try corral(["audit", "verify", scratch.log], state: elsewhere.state)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "ok: \(scratch.log): 12 events, 3 runs; 3 signatures and the head NOT checked (no key; pass --key)\n")
    }

    @Test func verifyNamesTheFirstBadLine() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.swapAt(5, 6)
        try scratch.write(lines: lines)
        let result = try corral(["audit", "verify", scratch.log], state: scratch.state)
        #expect(result.status == 1)
        #expect(result.stderr == "corral: audit log \(scratch.log):6: seq 7 where 6 was expected (a line removed, reordered or inserted)\n")
    }

    @Test func verifyWithAnotherKeyFails() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        let other = try Scratch()
        _ = try other.openLog()
        let result = try corral(["audit", "verify", scratch.log, "--key", AuditKey.publicKeyPath(folder: other.keys)],
                                state: scratch.state)
        #expect(result.status == 1)
        #expect(result.stderr == "corral: audit log \(scratch.log):4: signed by unknown key \(log.keyIdentity)\n")
    }

    @Test func unreadableLogIsCorralsError() throws {
        let scratch = try Scratch()
        let result = try corral(["audit", "verify", scratch.root + "/missing.jsonl"], state: scratch.state)
        #expect(result.status == 125)
        #expect(result.stderr.hasPrefix("corral: open audit log `\(scratch.root)/missing.jsonl`: No such file or directory"))
    }

    @Test func showFiltersByRun() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        let result = try corral(["audit", "show", "--run", "r-3"], state: scratch.state)
        #expect(result.status == 0)
        #expect(result.stdout.split(separator: "\n").map { String($0.dropFirst(28)) } == [
            "r-3  run.start  goal=build agent=test",
            "r-3  denial     syscall=connect errno=EPERM",
            "r-3  denial     path=/etc/shadow errno=EACCES",
            "r-3  run.end    exit=0 wall=1.25  [signed]",
        ])
    }
}
