import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc
import Testing
@testable import CorralSystem

/// Materialisation against a real temporary tree: canonical sources, mount-point creation,
/// masks only where something is visible, optional paths skipped, errors naming the entry.
struct MaterializerTests {
    final class Tree {
        let root: String
        init() throws {
            var template = Array("/tmp/corral-materialize-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            root = String(cString: try #require(made))
            mkdir("\(root)/app", 0o755)
            mkdir("\(root)/app/out", 0o755)
            mkdir("\(root)/app/keys", 0o755)
            close(open("\(root)/app/secret.txt", O_CREAT | O_WRONLY, 0o600))
            symlink("\(root)/app", "\(root)/link")
        }
        deinit { _ = system("rm -rf '\(root)'") }
    }

    static func prepare(_ yaml: String, in tree: Tree, hiddenPaths: [String] = []) throws -> PreparedLaunch {
        let profile = try ProfileLoader.load(contents: yaml, file: "t.yaml", directory: tree.root, home: nil)
        let plan = try PlanCompiler.compile(profile, command: ["/bin/true"],
                                            host: HostFacts(uid: 0, gid: 0, landlockABI: 0))
        // Write paths are staged overlays; the layers themselves are the supervisor's business.
        return try Materializer.prepare(plan, environment: ["KEEP": "1", "DROP": "2"], hiddenPaths: hiddenPaths,
                                        staging: { StagingFolders(upper: "/staging/\($0)/upper", work: "/staging/\($0)/work") })
    }

    static func ops(_ prepared: PreparedLaunch) -> [String] {
        prepared.mountOps.map { op in
            let kind: String
            switch op.kind {
            case CORRAL_MOUNT_MKDIR: kind = "mkdir"
            case CORRAL_MOUNT_MKFILE: kind = "mkfile"
            case CORRAL_MOUNT_BIND: kind = (op.flags & UInt32(CORRAL_MOUNT_F_RDONLY.rawValue)) != 0 ? "ro-bind" : "bind"
            case CORRAL_MOUNT_TMPFS: kind = "tmpfs"
            case CORRAL_MOUNT_OVERLAY: kind = "overlay"
            case CORRAL_MOUNT_MASK: kind = (op.flags & UInt32(CORRAL_MOUNT_F_DIRECTORY.rawValue)) != 0 ? "mask-dir" : "mask-file"
            default: kind = "other"
            }
            return "\(kind) /\(op.target)"
        }
    }

    @Test func mountPointsMasksAndBindsComeInOrder() throws {
        let tree = try Tree()
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              read: [./link]
              write: [./app/out]
              deny: [./app/secret.txt, ./app/keys, /etc/not-visible-anyway]
            """, in: tree)
        let r = tree.root
        let ops = Self.ops(prepared).filter { $0.contains(r) }
        // /tmp is a fresh tmpfs inside the sandbox: the folders leading to the binds are made
        // in it. The denied file and folder are visible through ./link (a symlink to ./app),
        // so they are masked there; /etc/… is not visible at all, so it needs no mask.
        #expect(ops == [
            "mkdir \(r)", "mkdir \(r)/link", "ro-bind \(r)/link",
            "mkdir \(r)/app", "mkdir \(r)/app/out", "overlay \(r)/app/out",
            "mask-file \(r)/link/secret.txt", "mask-dir \(r)/link/keys",
        ])
    }

    @Test func bindSourcesAreCanonicalWithIdentity() throws {
        let tree = try Tree()
        let prepared = try Self.prepare("goal: { id: t }\nlandlock: best-effort\nfilesystem: { read: [./link] }", in: tree)
        let bind = try #require(prepared.mountOps.first { $0.kind == CORRAL_MOUNT_BIND && $0.target.hasSuffix("link") })
        #expect(bind.source == "\(tree.root)/app")
        var st = stat()
        stat("\(tree.root)/app", &st)
        #expect(bind.inode == UInt64(st.st_ino))
        #expect(bind.device == UInt64(st.st_dev))
    }

    @Test func missingPathIsAnErrorUnlessOptional() throws {
        let tree = try Tree()
        #expect {
            _ = try Self.prepare("goal: { id: t }\nlandlock: best-effort\nfilesystem:\n  read: [./nope]", in: tree)
        } throws: { error in
            let error = try #require(error as? CorralError)
            return error.description == "t.yaml:4: filesystem.read[0]: bind `\(tree.root)/nope`: No such file or directory (ENOENT)\n"
                + "  hint: create it, fix the path, or mark the entry optional: {path: \(tree.root)/nope, optional: true}"
        }
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              read: [{ path: ./nope, optional: true }]
            """, in: tree)
        #expect(prepared.skipped == ["\(tree.root)/nope"])
    }

    @Test func environmentHoldsOnlyWhatTheManifestNames() throws {
        let tree = try Tree()
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            run: { env: { pass: [KEEP, ABSENT], set: { PATH: /opt/bin } } }
            """, in: tree)
        #expect(prepared.environment == ["KEEP=1", "PATH=/opt/bin"])
        #expect(prepared.execCandidates == ["/bin/true"])
    }

    /// Host daemon sockets (`Corral.daemonSockets` in a real run) are masked under every bind
    /// that shows them, whatever the manifest says; absent or invisible ones need no mask.
    /// (The real sockets live under /run, where tests must not create files.)
    @Test func hiddenPathsAreMaskedWhereverABindShowsThem() throws {
        let tree = try Tree()
        let r = tree.root
        #expect(mknod("\(r)/app/daemon.sock", S_IFSOCK | 0o600, 0) == 0)
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              read: [./link, ./app/keys]
            """, in: tree, hiddenPaths: ["\(r)/app/daemon.sock", "\(r)/app/absent.sock", "/etc/not-visible.sock"])
        #expect(Self.ops(prepared).filter { $0.hasPrefix("mask") } == ["mask-file \(r)/link/daemon.sock"])
    }

    /// Corral's cache folder may not lie in a write path, nor a write path in it.
    @Test func entriesBeneathAWritePathAreNoFollow() throws {
        let tree = try Tree()
        let r = tree.root
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              write: [./app, ./app/out]
              read: [./app/keys]
            """, in: tree)
        let noFollow = UInt32(CORRAL_MOUNT_F_NOFOLLOW.rawValue)
        let binds = prepared.mountOps.filter {
            ($0.kind == CORRAL_MOUNT_BIND || $0.kind == CORRAL_MOUNT_OVERLAY) && $0.target.hasPrefix(String(r.dropFirst()))
        }
            .map { ("/" + $0.target, $0.flags & noFollow != 0) }
        #expect(binds.map(\.0) == ["\(r)/app", "\(r)/app/keys", "\(r)/app/out"])
        #expect(binds.map(\.1) == [false, true, true])
    }
}

// MARK: - Paths named through symlinks

extension MaterializerTests {
    /// A read path that *is* the denied object under another name (a symlink to it) is masked
    /// at that name too.
    @Test func aReadPathThatIsTheDeniedObjectIsMasked() throws {
        let tree = try Tree()
        symlink("\(tree.root)/app/secret.txt", "\(tree.root)/secret-link")
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              read: [./secret-link]
              deny: [./app/secret.txt]
            """, in: tree)
        #expect(Self.ops(prepared).filter { $0.hasPrefix("mask") } == ["mask-file \(tree.root)/secret-link"])
    }
}

extension MaterializerTests {
    /// A write path named through a symlink (`link -> app`) still makes entries inside the
    /// writable tree no-follow: the walk judges by device and inode, not by the spelling.
    @Test func entriesInsideAWritePathNamedThroughASymlinkAreNoFollow() throws {
        let tree = try Tree()
        let r = tree.root
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              write: [./link]
              read: [./app/keys]
            """, in: tree)
        let noFollow = UInt32(CORRAL_MOUNT_F_NOFOLLOW.rawValue)
        let keys = try #require(prepared.mountOps.first { $0.kind == CORRAL_MOUNT_BIND && $0.target.hasSuffix("app/keys") })
        #expect(keys.target == String(r.dropFirst()) + "/app/keys")
        #expect(keys.flags & noFollow != 0)
    }
}
