import CCap
import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc
import SystemPackage

/// A plan made concrete for this host, in the parent, before clone: host paths resolved
/// (canonical path, device, inode), exec globs expanded, the Landlock ruleset built, the
/// seccomp programs compiled, argv/envp and the PATH search prepared.
public final class PreparedLaunch: @unchecked Sendable {
    // @unchecked: filled in by `Materializer.prepare` on one thread, read-only afterwards;
    // the Landlock ruleset descriptor is closed only by deinit.
    struct MountOp {
        var kind: corral_mount_kind
        var flags: UInt32
        var mode: UInt32 = 0
        /// tmpfs: size in MiB; 0 = the kernel's default.
        var sizeMiB: UInt32 = 0
        var source: String?
        var target: String
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var upper: String?
        var work: String?
    }

    public let plan: LaunchPlan
    var mountOps: [MountOp] = []
    var landlockRuleset: FileDescriptor?
    var landlockChildRules: [(path: String, access: UInt64)] = []
    public internal(set) var seccompPrograms: [SeccompProgram] = []
    /// The watch program (installed last, with a listener), when the plan watches syscalls.
    public internal(set) var watchProgram: SeccompProgram?
    /// The watched syscalls of this architecture by number, for naming notifications.
    public internal(set) var watchedSyscalls: [Int32: String] = [:]
    public internal(set) var execCandidates: [String] = []
    var environment: [String] = []
    public let capLastCap: UInt32
    /// Host paths skipped because they are optional and missing (for the report).
    public internal(set) var skipped: [String] = []
    /// The write paths mounted as overlays: the real folder (canonical) and its staging layer.
    public internal(set) var stagedLayers: [StagedLayer] = []

    init(plan: LaunchPlan) {
        self.plan = plan
        self.capLastCap = UInt32(max(0, cap_max_bits() - 1))
    }

    deinit { landlockRuleset?.closeChecked() }
}

/// Resolves the manifest's host paths once per launch: each declared path is walked and
/// opened once (`openDeclaredPath`), and the bind and the Landlock rule of the same path share
/// the result. Failures become one kind of `CorralError`, naming the manifest entry.
final class DeclaredPathResolver {
    struct Resolved {
        /// The canonical path (the child re-opens it with RESOLVE_NO_SYMLINKS).
        var path: String
        var identity: FileIdentity
        /// Reached through a writable tree: the mount target must not follow symlinks either.
        var insideWritable: Bool
        /// An O_PATH handle, for Landlock rules; closed with the resolver.
        var handle: FileDescriptor
    }

    private let writable: WritableTrees
    private var cache: [String: Resolved] = [:]
    /// Optional paths that did not exist.
    private(set) var skipped: [String] = []

    init(writeRoots: [String]) {
        writable = WritableTrees(writeRoots)
    }

    deinit { for resolved in cache.values { resolved.handle.closeChecked() } }

    /// The resolved path, or nil for a missing optional one.
    /// - Throws: `CorralError` naming `origin`, the path and the errno, with a hint.
    func resolve(_ path: String, optional: Bool, origin: ManifestLocation?,
                 operation: String) throws(CorralError) -> Resolved? {
        if let hit = cache[path] { return hit }
        do throws(Errno) {
            let (fd, insideWritable) = try openDeclaredPath(path, writable: writable)
            let identity: FileIdentity
            do { identity = try FileIdentity(of: fd) } catch {
                fd.closeChecked()
                throw error
            }
            var real = canonicalPath(of: fd) ?? ""
            if real.isEmpty {
                do { real = try canonicalPath(path) } catch {
                    fd.closeChecked()
                    throw error
                }
            }
            let resolved = Resolved(path: real, identity: identity, insideWritable: insideWritable, handle: fd)
            cache[path] = resolved
            return resolved
        } catch {
            if error == .tooManySymbolicLinkLevels || error == .improperLink {
                throw CorralError(.profileInvalid, operation: operation, path: path, errno: error, location: origin,
                                  message: "the path crosses a symlink inside a write path",
                                  hint: "a sandboxed run may have planted it; remove the symlink or list its target instead")
            }
            if optional && (error == .noSuchFileOrDirectory || error == .notDirectory) {
                if !skipped.contains(path) { skipped.append(path) }
                return nil
            }
            throw CorralError(.profileInvalid, operation: operation, path: path, errno: error, location: origin,
                              hint: error == .noSuchFileOrDirectory
                                  ? "create it, fix the path, or mark the entry optional: {path: \(path), optional: true}"
                                  : nil)
        }
    }
}

public enum Materializer {
    /// - Parameters:
    ///   - environment: the caller's environment, for `env.pass` and `env.secrets`.
    ///   - hiddenPaths: host paths masked wherever a bind would show them (daemon sockets),
    ///     whatever the manifest says.
    /// - Throws: `CorralError` naming the manifest entry and the errno when a path cannot be used.
    ///   - staging: the staging layer of each `.overlay` mount (by layer index); required
    ///     when the plan stages writes.
    public static func prepare(_ plan: LaunchPlan, environment: [String: String],
                               hiddenPaths: [String] = [],
                               staging: ((Int) -> StagingFolders)? = nil) throws(CorralError) -> PreparedLaunch {
        let prepared = PreparedLaunch(plan: plan)
        // libseccomp needs ~1 ms for the default policy; it runs on a second core while the
        // paths are resolved. (A cache of compiled programs on disk was tried and removed: a
        // folder the caller can write is one some sandbox may write, and a planted filter is
        // an escape.)
        final class Compiled: @unchecked Sendable {  // written by the compiling thread before join
            var programs: [SeccompProgram] = []
            var failure: CorralError?
            var watch: (program: SeccompProgram, syscalls: [Int32: String])?
        }
        let compiled = Compiled()
        let seccomp = plan.seccomp
        let compile = { @Sendable in
            do throws(CorralError) {
                compiled.programs = try SeccompCompiler.compile(seccomp)
                compiled.watch = try SeccompCompiler.compileWatch(seccomp)
            } catch {
                compiled.failure = error
            }
        }
        // The default policy's programs come precompiled: loading them costs less than
        // starting a thread, so only a real libseccomp compile gets the second core.
        let precompiled = seccomp.manifestAllows.isEmpty && seccomp.manifestDenials.isEmpty && seccomp.watched.isEmpty
            && seccomp.base == .default
        let compiling = precompiled ? nil : HostEnvironment.startJoinableThread(compile)
        if precompiled { compile() }
        defer { if let compiling { HostEnvironment.join(compiling) } }
        let paths = DeclaredPathResolver(writeRoots: writeRoots(of: plan))
        try prepareMounts(plan, hiddenPaths: hiddenPaths, paths: paths, staging: staging, into: prepared)
        if plan.landlock.abi >= 1 { try prepareLandlock(plan, paths: paths, into: prepared) }
        prepared.skipped = paths.skipped
        prepareCommand(plan, environment: environment, into: prepared)
        if let compiling { HostEnvironment.join(compiling) }
        if let failure = compiled.failure { throw failure }
        prepared.seccompPrograms = compiled.programs
        prepared.watchProgram = compiled.watch?.program
        prepared.watchedSyscalls = compiled.watch?.syscalls ?? [:]
        return prepared
    }

    // MARK: - Mounts

    private static func prepareMounts(_ plan: LaunchPlan, hiddenPaths: [String], paths: DeclaredPathResolver,
                                      staging: ((Int) -> StagingFolders)?,
                                      into prepared: PreparedLaunch) throws(CorralError) {
        // Folders Corral itself made (on the root tmpfs or a fresh tmpfs): mount points may be
        // created in them. Inside a bound host tree, every target must already exist.
        var ownFolders: Set<String> = ["/"]
        var hostTrees: [String] = []
        var binds: [(target: String, source: String)] = []

        func insideHostTree(_ path: String) -> Bool {
            // The deepest enclosing mount decides.
            let host = hostTrees.filter { PlanCompiler.isBeneath(path, $0) && path != $0 }
                .max { $0.count < $1.count }
            let own = ownFolders.filter { PlanCompiler.isBeneath(path, $0) && path != $0 }
                .max { $0.count < $1.count } ?? ""
            guard let host else { return false }
            return host.count > own.count
        }

        func makeParents(of path: String) {
            var prefix = ""
            let parts = path.split(separator: "/").dropLast()
            for part in parts {
                prefix.append("/")
                prefix.append(String(part))
                if ownFolders.contains(prefix) || insideHostTree(prefix) { continue }
                if hostTrees.contains(prefix) { continue }
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_MKDIR, flags: 0, mode: 0o755, target: rel(prefix)))
                ownFolders.insert(prefix)
            }
        }

        func makeLeaf(_ path: String, directory: Bool) {
            guard !insideHostTree(path), path != "/" else { return }
            makeParents(of: path)
            if directory {
                if !ownFolders.contains(path) {
                    prepared.mountOps.append(.init(kind: CORRAL_MOUNT_MKDIR, flags: 0, mode: 0o755, target: rel(path)))
                }
            } else {
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_MKFILE, flags: 0, mode: 0o600, target: rel(path)))
            }
        }

        // A denied object is hidden wherever a bind shows it: under its own path, and under any
        // other declared path whose canonical source contains it (a read path reached through
        // a symlink shows the same files under another name).
        func maskEverywhere(_ path: String, flags: UInt32) {
            guard let (real, identity) = try? canonicalPathAndIdentity(path) else { return }
            var maskFlags = flags | UInt32(CORRAL_MOUNT_F_NOEXEC.rawValue)
            if identity.isDirectory { maskFlags |= UInt32(CORRAL_MOUNT_F_DIRECTORY.rawValue) }
            var targets: [String] = []
            for bind in binds where PlanCompiler.isBeneath(real, bind.source) {
                let suffix = real.dropFirst(bind.source == "/" ? 0 : bind.source.count)
                // String + String: `+ suffix` (a Substring) is the generic append, whose first
                // use looks a conformance up at run time.
                let target = bind.target == "/" ? String(suffix) : bind.target + String(suffix)
                if !targets.contains(target) { targets.append(target) }
            }
            // Only where a bind really shows it: Corral's own /tmp or /dev may cover the spot.
            for target in targets where insideHostTree(target) || binds.contains(where: { $0.target == target }) {
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_MASK, flags: maskFlags, target: rel(target)))
            }
        }

        let writable = writeRoots(of: plan)
        for step in plan.mounts {
            var flags: UInt32 = UInt32(CORRAL_MOUNT_F_NOSUID.rawValue | CORRAL_MOUNT_F_NODEV.rawValue)
            if step.noexec { flags |= UInt32(CORRAL_MOUNT_F_NOEXEC.rawValue) }
            if writable.contains(where: { PlanCompiler.isBeneath(step.path, $0) && step.path != $0 }) {
                flags |= UInt32(CORRAL_MOUNT_F_NOFOLLOW.rawValue)
            }
            switch step.kind {
            case .bind, .deviceBind:
                let readOnly: Bool
                if case .bind(let ro) = step.kind { readOnly = ro } else { readOnly = false }
                guard let resolved = try paths.resolve(step.path, optional: step.optional, origin: step.origin,
                                                       operation: "bind") else { continue }
                if readOnly { flags |= UInt32(CORRAL_MOUNT_F_RDONLY.rawValue) }
                if resolved.insideWritable { flags |= UInt32(CORRAL_MOUNT_F_NOFOLLOW.rawValue) }
                if case .deviceBind = step.kind { flags &= ~UInt32(CORRAL_MOUNT_F_NODEV.rawValue) }
                makeLeaf(step.path, directory: resolved.identity.isDirectory)
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_BIND, flags: flags, source: resolved.path,
                                               target: rel(step.path), device: resolved.identity.device,
                                               inode: resolved.identity.inode))
                if case .bind = step.kind {
                    hostTrees.append(step.path)
                    ownFolders.remove(step.path)  // the bind covers the folder Corral made
                    binds.append((step.path, resolved.path))
                }
            case .overlay(let layer):
                guard let resolved = try paths.resolve(step.path, optional: step.optional, origin: step.origin,
                                                       operation: "stage writes to") else { continue }
                guard resolved.identity.isDirectory else {
                    throw CorralError(.profileInvalid, operation: "stage writes to", path: step.path, location: step.origin,
                                      message: "staged writes need a folder, and this is a file",
                                      hint: "list the folder that holds it, or set `approval: { commit: direct }` to write in place")
                }
                guard let folders = staging?(layer) else {
                    throw CorralError(.supervisionFailed, operation: "stage writes to", path: step.path,
                                      message: "no staging folder was given for the run")
                }
                if resolved.insideWritable { flags |= UInt32(CORRAL_MOUNT_F_NOFOLLOW.rawValue) }
                makeLeaf(step.path, directory: true)
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_OVERLAY, flags: flags, source: resolved.path,
                                               target: rel(step.path), device: resolved.identity.device,
                                               inode: resolved.identity.inode, upper: folders.upper, work: folders.work))
                prepared.stagedLayers.append(StagedLayer(layer: layer, path: step.path, real: resolved.path,
                                                         folders: folders))
                hostTrees.append(step.path)
                ownFolders.remove(step.path)
                binds.append((step.path, resolved.path))
            case .tmpfs(let mode):
                makeLeaf(step.path, directory: true)
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_TMPFS, flags: flags, mode: mode, sizeMiB: step.sizeMiB ?? 0,
                                               target: rel(step.path)))
                ownFolders.insert(step.path)
                hostTrees.removeAll { $0 == step.path }
            case .proc:
                makeLeaf(step.path, directory: true)
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_PROC, flags: flags, target: rel(step.path)))
            case .devpts:
                makeLeaf(step.path, directory: true)
                // Not nodev: /dev/ptmx (a symlink into it) must open.
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_DEVPTS, flags: flags & ~UInt32(CORRAL_MOUNT_F_NODEV.rawValue),
                                               target: rel(step.path)))
            case .symlink(let to):
                makeParents(of: step.path)
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_SYMLINK, flags: 0, source: to, target: rel(step.path)))
            case .mask:
                maskEverywhere(step.path, flags: flags)
            case .readOnly:
                prepared.mountOps.append(.init(kind: CORRAL_MOUNT_READONLY,
                                               flags: flags | (step.optional ? UInt32(CORRAL_MOUNT_F_OPTIONAL.rawValue) : 0),
                                               target: rel(step.path)))
            }
        }
        let base = UInt32(CORRAL_MOUNT_F_NOSUID.rawValue | CORRAL_MOUNT_F_NODEV.rawValue)
        for path in hiddenPaths { maskEverywhere(path, flags: base) }
    }

    /// The folders the sandbox can write: beneath them no symlink is trusted.
    static func writeRoots(of plan: LaunchPlan) -> [String] {
        plan.mounts.compactMap { step in
            switch step.kind {
            case .bind(readOnly: false), .overlay: step.path
            default: nil
            }
        }
    }

    private static func rel(_ path: String) -> String { String(path.drop { $0 == "/" }) }

    // MARK: - Landlock

    private static func prepareLandlock(_ plan: LaunchPlan, paths: DeclaredPathResolver,
                                        into prepared: PreparedLaunch) throws(CorralError) {
        let landlock = plan.landlock
        let fd = corral_landlock_create_ruleset(landlock.handled.rawValue, landlock.handledNet.rawValue,
                                                landlock.scoped.rawValue)
        guard fd >= 0 else {
            throw CorralError(.kernelUnsupported, stage: .landlock, operation: "landlock_create_ruleset",
                              errno: Errno(rawValue: -fd))
        }
        let ruleset = FileDescriptor(rawValue: fd)
        prepared.landlockRuleset = ruleset
        for rule in landlock.portRules {
            let rc = corral_landlock_add_port_rule(ruleset.rawValue, UInt64(rule.port), rule.access.rawValue)
            if rc < 0 {
                throw CorralError(.setupFailed, stage: .landlockRules, operation: "landlock_add_rule(port \(rule.port))",
                                  errno: Errno(rawValue: -rc))
            }
        }
        for rule in landlock.rules {
            // A manifest entry anchored in the sandbox is a staged write path: its rule goes on
            // the overlay, when the overlay is there (an optional path may be missing).
            if rule.anchor == .sandbox, rule.origin != nil,
               !prepared.stagedLayers.contains(where: { $0.path == rule.path }) {
                continue
            }
            if rule.anchor == .sandbox {
                prepared.landlockChildRules.append((rule.path, rule.access.rawValue))
                continue
            }
            var matches = [rule.path]
            if rule.isPattern {
                matches = expandGlob(rule.path)
                if matches.isEmpty && !rule.optional {
                    throw CorralError(.profileInvalid, operation: "expand exec pattern", path: rule.path,
                                      location: rule.origin, message: "matches no file",
                                      hint: "fix the pattern, or mark it optional")
                }
            }
            for path in matches {
                // Rules attach to inodes: the handle the bind resolution opened serves.
                guard let resolved = try paths.resolve(path, optional: rule.optional, origin: rule.origin,
                                                       operation: "landlock rule") else { continue }
                let target = resolved.handle
                let identity = resolved.identity
                var access = rule.access
                if !identity.isDirectory { access.formIntersection(.fileRights) }
                let rc = corral_landlock_add_path_rule(ruleset.rawValue, target.rawValue, access.rawValue)
                if rc < 0 {
                    throw CorralError(.setupFailed, stage: .landlockRules, operation: "landlock_add_rule",
                                      path: path, errno: Errno(rawValue: -rc), location: rule.origin)
                }
            }
        }
    }

    // MARK: - Command and environment

    private static func prepareCommand(_ plan: LaunchPlan, environment: [String: String],
                                       into prepared: PreparedLaunch) {
        var env = [String: String](minimumCapacity: plan.environment.count)  // no resize: see HostEnvironment.environment
        var order: [String] = []
        for entry in plan.environment {
            let value: String?
            switch entry.source {
            case .fixed(let text): value = text
            case .passed, .secret: value = environment[entry.name]
            }
            guard let value else { continue }
            if env[entry.name] == nil { order.append(entry.name) }
            env[entry.name] = value
        }
        prepared.environment = order.map { "\($0)=\(env[$0]!)" }

        let program = plan.command[0]
        if program.contains("/") {
            prepared.execCandidates = [program]
        } else {
            let search = env["PATH"].map { $0.split(separator: ":").map(String.init) } ?? PlanCompiler.defaultSearchPath
            prepared.execCandidates = search.filter { !$0.isEmpty }.map { "\($0)/\(program)" }
        }
    }
}

/// Where one write path's staged changes live: overlayfs's upper layer and its work folder.
public struct StagingFolders: Sendable, Hashable {
    public var upper: String
    public var work: String
    public init(upper: String, work: String) {
        self.upper = upper
        self.work = work
    }
}

/// A write path mounted as an overlay for this launch.
public struct StagedLayer: Sendable, Hashable {
    /// The index of the `filesystem.write` entry.
    public var layer: Int
    /// The path as the sandbox sees it.
    public var path: String
    /// The host folder, canonical: the overlay's lower layer and what a commit changes.
    public var real: String
    public var folders: StagingFolders
}
