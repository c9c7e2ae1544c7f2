import Foundation
import Testing

/// Corral's own failures: 125 with one `corral: ` line saying what and where, found
/// before anything runs; 126 and 127 when the command cannot be executed.
@Suite(.tags(.integration)) struct CorralFailureTests {
    @Test("an unknown manifest key exits 125 naming the file, line and key", arguments: RunAs.allCases)
    func unknownKey(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.extraFilesystemLines = ["  bogus: 1"]
            let path = try sandbox.write(manifest)
            let line = try #require(manifest.yaml.split(separator: "\n").firstIndex(of: "  bogus: 1")) + 1

            let result = try await sandbox.run(path, [sandbox.probe, "pid"])
            expectCorralFailure(result, status: 125, mentioning: ["\(path):\(line): filesystem.bogus"])
        }
    }

    @Test("a missing read path exits 125 naming the path and ENOENT", arguments: RunAs.allCases)
    func missingReadPath(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let missing = sandbox.root + "/missing"
            var manifest = Manifest(sandbox: sandbox)
            manifest.read.append(missing)
            let path = try sandbox.write(manifest)
            let line = try #require(manifest.yaml.split(separator: "\n").firstIndex(of: "    - \"\(missing)\"")) + 1
            let index = Manifest.systemRead.count + manifest.read.count - 1

            let result = try await sandbox.run(path, [sandbox.probe, "pid"])
            expectCorralFailure(result, status: 125,
                                mentioning: ["\(path):\(line): filesystem.read[\(index)]", "`\(missing)`", "(ENOENT)"])
        }
    }

    @Test("a command that does not exist exits 127", arguments: RunAs.allCases)
    func missingCommand(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let command = sandbox.root + "/doesnotexist"
            let manifest = try sandbox.write(Manifest(sandbox: sandbox))
            let result = try await sandbox.run(manifest, [command])
            expectCorralFailure(result, status: 127, mentioning: ["execve `\(command)`", "(ENOENT)"])
        }
    }

    @Test("a command outside filesystem.exec exits 126",
          .enabled(if: HostSupport.hasLandlock, "needs Landlock: only Landlock limits execution to filesystem.exec"),
          arguments: RunAs.allCases)
    func commandNotInExecList(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let command = sandbox.root + "/notallowed"
            try sandbox.copy("/usr/bin/true", to: command, mode: 0o755)
            let manifest = try sandbox.write(Manifest(sandbox: sandbox))
            let result = try await sandbox.run(manifest, [command])
            expectCorralFailure(result, status: 126, mentioning: ["execve `\(command)`", "(EACCES)"])
        }
    }
}
