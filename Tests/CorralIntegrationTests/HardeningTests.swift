import Foundation
import Testing

/// The defenses of the security review (commit "Harden the launch…"), seen from inside real
/// sandboxes: set-id bits, symlinks planted in write paths, ptys, pinned
/// socket protocols and file masks under `read: [/]`.
///
/// Not covered here: the masking of host daemon sockets (`Corral.daemonSockets`). Every one
/// of them lives under /run, where a test must not create files, and which ones exist
/// depends on the host; `MaterializerTests.hiddenPathsAreMaskedWhereverABindShowsThem`
/// covers the mask ops with a socket in a temporary folder.
@Suite(.tags(.integration)) struct HardeningTests {
    /// The system's Python (installed by scripts/setup), for calls the probe has no command for.
    static let python = "/usr/bin/python3"

    /// The base manifest, plus the system's Python (its files lie under /usr, already read).
    static func pythonManifest(_ sandbox: Sandbox) -> Manifest {
        var manifest = Manifest(sandbox: sandbox)
        manifest.exec.append("/usr/bin/python3*")
        return manifest
    }

    /// `python3 -c SCRIPT ARGUMENTS…` inside a sandbox made from `manifest`.
    static func python(_ sandbox: Sandbox, _ script: String, _ arguments: [String] = [],
                       manifest: Manifest, environment: [String: String] = [:]) async throws -> CommandResult {
        let path = try sandbox.write(manifest)
        return try await sandbox.run(path, [python, "-c", script] + arguments, environment: environment)
    }

    /// Prints `LABEL ok` or `LABEL errno=NAME` for each attempt, like the probe.
    static let attempt = """
        import errno, os, socket, sys
        def attempt(label, call):
            try:
                call()
                print(label, "ok")
            except OSError as e:
                print(label, "errno=" + errno.errorcode[e.errno])

        """

    // MARK: - memfd execution

    /// An executable memfd would run code Landlock never checks. A run as root sets its pid
    /// namespace's vm.memfd_noexec to 2; rootless runs cannot (the knob is owned by host root),
    /// which README lists as a known limit.
    @Test("executing a memfd is refused (runs as root)")
    func memfdExecIsRefused() async throws {
        try await withSandbox(.root) { sandbox in
            let script = Self.attempt + """
                fd = os.memfd_create("x")
                os.write(fd, open("/usr/bin/true", "rb").read())
                attempt("memfd-exec", lambda: os.execv(f"/proc/self/fd/{fd}", ["true"]))
                """
            let result = try await Self.python(sandbox, script, manifest: Self.pythonManifest(sandbox))
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout == "memfd-exec errno=EACCES\n", "\(result)")
        }
    }

    // MARK: - Set-id bits

    /// A run as root is host uid 0 in its write paths: a set-uid file left there would be a
    /// root program on the host. Every way to set the bits is refused; the plain mode works.
    @Test("set-id bits are refused in chmod, fchmod, creating opens and mknod; plain modes work",
          arguments: RunAs.allCases)
    func setIDBitsAreRefused(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let out = try sandbox.makeFolder("out", ownedByRunner: true)
            var manifest = Self.pythonManifest(sandbox)
            manifest.write = [out]
            let script = Self.attempt + """
                d = sys.argv[1]
                p = d + "/tool"
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
                attempt("chmod 4755", lambda: os.chmod(p, 0o4755))
                attempt("chmod 2755", lambda: os.chmod(p, 0o2755))
                attempt("chmod 6755", lambda: os.chmod(p, 0o6755))
                fd = os.open(p, os.O_RDONLY)
                attempt("fchmod 4755", lambda: os.fchmod(fd, 0o4755))
                attempt("open O_CREAT 4755", lambda: os.close(os.open(d + "/created", os.O_CREAT | os.O_WRONLY, 0o4755)))
                attempt("open O_TMPFILE 2755", lambda: os.close(os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o2755)))
                attempt("mknod 2755", lambda: os.mknod(d + "/node", 0o100000 | 0o2755))
                attempt("chmod 755", lambda: os.chmod(p, 0o755))
                """
            let result = try await Self.python(sandbox, script, [out], manifest: manifest)
            expectProbe(result, printed:
                "chmod 4755 errno=EPERM",
                "chmod 2755 errno=EPERM",
                "chmod 6755 errno=EPERM",
                "fchmod 4755 errno=EPERM",
                "open O_CREAT 4755 errno=EPERM",
                "open O_TMPFILE 2755 errno=EPERM",
                "mknod 2755 errno=EPERM",
                "chmod 755 ok")
            #expect(result.stderr.isEmpty, "\(result)")

            // On the host: the file the sandbox made has mode 0755 exactly, owned by the caller,
            // and the refused calls created nothing.
            let attributes = try FileManager.default.attributesOfItem(atPath: out + "/tool")
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o755)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == runAs.uid)
            #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["tool"])
        }
    }

    // MARK: - Symlinks planted in write paths

    /// An earlier run with `write: [W]` could have replaced W/out with a symlink to any host
    /// folder; a later run listing W/out (as a write or a read path) must refuse it rather
    /// than bind the symlink's target.
    @Test("a symlink planted inside a write path is not followed",
          arguments: RunAs.allCases, ["write", "read"])
    func plantedSymlinkIsNotFollowed(_ runAs: RunAs, _ list: String) async throws {
        try await withSandbox(runAs) { sandbox in
            let other = try Sandbox(runAs: runAs)
            defer { other.remove() }
            let kept = try other.writeFile("keep.txt", "original\n")
            let otherFiles = try FileManager.default.contentsOfDirectory(atPath: other.root).sorted()

            let wdir = try sandbox.makeFolder("w", ownedByRunner: true)
            let planted = wdir + "/out"
            try FileManager.default.createSymbolicLink(atPath: planted, withDestinationPath: other.root)

            var manifest = Manifest(sandbox: sandbox)
            let index: Int
            if list == "write" {
                manifest.write = [wdir, planted]
                index = 1
            } else {
                manifest.write = [wdir]
                manifest.read.append(planted)
                index = Manifest.systemRead.count + manifest.read.count - 1
            }
            let path = try sandbox.write(manifest)
            let line = try #require(manifest.yaml.split(separator: "\n").lastIndex(of: "    - \"\(planted)\"")) + 1

            let result = try await sandbox.run(path, [sandbox.probe, "write", planted + "/keep.txt", "replaced"])
            expectCorralFailure(result, status: 125, mentioning: [
                // A write path is staged (an overlay), a read path bound.
                "\(path):\(line): filesystem.\(list)[\(index)]: \(list == "write" ? "stage writes to" : "bind") `\(planted)`: ",
                "crosses a symlink inside a write path", "(ELOOP)",
            ])
            #expect(result.stderr.contains("crosses a symlink inside a write path"))
            #expect(result.stderr.contains("ELOOP"))

            // The other folder is untouched, and the symlink is still where it was planted.
            #expect(try String(contentsOfFile: kept, encoding: .utf8) == "original\n")
            #expect(try FileManager.default.contentsOfDirectory(atPath: other.root).sorted() == otherFiles)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: planted) == other.root)
        }
    }

    /// A write path named through a symlink (`wl -> w`) still protects the nested entry
    /// `w/out`: declared paths are walked component by component, and no symlink is followed
    /// once the walk is inside a writable tree, however that tree was reached.
    @Test("a write path named through a symlink still protects nested entries",
          arguments: RunAs.allCases)
    func plantedSymlinkBeneathASymlinkedWritePath(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let other = try Sandbox(runAs: runAs)
            defer { other.remove() }
            try chownToRunner(other.root, runAs)
            let kept = try other.writeFile("keep.txt", "original\n", mode: 0o666)

            let wdir = try sandbox.makeFolder("w", ownedByRunner: true)
            let alias = sandbox.root + "/wl"
            try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: wdir)
            let planted = wdir + "/out"
            try FileManager.default.createSymbolicLink(atPath: planted, withDestinationPath: other.root)

            // Only the probe itself is read, so the sandbox builds wl and w/out as fresh
            // folders on its root tmpfs (with the whole folder read, the planted symlink would
            // also be seen inside, and the mount target would fail to resolve instead).
            var manifest = Manifest(sandbox: sandbox)
            manifest.read = [sandbox.probe]
            manifest.write = [alias, planted]
            let path = try sandbox.write(manifest)
            let result = try await sandbox.run(path, [sandbox.probe, "write", planted + "/keep.txt", "replaced"])
            let content = try String(contentsOfFile: kept, encoding: .utf8)

            #expect(result.status == 125, "\(result)")
            #expect(result.stderr.contains("crosses a symlink inside a write path"), "\(result)")
            #expect(content == "original\n")
        }
    }

    // MARK: - Terminals and sockets

    @Test("a pty can be opened (/dev/pts is not nodev)", arguments: RunAs.allCases)
    func ptyWorks(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let result = try await Self.python(sandbox, "import pty, os; m, s = pty.openpty(); print(os.ttyname(s))",
                                               manifest: Self.pythonManifest(sandbox))
            expectProbe(result, printed: "/dev/pts/0")
            #expect(result.stderr.isEmpty, "\(result)")
        }
    }

    /// openat2 hides its mode in a struct, so it gets ENOSYS (libc falls back to openat);
    /// TIOCSETD (line disciplines) is refused. Outside Corral both succeed.
    @Test("openat2 fails with ENOSYS and TIOCSETD with EPERM", arguments: RunAs.allCases)
    func openat2AndTIOCSETD(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let script = Self.attempt + """
                import ctypes, fcntl, pty, struct
                libc = ctypes.CDLL(None, use_errno=True)
                def openat2():
                    how = ctypes.create_string_buffer(24)  # struct open_how, all zero: O_RDONLY
                    fd = libc.syscall(437, -100, b"/", how, 24)  # SYS_openat2, AT_FDCWD
                    if fd < 0:
                        raise OSError(ctypes.get_errno(), "openat2")
                    os.close(fd)
                attempt("openat2", openat2)
                m, s = pty.openpty()
                attempt("TIOCSETD", lambda: fcntl.ioctl(s, 0x5423, struct.pack("i", 0)))  # N_TTY
                """
            let control = try await sandbox.command([Self.python, "-c", script])
            expectProbe(control, printed: "openat2 ok", "TIOCSETD ok")

            let result = try await Self.python(sandbox, script, manifest: Self.pythonManifest(sandbox))
            expectProbe(result, printed: "openat2 errno=ENOSYS", "TIOCSETD errno=EPERM")
            #expect(result.stderr.isEmpty, "\(result)")
        }
    }

    /// The socket rules pin the protocol: MPTCP (262) and SCTP (132) are refused by the
    /// filter; TCP and UDP by number or as 0 work.
    @Test("socket protocols are pinned: no MPTCP or SCTP", arguments: RunAs.allCases)
    func socketProtocolIsPinned(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let script = Self.attempt + """
                for family, fname in ((socket.AF_INET, "inet"), (socket.AF_INET6, "inet6")):
                    for kind, kname, proto in ((socket.SOCK_STREAM, "stream", 262), (socket.SOCK_STREAM, "stream", 132),
                                               (socket.SOCK_STREAM, "stream", 6), (socket.SOCK_STREAM, "stream", 0),
                                               (socket.SOCK_DGRAM, "dgram", 17)):
                        attempt("socket %s %s %d" % (fname, kname, proto),
                                lambda: socket.socket(family, kind, proto).close())
                """
            let result = try await Self.python(sandbox, script, manifest: Self.pythonManifest(sandbox))
            expectProbe(result, printed:
                "socket inet stream 262 errno=EPERM",
                "socket inet stream 132 errno=EPERM",
                "socket inet stream 6 ok",
                "socket inet stream 0 ok",
                "socket inet dgram 17 ok",
                "socket inet6 stream 262 errno=EPERM",
                "socket inet6 stream 132 errno=EPERM",
                "socket inet6 stream 6 ok",
                "socket inet6 stream 0 ok",
                "socket inet6 dgram 17 ok")
            #expect(result.stderr.isEmpty, "\(result)")
        }
    }

    // MARK: - Masks under read: [/]

    /// The mask's source file is made on the root tmpfs before `/` is bound over it, so a
    /// denied file works with `read: [/]` too.
    @Test("a denied file is unreadable under read: [/]", arguments: RunAs.allCases)
    func deniedFileUnderReadRoot(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let denied = try sandbox.writeFile("secret.txt", "secret\n", mode: 0o644)
            let allowed = try sandbox.writeFile("allowed.txt", "allowed\n", mode: 0o644)
            var manifest = Manifest(sandbox: sandbox)
            manifest.read.insert("/", at: 0)
            manifest.deny = [denied]

            let control = try await sandbox.command([sandbox.probe, "read", denied])
            expectProbe(control, printed: "read \(denied) ok secret\\n")

            expectProbe(try await sandbox.probe("read", denied, manifest: manifest),
                        printed: "read \(denied) errno=EACCES")
            expectProbe(try await sandbox.probe("read", allowed, manifest: manifest),
                        printed: "read \(allowed) ok allowed\\n")
        }
    }

    /// With `read: [/]` a denied file under /tmp is hidden anyway (the sandbox has its own
    /// /tmp): no mask is needed there, and the run must not fail trying to place one.
    @Test("a denied file hidden by the sandbox's own /tmp does not fail the run",
          arguments: RunAs.allCases)
    func deniedFileUnderPrivateTmp(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let other = try Sandbox(runAs: runAs)
            defer { other.remove() }
            let denied = try other.writeFile("secret.txt", "secret\n", mode: 0o644)
            var manifest = Manifest(sandbox: sandbox)
            manifest.read.insert("/", at: 0)
            manifest.deny = [denied]

            let result = try await sandbox.probe("read", denied, manifest: manifest)
            expectProbe(result, printed: "read \(denied) errno=ENOENT")
        }
    }
}

private func chownToRunner(_ path: String, _ runAs: RunAs) throws {
    guard HostSupport.isRoot else { return }
    guard chown(path, runAs.uid, runAs.gid) == 0 else { throw TestFailure("chown \(path): errno \(errno)") }
}
