import Foundation
import Testing

/// The manifest's path lists, seen from inside: mounts first, Landlock for `exec`.
@Suite(.tags(.integration)) struct FilesystemTests {
    @Test("a path outside filesystem.read is invisible", arguments: RunAs.allCases)
    func unlistedPathIsInvisible(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            // A sibling temp folder the user can read on the host, but not listed.
            let other = try Sandbox(runAs: runAs)
            defer { other.remove() }
            let secret = try other.writeFile("visible-on-host", "host\n")

            let control = try await sandbox.command([sandbox.probe, "open", secret])
            expectProbe(control, printed: "open \(secret) ok")

            expectProbe(try await sandbox.probe("open", "/root"), printed: "open /root errno=ENOENT")
            expectProbe(try await sandbox.probe("open", secret), printed: "open \(secret) errno=ENOENT")
        }
    }

    @Test("a denied file inside an allowed tree is unreadable", arguments: RunAs.allCases)
    func deniedFileIsUnreadable(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let denied = try sandbox.writeFile("secret.txt", "secret\n")
            let allowed = try sandbox.writeFile("allowed.txt", "allowed\n")
            var manifest = Manifest(sandbox: sandbox)
            manifest.deny = [denied]

            expectProbe(try await sandbox.probe("read", denied, manifest: manifest),
                        printed: "read \(denied) errno=EACCES")
            expectProbe(try await sandbox.probe("read", allowed, manifest: manifest),
                        printed: "read \(allowed) ok allowed\\n")
        }
    }

    @Test("a denied folder inside an allowed tree is unreadable", arguments: RunAs.allCases)
    func deniedFolderIsUnreadable(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let folder = try sandbox.makeFolder("private")
            let inside = try sandbox.writeFile("private/inside.txt", "secret\n")
            var manifest = Manifest(sandbox: sandbox)
            manifest.deny = [folder]

            expectProbe(try await sandbox.probe("read", folder, manifest: manifest),
                        printed: "read \(folder) errno=EACCES")
            expectProbe(try await sandbox.probe("read", inside, manifest: manifest),
                        printed: "read \(inside) errno=EACCES")
            expectProbe(try await sandbox.probe("ls", folder, manifest: manifest),
                        printed: "ls \(folder) errno=EACCES")
        }
    }

    @Test("a read path is not writable", arguments: RunAs.allCases)
    func readPathIsReadOnly(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let target = sandbox.root + "/x"
            expectProbe(try await sandbox.probe("write", target), printed: "write \(target) errno=EROFS")
            #expect(!FileManager.default.fileExists(atPath: target))
        }
    }

    @Test("a write path is writable, and the file lands on the host owned by the caller",
          arguments: RunAs.allCases)
    func writePathIsWritable(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let out = try sandbox.makeFolder("out", ownedByRunner: true)
            var manifest = Manifest(sandbox: sandbox)
            manifest.write = [out]
            let target = out + "/x"

            expectProbe(try await sandbox.probe("write", target, "hello", manifest: manifest),
                        printed: "write \(target) ok")
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "hello")
            let attributes = try FileManager.default.attributesOfItem(atPath: target)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == runAs.uid)
            #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value == runAs.gid)
        }
    }

    @Test("a program in a write path cannot be executed", arguments: RunAs.allCases)
    func writePathIsNotExecutable(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let out = try sandbox.makeFolder("out", ownedByRunner: true)
            let program = out + "/dropped"
            try sandbox.copy(Products.probe, to: program, mode: 0o755)
            var manifest = Manifest(sandbox: sandbox)
            manifest.write = [out]

            expectProbe(try await sandbox.probe("exec", program, manifest: manifest),
                        printed: "exec \(program) errno=EACCES")
        }
    }

    @Test("a file outside filesystem.exec cannot be executed",
          .enabled(if: HostSupport.hasLandlock, "needs Landlock: only Landlock limits execution to filesystem.exec"),
          arguments: RunAs.allCases)
    func programOutsideExecListIsDenied(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let program = sandbox.root + "/notallowed"
            try sandbox.copy("/usr/bin/true", to: program, mode: 0o755)

            let control = try await sandbox.command([sandbox.probe, "exec", program])
            #expect(control.status == 0 && control.stdout.isEmpty, "control: true runs outside: \(control)")

            expectProbe(try await sandbox.probe("exec", program), printed: "exec \(program) errno=EACCES")
        }
    }
}
