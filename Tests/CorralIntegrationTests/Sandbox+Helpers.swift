import Foundation
import Testing

/// A goal manifest for one test, written as YAML so that errors carry line numbers.
struct Manifest {
    static let goalID = "corral-itest"

    var read: [String]
    var write: [String] = []
    var exec: [String]
    var deny: [String] = []
    var envPass: [String] = []
    var envSet: [(String, String)] = []
    var wall: String?
    /// More `limits:` entries, as `key: value` YAML (e.g. "memory: 64MiB").
    var limits: [String] = []
    /// `monitor:` rules, each a YAML flow mapping (e.g. "{ when: limit(processes), then: kill }").
    var monitor: [String] = []
    /// Raw YAML lines appended under `filesystem:` (for error tests).
    var extraFilesystemLines: [String] = []
    /// `syscalls.watch`.
    var watch: [String] = []
    /// The lines under `network:` (YAML, indented by the writer).
    var network: [String] = ["mode: none"]
    /// Raw YAML appended at the top level (e.g. "approval: { commit: ask }").
    var extraTopLevel: [String] = []

    /// The base: the system's libraries and the sandbox folder readable, only the probe
    /// executable. Landlock is required whenever this kernel has it.
    init(sandbox: Sandbox) {
        read = [sandbox.root]
        exec = [sandbox.probe]
    }

    var yaml: String {
        var lines = [
            "version: 1",
            "goal:",
            "  id: \(Self.goalID)",
            "  intent: Corral integration test",
        ]
        if !envPass.isEmpty || !envSet.isEmpty {
            lines += ["run:", "  env:"]
            if !envPass.isEmpty { lines.append("    pass: [\(envPass.map(quoted).joined(separator: ", "))]") }
            if !envSet.isEmpty {
                lines.append("    set:")
                lines += envSet.map { "      \(quoted($0.0)): \(quoted($0.1))" }
            }
        }
        lines += [
            "filesystem:",
            "  read:",
        ]
        lines += Self.systemRead.map { "    - \($0)" }
        lines += read.map { "    - \(quoted($0))" }
        for (key, paths) in [("write", write), ("exec", exec), ("deny", deny)] where !paths.isEmpty {
            lines.append("  \(key):")
            lines += paths.map { "    - \(quoted($0))" }
        }
        lines += extraFilesystemLines
        lines += ["network:"] + network.map { "  " + $0 }
        let limitLines = (wall.map { ["wall: \($0)"] } ?? []) + limits
        if !limitLines.isEmpty { lines += ["limits:"] + limitLines.map { "  " + $0 } }
        if !monitor.isEmpty { lines += ["monitor:"] + monitor.map { "  - " + $0 } }
        if !watch.isEmpty { lines += ["syscalls:", "  watch: [\(watch.joined(separator: ", "))]"] }
        lines.append("landlock: \(HostSupport.hasLandlock ? "required" : "best-effort")")
        lines += extraTopLevel
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `filesystem.read` entries written before `read`: the system's programs and libraries.
    static let systemRead = [
        "/usr", "/etc", "{ path: /lib, optional: true }", "{ path: /lib64, optional: true }",
        "{ path: /bin, optional: true }",
    ]

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// A fresh, world-readable temp folder holding a copy of the probe and the test's
/// manifests, plus a private scratch folder (owned by the user corral runs as) for
/// captured output and reports. Both are removed by `withSandbox`.
final class Sandbox: Sendable {
    let runAs: RunAs
    /// Listed in `filesystem.read`; 0755 so the unprivileged run can use it.
    let root: String
    /// Never shown to the sandbox.
    let scratch: String

    var probe: String { root + "/corral-probe" }
    /// Corral's state directory for this sandbox's runs (staged writes), in the scratch folder.
    var stateDirectory: String { scratch + "/state" }

    /// This test process's environment with the sandbox's state directory, for a `corral`
    /// started with Foundation's Process.
    var processEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.merging(["CORRAL_STATE_DIR": stateDirectory]) { _, own in own }
    }

    init(runAs: RunAs) throws {
        self.runAs = runAs
        root = try Self.makeTemporaryFolder()
        do {
            scratch = try Self.makeTemporaryFolder()
        } catch {
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
        try setPermissions(root, 0o755)
        try chownToRunner(scratch)
        try copy(Products.probe, to: probe, mode: 0o755)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.removeItem(atPath: scratch)
    }

    // MARK: Files

    /// Writes the manifest into the sandbox folder and returns its path.
    @discardableResult
    func write(_ manifest: Manifest, named name: String = "manifest.yaml") throws -> String {
        try writeFile(name, manifest.yaml)
    }

    @discardableResult
    func writeFile(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
        let path = root + "/" + name
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw TestFailure("cannot create \(path)")
        }
        try setPermissions(path, mode)
        return path
    }

    /// A folder inside the sandbox folder; owned by the user corral runs as when `owned`.
    @discardableResult
    func makeFolder(_ name: String, ownedByRunner owned: Bool = false) throws -> String {
        let path = root + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try setPermissions(path, 0o755)
        if owned { try chownToRunner(path) }
        return path
    }

    /// Copies through `/bin/cp`, so the descriptor that writes the copy is never open in
    /// this test process: a child forked here by a concurrent test (Process, or a launch in
    /// the library tests) would inherit it until its exec, and executing the copy in that
    /// window fails with ETXTBSY.
    func copy(_ source: String, to destination: String, mode: Int) throws {
        try LabTool.run(["/bin/cp", "--", source, destination])
        try setPermissions(destination, mode)
    }

    /// Gives a folder and everything in it to the user corral runs as (`chown -R`).
    func chownTreeToRunner(_ path: String) throws {
        guard HostSupport.isRoot else { return }
        try LabTool.run(["/bin/chown", "-R", "\(runAs.uid):\(runAs.gid)", path])
    }

    // MARK: Running

    /// Runs `corral ARGUMENTS…` as this sandbox's user. With `inheritedFD7` the command is
    /// started through `sh`, which opens /etc/passwd as fd 7 first (Foundation's Process
    /// closes every descriptor above 2 itself).
    func corral(_ arguments: [String], environment: [String: String] = [:], inheritedFD7: Bool = false,
                timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await command([Products.corral] + arguments, environment: environment,
                          inheritedFD7: inheritedFD7, timeout: timeout)
    }

    /// `corral run --profile MANIFEST [--report R] -- ARGV…`
    func run(_ manifest: String, _ argv: [String], report: String? = nil, environment: [String: String] = [:],
             inheritedFD7: Bool = false, timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let reportOption = report.map { ["--report", $0] } ?? []
        return try await corral(["run", "--profile", manifest] + reportOption + ["--"] + argv,
                                environment: environment, inheritedFD7: inheritedFD7, timeout: timeout)
    }

    /// Runs the probe inside a sandbox made from `manifest` (the base manifest by default).
    func probe(_ arguments: String..., manifest: Manifest? = nil,
               environment: [String: String] = [:]) async throws -> CommandResult {
        let path = try write(manifest ?? Manifest(sandbox: self))
        return try await run(path, [probe] + arguments, environment: environment)
    }

    /// Any command as this sandbox's user, without Corral (the tests' controls).
    func command(_ argv: [String], environment: [String: String] = [:], inheritedFD7: Bool = false,
                 timeout: Duration = .seconds(30)) async throws -> CommandResult {
        var full = runAs.commandPrefix + argv
        if inheritedFD7 { full = ["/bin/sh", "-c", "exec 7</etc/passwd; exec \"$@\"", "sh"] + full }
        let environment = ["CORRAL_STATE_DIR": stateDirectory].merging(environment) { _, test in test }
        return try await CommandRunner.run(full, environment: environment, captureFolder: scratch, timeout: timeout)
    }

    // MARK: Private

    private static func makeTemporaryFolder() throws -> String {
        var template = Array("/tmp/corral-it.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
        guard made != nil else { throw TestFailure("mkdtemp: errno \(errno)") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func setPermissions(_ path: String, _ mode: Int) throws {
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    private func chownToRunner(_ path: String) throws {
        guard HostSupport.isRoot else { return }
        guard chown(path, runAs.uid, runAs.gid) == 0 else { throw TestFailure("chown \(path): errno \(errno)") }
    }
}

/// Runs `body` with a fresh sandbox folder for `runAs`, skipping the case first when this
/// host cannot run that variant, and removing the folders afterwards.
func withSandbox<T>(_ runAs: RunAs, _ body: (Sandbox) async throws -> T) async throws -> T {
    try runAs.requireAvailable()
    let sandbox = try Sandbox(runAs: runAs)
    defer { sandbox.remove() }
    return try await body(sandbox)
}

/// The probe ran (corral exited 0) and printed exactly `lines`.
func expectProbe(_ result: CommandResult, printed lines: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout == lines.map { $0 + "\n" }.joined(), "\(result)", sourceLocation: sourceLocation)
}

/// Corral itself failed with `status` and one `corral: ` line naming what went wrong.
func expectCorralFailure(_ result: CommandResult, status: Int32, mentioning parts: [String],
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "\(result)", sourceLocation: sourceLocation)
    let first = result.stderrFirstLine
    #expect(first.hasPrefix("corral: "), "\(result)", sourceLocation: sourceLocation)
    for part in parts {
        #expect(first.contains(part), "first stderr line lacks \(part.debugDescription): \(first)",
                sourceLocation: sourceLocation)
    }
}
