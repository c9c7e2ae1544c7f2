import CCorralLaunch
import CorralPlan
import Glibc
import SystemPackage

// All pointer lifetimes for `corral_launch_plan` live in this file. The C struct points into
// an arena that outlives the clone; the child gets a copy-on-write image, so the parent frees
// the arena as soon as `corral_launch` returns.

/// Owns the C memory a launch plan points into.
private final class Arena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for pointer in unsafe allocations { unsafe free(pointer) } }

    func cString(_ text: String) -> UnsafePointer<CChar> {
        let copy = unsafe strdup(text)!
        unsafe allocations.append(UnsafeMutableRawPointer(copy))
        return unsafe UnsafePointer(copy)
    }

    func cStringArray(_ texts: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = unsafe buffer(of: UnsafeMutablePointer<CChar>?.self, count: texts.count + 1)
        for (index, text) in texts.enumerated() {
            unsafe array[index] = UnsafeMutablePointer(mutating: cString(text))
        }
        unsafe array[texts.count] = nil
        return unsafe array
    }

    func buffer<T>(of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = unsafe calloc(max(count, 1), MemoryLayout<T>.stride)!
        unsafe allocations.append(raw)
        return unsafe raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let pointer = unsafe buffer(of: T.self, count: values.count)
        for (index, value) in values.enumerated() { unsafe (pointer + index).initialize(to: value) }
        return unsafe pointer
    }

    func bytes(_ values: [UInt8]) -> UnsafeRawPointer {
        unsafe UnsafeRawPointer(copy(values))
    }
}

extension Launcher {
    /// Builds the flat C plan in `arena` and runs `corral_launch`.
    static func cloneSandbox(_ prepared: PreparedLaunch, stdio: [Int32], syncRead: FileDescriptor,
                             reportWrite: FileDescriptor, statusWrite: FileDescriptor,
                             rootBase: String) -> Result<(pid: pid_t, pidfd: Int32), Errno> {
        let arena = Arena()
        let plan = prepared.plan
        var c = corral_launch_plan()

        unsafe c.exec_candidates = UnsafePointer(arena.copy(prepared.execCandidates.map { unsafe Optional(arena.cString($0)) }))
        c.exec_candidate_count = UInt32(prepared.execCandidates.count)
        unsafe c.argv = UnsafePointer(arena.cStringArray(plan.command))
        unsafe c.envp = UnsafePointer(arena.cStringArray(prepared.environment))
        unsafe c.workdir = arena.cString(plan.workdir)
        c.stdio = (stdio[0], stdio[1], stdio[2])

        var flags: UInt64 = 0
        let ns = plan.namespaces
        if ns.user { flags |= corral_CLONE_NEWUSER }
        if ns.pid { flags |= corral_CLONE_NEWPID }
        if ns.mount { flags |= corral_CLONE_NEWNS }
        if ns.network { flags |= corral_CLONE_NEWNET }
        if ns.ipc { flags |= corral_CLONE_NEWIPC }
        if ns.uts { flags |= corral_CLONE_NEWUTS }
        if ns.cgroup { flags |= corral_CLONE_NEWCGROUP }
        c.clone_flags = flags
        unsafe c.uid_map = arena.cString("\(plan.uidMap)\n")
        unsafe c.gid_map = arena.cString("\(plan.gidMap)\n")
        unsafe c.hostname = ns.uts ? arena.cString(plan.hostname) : nil

        unsafe c.root_base = arena.cString(rootBase)
        let ops = unsafe prepared.mountOps.map { op in
            unsafe corral_mount_op(kind: op.kind.rawValue, flags: op.flags, mode: op.mode, reserved: 0,
                                   source: op.source.map { unsafe arena.cString($0) }, target: arena.cString(op.target),
                                   source_dev: op.device, source_ino: op.inode)
        }
        unsafe c.mounts = UnsafePointer(arena.copy(ops))
        c.mount_count = UInt32(ops.count)
        unsafe c.scratch_fds = arena.buffer(of: Int32.self, count: ops.count)

        let rlimits = plan.rlimits.map { limit in
            corral_rlimit(resource: Self.resourceNumber(limit.resource), reserved: 0,
                          soft: limit.soft ?? UInt64.max, hard: limit.hard ?? UInt64.max)
        }
        unsafe c.rlimits = UnsafePointer(arena.copy(rlimits))
        c.rlimit_count = UInt32(rlimits.count)

        c.landlock_ruleset_fd = prepared.landlockRuleset?.rawValue ?? -1
        let childRules = unsafe prepared.landlockChildRules.map {
            unsafe corral_landlock_child_rule(path: arena.cString($0.path), access: $0.access)
        }
        unsafe c.landlock_child_rules = UnsafePointer(arena.copy(childRules))
        c.landlock_child_rule_count = UInt32(childRules.count)

        let programs = unsafe prepared.seccompPrograms.map { program in
            unsafe corral_seccomp_program(filter: arena.bytes(program.bytes), length: UInt32(program.instructionCount), flags: 0)
        }
        unsafe c.seccomp_programs = UnsafePointer(arena.copy(programs))
        c.seccomp_program_count = UInt32(programs.count)
        c.cap_last_cap = prepared.capLastCap

        c.sync_fd = syncRead.rawValue
        c.report_fd = reportWrite.rawValue
        c.status_fd = statusWrite.rawValue

        var pid: pid_t = 0
        var pidfd: Int32 = -1
        let rc = unsafe corral_launch(&c, &pid, &pidfd)
        withExtendedLifetime(arena) {}
        return rc == 0 ? .success((pid, pidfd)) : .failure(Errno(rawValue: rc))
    }

    /// Linux's RLIMIT_* numbers (identical on x86_64 and aarch64).
    static func resourceNumber(_ resource: ResourceLimit.Resource) -> Int32 {
        switch resource {
        case .fsize: 1
        case .core: 4
        case .nproc: 6
        case .nofile: 7
        }
    }
}
