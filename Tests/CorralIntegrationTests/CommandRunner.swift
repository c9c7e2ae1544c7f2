import Foundation
import Synchronization
import Testing

/// The built products the tests drive: `corral` and `corral-probe`, built by SwiftPM next
/// to the test bundle because the test target depends on both executables.
enum Products {
    static let directory: URL = {
        // `swift test` on Linux runs .build/<triple>/debug/CorralPackageTests.xctest; fall
        // back to Bundle.main for runners that start the bundle differently.
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.executableURL?.deletingLastPathComponent(),
        ].compactMap { $0 }
        for candidate in candidates
        where FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("corral").path) {
            return candidate.standardizedFileURL
        }
        return candidates[0].standardizedFileURL
    }()

    static var corral: String { directory.appendingPathComponent("corral").path }
    static var probe: String { directory.appendingPathComponent("corral-probe").path }
}

/// How a finished command ended and what it printed.
struct CommandResult: Sendable, CustomStringConvertible {
    /// The exit code, or 128 + the signal when the process was killed by one (as a shell
    /// reports it; `corral` itself reports its command's signals that way).
    var status: Int32
    var stdout: String
    var stderr: String
    var elapsed: Duration
    var timedOut: Bool

    var stderrFirstLine: String {
        String(stderr.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }

    var description: String {
        "status \(status)\(timedOut ? " (timed out)" : "") after \(elapsed); stdout: \(stdout.debugDescription); "
            + "stderr: \(stderr.debugDescription)"
    }
}

enum CommandRunner {
    /// The environment `corral` starts with; tests add to it.
    /// Corral's state (audit log, staged writes) goes to a folder of this test process;
    /// sandboxes of `withSandbox` use their own.
    static let baseEnvironment = ["PATH": "/usr/bin:/bin", "CORRAL_STATE_DIR": testStateDirectory]

    static let testStateDirectory = NSTemporaryDirectory() + "corral-test-state-\(getpid())"

    /// Runs `argv` to completion with stdin on /dev/null, stdout and stderr captured in
    /// files under `captureFolder` (a pipe would keep a test waiting on any leaked
    /// process). Killed with SIGKILL after `timeout`; the result says so.
    static func run(_ argv: [String], environment: [String: String] = [:], captureFolder: String,
                    timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let capture = try Capture(in: captureFolder)
        defer { capture.close() }
        let process = capture.process(argv, environment: baseEnvironment.merging(environment) { _, new in new })

        let clock = ContinuousClock()
        let start = clock.now
        let timedOut = Mutex(false)
        let ended = Mutex<ContinuousClock.Instant?>(nil)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            // The end is taken here, on Foundation's thread: the task resumes only when the
            // (busy, parallel) cooperative pool gets to it, seconds later at times.
            process.terminationHandler = { _ in
                ended.withLock { $0 = clock.now }
                continuation.resume()
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            let pid = process.processIdentifier
            let seconds = Double(timeout.components.seconds)
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                guard process.isRunning else { return }
                timedOut.withLock { $0 = true }
                kill(pid, SIGKILL)
            }
        }
        let elapsed = (ended.withLock { $0 } ?? clock.now) - start

        let status = process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(status: status, stdout: try capture.stdout(), stderr: try capture.stderr(),
                             elapsed: elapsed, timedOut: timedOut.withLock { $0 })
    }

    /// Pids of live processes whose argv[0] is `path` (read from /proc/*/cmdline).
    static func processes(running path: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
            let argv0 = data.split(separator: 0, omittingEmptySubsequences: false).first ?? Data()
            return argv0 == Data(path.utf8)
        }
    }
}

/// A command's stdout and stderr captured in two files: never pipes, whose write ends a
/// process forked meanwhile by another test would inherit and hold open.
struct Capture {
    let outPath: String, errPath: String
    let out: FileHandle, err: FileHandle

    init(in folder: String) throws {
        let id = UUID().uuidString
        outPath = folder + "/stdout-" + id
        errPath = folder + "/stderr-" + id
        guard FileManager.default.createFile(atPath: outPath, contents: nil),
              FileManager.default.createFile(atPath: errPath, contents: nil),
              let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath)
        else { throw TestFailure("cannot create capture files in \(folder)") }
        self.out = out
        self.err = err
    }

    /// `argv` with stdin on /dev/null and its output going to these files (not started).
    func process(_ argv: [String], environment: [String: String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        return process
    }

    func stdout() throws -> String { try String(contentsOfFile: outPath, encoding: .utf8) }
    func stderr() throws -> String { try String(contentsOfFile: errPath, encoding: .utf8) }

    func close() {
        try? out.close()
        try? err.close()
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
}

/// A setup step of a test failed (not the behaviour under test).
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
