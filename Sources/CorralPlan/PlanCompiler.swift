import CorralProfile

/// Compiles a validated `Profile` and a `HostFacts` snapshot into a `LaunchPlan`.
/// Pure: it never looks at the live filesystem (existence, symlinks and globs are settled
/// when `CorralSystem` materialises the plan), so it is tested by golden text alone.
public enum PlanCompiler {
    /// Folders Corral builds itself; manifests may not bind over them.
    static let reservedRoots = ["/proc", "/dev"]
    /// Device nodes of the minimal /dev.
    static let devices = ["null", "zero", "full", "random", "urandom", "tty"]
    /// Searched for a bare command name when the sandbox's environment has no PATH.
    public static let defaultSearchPath = ["/usr/local/bin", "/usr/bin", "/bin"]

    /// - Parameter command: the CLI's command; `nil` or empty uses `run.command`.
    /// - Throws: `PlanError` when the profile cannot run as asked on this host.
    public static func compile(_ profile: Profile, command: [String]? = nil,
                               host: HostFacts) throws(PlanError) -> LaunchPlan {
        let argv = (command?.isEmpty == false ? command : nil) ?? profile.run.command
        guard argv.first?.isEmpty == false else {
            throw PlanError("no command to run",
                            hint: "give one after `--` (corral run --profile P -- CMD…) or set run.command")
        }
        let fs = profile.filesystem
        try checkReserved(fs)

        let shape = shape(of: profile, uid: host.uid, gid: host.gid)
        var seccomp = seccomp(for: profile.syscalls)
        // Monitor rules watch what they need too (rate(connect) watches connect, …).
        seccomp.watched = stableSorted(Array(Set(seccomp.watched + (try monitorWatch(for: profile.monitor, seccomp: seccomp)))))
        let workdir = try workdir(of: profile)
        let egress = EgressPlan.of(profile.network)
        if profile.network.mode != .allowlist, let rule = profile.monitor.first(where: { $0.condition == .newHost }) {
            throw PlanError("rule \(rule.id): new-host can never fire: only network.mode allowlist has a proxy that sees hosts",
                            at: rule.location, hint: "set network.mode: allowlist, or remove the rule")
        }
        var landlock = try landlock(for: profile, host: host)
        // The kernel's backstop under the proxy: connect only to the proxy's own ports.
        if profile.network.mode == .allowlist, let egress, landlock.abi >= 4 {
            landlock.handledNet = .connectTCP
            landlock.portRules = egress.listeners.map { LandlockPortRule(port: $0.port, access: .connectTCP) }
        }
        var environment = environment(for: profile.run.env)
        // Last, so they win over the manifest's own: another proxy could not be reached.
        environment += (egress?.proxyEnvironment ?? []).map { EnvironmentEntry(name: $0.name, source: .fixed($0.value)) }

        return LaunchPlan(
            goalID: profile.goal.id,
            namespaces: shape.namespaces,
            uidMap: shape.uidMap,
            gidMap: shape.gidMap,
            hostname: profile.goal.id,
            mounts: mounts(for: fs, limits: profile.limits, staged: profile.approval.commit.isStaged),
            landlock: landlock,
            seccomp: seccomp,
            rlimits: rlimits(for: profile.limits),
            network: profile.network.mode,
            egress: egress,
            command: argv,
            environment: environment,
            workdir: workdir,
            limits: profile.limits,
            monitor: profile.monitor,
            commit: profile.approval.commit
        )
    }

    // MARK: - Limits and monitor rules

    /// rlimits: no core dumps, and the per-process limits the manifest sets. `cpu` is also a
    /// per-process backstop (SIGXCPU) under the supervisor's whole-tree accounting.
    static func rlimits(for limits: Limits) -> [ResourceLimit] {
        var rlimits = [ResourceLimit(.core, soft: 0, hard: 0)]
        if let files = limits.openFiles { rlimits.append(ResourceLimit(.nofile, soft: UInt64(files), hard: UInt64(files))) }
        if let bytes = limits.fileSize { rlimits.append(ResourceLimit(.fsize, soft: bytes, hard: bytes)) }
        if let cpu = limits.cpu {
            let seconds = UInt64(max(1, cpu.components.seconds + (cpu.components.attoseconds > 0 ? 1 : 0)))
            rlimits.append(ResourceLimit(.cpu, soft: seconds, hard: seconds + 1))
        }
        return rlimits
    }

    /// The syscalls the rules need watched. A rule on a call the seccomp profile denies could
    /// never fire: that is an error, not a silent no-op.
    static func monitorWatch(for rules: [MonitorRule], seccomp: SeccompPlan) throws(PlanError) -> [String] {
        let denied = Set(seccomp.denied.map(\.name) + seccomp.enosys + seccomp.manifestDenials)
        for rule in rules {
            if case .rate(let name, _, _) = rule.condition, denied.contains(name) {
                throw PlanError("rule \(rule.id): rate(\(name)) can never fire: the seccomp profile denies \(name)",
                                at: rule.location, hint: "watch a syscall the run may make, or allow \(name) in syscalls.allow")
            }
        }
        // A call the profile denies never reaches the supervisor; the rest are watched.
        return stableSorted(Array(Set(rules.flatMap(\.condition.watchedSyscalls)).subtracting(denied)))
    }

    /// The namespaces and id maps of a profile's sandbox; `compile` uses the same.
    public static func shape(of profile: Profile, uid: UInt32, gid: UInt32) -> SandboxShape {
        var namespaces = Namespaces()
        namespaces.network = profile.network.mode != .host
        return SandboxShape(namespaces: namespaces, uidMap: IDMapping(inside: uid, outside: uid),
                            gidMap: IDMapping(inside: gid, outside: gid))
    }

    // MARK: - Filesystem view

    /// Whether `path` is `root` or lies beneath it (lexically).
    public static func isBeneath(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }

    public static func depth(_ path: String) -> Int {
        path == "/" ? 0 : path.split(separator: "/").count
    }

    private static func checkReserved(_ fs: FilesystemSpec) throws(PlanError) {
        for entry in fs.read + fs.write + fs.deny {
            for reserved in reservedRoots where isBeneath(entry.path, reserved) {
                throw PlanError("\(reserved) is built by Corral and cannot be bound or masked",
                                at: entry.location,
                                hint: "remove the entry; the sandbox gets a fresh \(reserved)")
            }
        }
    }

    /// The ordered mount steps: parents before children, so every target exists when its
    /// step runs. At the same depth binds come first, then Corral's own filesystems, then masks.
    static func mounts(for fs: FilesystemSpec, limits: Limits = Limits(), staged: Bool = false) -> [MountStep] {
        var steps: [MountStep] = []
        // The private /tmp and /dev/shm live in memory: sized to limits.memory, or 1 GiB, so a
        // run without a memory cgroup cannot pin half the host's memory in them.
        let scratchMiB = UInt32(min((limits.memory ?? 1 << 30) >> 20, 1 << 20))
        for entry in fs.read {
            steps.append(MountStep(.bind(readOnly: true), entry.path, optional: entry.optional, origin: entry.location))
        }
        for (layer, entry) in fs.write.enumerated() {
            steps.append(MountStep(staged ? .overlay(layer: layer) : .bind(readOnly: false), entry.path, noexec: true,
                                   optional: entry.optional, origin: entry.location))
        }
        steps.append(MountStep(.tmpfs(mode: 0o755), "/dev", noexec: true, sizeMiB: 1))
        for device in devices { steps.append(MountStep(.deviceBind, "/dev/\(device)", noexec: true)) }
        steps.append(MountStep(.devpts, "/dev/pts", noexec: true))
        steps.append(MountStep(.tmpfs(mode: 0o1777), "/dev/shm", noexec: true, sizeMiB: scratchMiB))
        for (name, target) in [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                               ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            steps.append(MountStep(.symlink(to: target), "/dev/\(name)"))
        }
        steps.append(MountStep(.proc, "/proc", noexec: true))
        // Host-global knobs stay read-only even for a run whose uid maps to host root.
        steps.append(MountStep(.readOnly, "/proc/sys"))
        steps.append(MountStep(.readOnly, "/proc/sysrq-trigger", optional: true))
        if !fs.write.contains(where: { $0.path == "/tmp" }) && !fs.read.contains(where: { $0.path == "/tmp" }) {
            steps.append(MountStep(.tmpfs(mode: 0o1777), "/tmp", noexec: true, sizeMiB: scratchMiB))
        }
        for entry in fs.deny {
            steps.append(MountStep(.mask, entry.path, optional: true, origin: entry.location))
        }
        func rank(_ kind: MountStep.Kind) -> Int {
            switch kind {
            case .bind, .overlay: 0
            case .tmpfs, .proc, .devpts, .deviceBind, .symlink: 1
            case .mask: 2
            case .readOnly: 3
            }
        }
        // Masks go after every bind (a deny may be visible through a deeper bind of the same
        // host folder, and nothing may be mounted inside a denied path: the parser refuses it).
        return stableSorted(Array(steps.enumerated())) { a, b in
            let (ma, mb) = (a.element.kind == .mask, b.element.kind == .mask)
            if ma != mb { return mb }
            let (da, db) = (depth(a.element.path), depth(b.element.path))
            if da != db { return da < db }
            let (ra, rb) = (rank(a.element.kind), rank(b.element.kind))
            return ra != rb ? ra < rb : a.offset < b.offset
        }.map(\.element)
    }

    private static func workdir(of profile: Profile) throws(PlanError) -> String {
        let fs = profile.filesystem
        guard let entry = profile.run.workdir else { return fs.write.first?.path ?? "/" }
        let visible = (fs.read + fs.write).map(\.path) + ["/tmp"]
        guard visible.contains(where: { isBeneath(entry.path, $0) }) else {
            throw PlanError("\(entry.path) is not visible inside the sandbox", at: entry.location,
                            hint: "add it (or a folder above it) to filesystem.read or filesystem.write")
        }
        return entry.path
    }

    // MARK: - Landlock

    /// Landlock rights: read paths read-only, write paths read-write, only `exec` entries
    /// (and the dynamic loader, which the kernel opens for execution too) executable.
    static func landlock(for profile: Profile, host: HostFacts) throws(PlanError) -> LandlockPlan {
        let fs = profile.filesystem
        let abi = min(host.landlockABI, 7)
        if abi < 1 && profile.landlock == .required {
            throw PlanError("Landlock is not available on this kernel, and landlock is `required`",
                            hint: "enable Landlock (CONFIG_SECURITY_LANDLOCK, lsm=…,landlock) or set `landlock: best-effort`")
        }
        var rules: [LandlockRule] = [LandlockRule("/", [.readDir], anchor: .sandbox)]
        rules += fs.read.map { LandlockRule($0.path, .read, optional: $0.optional, origin: $0.location) }
        // A staged write path is an overlay: its inodes are not the host folder's, so its rule
        // is added inside the sandbox, on the mounted overlay.
        let staged = profile.approval.commit.isStaged
        rules += fs.write.map {
            LandlockRule($0.path, LandlockAccess.read.union(.write), anchor: staged ? .sandbox : .host,
                         optional: $0.optional, origin: $0.location)
        }
        rules += fs.exec.map { entry in
            // `folder/*` becomes one rule on the folder (execute beneath it) instead of a rule
            // per file: /usr/bin/* would otherwise cost ~1,000 opens and rules per launch.
            // Binds are read-only, so no file can appear there later.
            let folder = String(entry.path.dropLast(2))
            if entry.path.hasSuffix("/*"), !folder.contains(where: { "*?[".contains($0) }) {
                return LandlockRule(folder.isEmpty ? "/" : folder, [.readFile, .execute], optional: entry.optional,
                                    origin: entry.location)
            }
            return LandlockRule(entry.path, [.readFile, .execute],
                                isPattern: entry.path.contains(where: { "*?[".contains($0) }),
                                optional: entry.optional, origin: entry.location)
        }
        rules += host.dynamicLoaders.map { LandlockRule($0, [.readFile, .execute], optional: true) }
        rules.append(LandlockRule("/proc", .read, anchor: .sandbox))
        rules.append(LandlockRule("/tmp", LandlockAccess.read.union(.write), anchor: .sandbox))
        rules.append(LandlockRule("/dev/shm", LandlockAccess.read.union(.write), anchor: .sandbox))
        rules.append(LandlockRule("/dev/pts", LandlockAccess.device.union(.readDir), anchor: .sandbox))
        rules += devices.map { LandlockRule("/dev/\($0)", .device, anchor: .sandbox) }

        let wanted = LandlockAccess.handled(atABI: 7)
        let handled = LandlockAccess.handled(atABI: abi)
        let dropped = wanted.subtracting(handled)
        for index in rules.indices { rules[index].access.formIntersection(handled) }
        let scoped: LandlockScope = abi >= 6 ? [.abstractUnixSocket, .signal] : []
        return LandlockPlan(enforcement: profile.landlock, abi: abi, handled: handled, scoped: scoped,
                            rules: abi >= 1 ? rules : [], dropped: abi >= 1 ? dropped : wanted)
    }

    // MARK: - Seccomp

    /// The seccomp policy of `syscalls` (public so the lowering can rebuild the shared base).
    public static func seccomp(for spec: SyscallSpec) -> SeccompPlan {
        let extraAllow = Set(spec.allow), extraDeny = Set(spec.deny)
        var allowed = DefaultSyscallPolicy.allowed.subtracting(ArgumentRules.narrowedByArguments)
        allowed.formUnion(extraAllow)
        allowed.subtract(extraDeny)
        // clone3 and openat2 hide their flags and mode from seccomp (in a struct): ENOSYS, so
        // libc falls back to clone and openat, unless the manifest names them.
        let hidden = ["clone3", "openat2"].filter { !extraAllow.contains($0) && !extraDeny.contains($0) }
        for name in ["clone3", "openat2"] where !extraAllow.contains(name) { allowed.remove(name) }
        let enosys = hidden

        var conditional: [ArgumentRule] = []
        for rule in ArgumentRules.socketAllows + ArgumentRules.personalityAllows
        where !allowed.contains(rule.syscall) && !extraDeny.contains(rule.syscall) {
            conditional.append(rule)
        }
        let overlay = (ArgumentRules.cloneNamespaceDenials + ArgumentRules.ioctlDenials + ArgumentRules.setIDDenials)
            .filter { allowed.contains($0.syscall) }
        let narrowed = Set(conditional.map(\.syscall))
        let enosysByDefault: Set<String> = ["clone3", "openat2"]
        var denied = DefaultSyscallPolicy.denied
            .filter { !allowed.contains($0.key) && !enosys.contains($0.key) && !extraDeny.contains($0.key) }
            .map { (name: $0.key, reason: narrowed.contains($0.key) ? $0.value + " (except the allow-if rules)" : $0.value) }
        // A manifest deny keeps the base's reason where there is one; clone3's base reason
        // explains ENOSYS, which no longer applies.
        denied += extraDeny.map { name in
            let reason = enosysByDefault.contains(name) ? nil : DefaultSyscallPolicy.denied[name]
            return (name: name, reason: reason ?? "denied by the manifest")
        }
        return SeccompPlan(
            base: spec.base,
            allowed: stableSorted(Array(allowed)),
            conditionalAllows: conditional,
            argumentDenials: overlay,
            enosys: enosys,
            denied: stableSorted(Array(denied)) { $0.name < $1.name },
            onDeny: spec.onDeny,
            manifestAllows: spec.allow,
            manifestDenials: spec.deny,
            watched: stableSorted(Array(spec.watch))
        )
    }

    // MARK: - Environment

    static func environment(for env: EnvSpec) -> [EnvironmentEntry] {
        env.pass.map { EnvironmentEntry(name: $0, source: .passed) }
            + env.set.map { EnvironmentEntry(name: $0.name, source: .fixed($0.value)) }
            + env.secrets.map { EnvironmentEntry(name: $0, source: .secret) }
    }
}
