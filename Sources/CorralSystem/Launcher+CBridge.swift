import CCorralLaunch
import CorralPlan
import Glibc
import Synchronization
import SystemPackage

// All pointer lifetimes for `corral_launch_plan` live in this file. The C struct and
// everything it points to live in one MAP_SHARED arena, mapped before the clone: the
// child sees what the parent writes after the clone, up to "go". The parent unmaps its
// side once "go" is sent; the child's mapping keeps the pages until init unmaps it.

/// A bump allocator over a shared anonymous mapping. `@safe`: the pointers it hands out stay
/// valid for its lifetime, and it is only used by the launch code in this file and
/// Launcher.swift.
@safe final class SharedArena {
    /// Virtual size; only touched pages cost memory. execve bounds argv and envp far below.
    static let capacity = 64 << 20
    let base: UnsafeMutableRawPointer
    private var used = 0
    /// Set when an allocation did not fit: the plan must not be handed over.
    private(set) var overflowed = false
    private var spilled: [UnsafeMutableRawPointer] = unsafe []

    init() throws(CorralError) {
        let mapped = unsafe mmap(nil, Self.capacity, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else {
            throw CorralError(.setupFailed, operation: "mmap (launch plan arena)", errno: Errno(rawValue: Glibc.errno))
        }
        unsafe base = mapped
    }

    /// After the clone: no later fork or clone of this process (another run's sandbox, a
    /// library caller's fork) inherits the arena.
    func stopSharingWithLaterChildren() {
        _ = unsafe madvise(base, Self.capacity, MADV_DONTFORK)
    }

    deinit {
        unsafe munmap(base, Self.capacity)
        for unsafe pointer in unsafe spilled { unsafe free(pointer) }
    }

    /// Zeroed memory for `count` values of `T`.
    func buffer<T>(of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let size = max(count, 1) * MemoryLayout<T>.stride
        let start = (used + 15) & ~15
        let raw: UnsafeMutableRawPointer
        if start + size <= Self.capacity {
            unsafe raw = base + start  // fresh pages of an anonymous mapping are zero
            used = start + size
        } else {
            overflowed = true  // still valid memory, so the builder can finish; never handed over
            unsafe raw = calloc(1, size)!
            unsafe spilled.append(raw)
        }
        return unsafe raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func cString(_ text: String) -> UnsafePointer<CChar> {
        let utf8 = text.utf8
        let pointer = unsafe buffer(of: CChar.self, count: utf8.count + 1)
        for (index, byte) in utf8.enumerated() { unsafe pointer[index] = CChar(bitPattern: byte) }
        return unsafe UnsafePointer(pointer)
    }

    func cStringArray(_ texts: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = unsafe buffer(of: UnsafeMutablePointer<CChar>?.self, count: texts.count + 1)
        for (index, text) in texts.enumerated() {
            unsafe array[index] = UnsafeMutablePointer(mutating: cString(text))
        }
        return unsafe array
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
    /// The early fields: what the child needs before "go".
    static func writeEarlyFields(_ c: UnsafeMutablePointer<corral_launch_plan>, shape: SandboxShape, arena: SharedArena,
                                 stdio: [Int32], cgroup: CgroupJoin?, sync: FileDescriptor, report: FileDescriptor,
                                 status: FileDescriptor) {
        var flags: UInt64 = 0
        let ns = shape.namespaces
        if ns.user { flags |= corral_CLONE_NEWUSER }
        if ns.pid { flags |= corral_CLONE_NEWPID }
        if ns.mount { flags |= corral_CLONE_NEWNS }
        if ns.network { flags |= corral_CLONE_NEWNET }
        if ns.ipc { flags |= corral_CLONE_NEWIPC }
        if ns.uts { flags |= corral_CLONE_NEWUTS }
        if ns.cgroup { flags |= corral_CLONE_NEWCGROUP }
        unsafe c.pointee.clone_flags = flags
        unsafe c.pointee.uid_map = arena.cString("\(shape.uidMap)\n")
        unsafe c.pointee.gid_map = arena.cString("\(shape.gidMap)\n")
        unsafe c.pointee.stdio = (stdio[0], stdio[1], stdio[2])
        unsafe c.pointee.cgroup_fd = cgroup?.folder?.rawValue ?? -1
        let joins = cgroup?.tasks.map(\.rawValue) ?? []
        unsafe c.pointee.cgroup_join_count = UInt32(joins.count)
        unsafe c.pointee.cgroup_join_fds = joins.isEmpty ? nil : UnsafePointer(arena.copy(joins))
        unsafe c.pointee.sync_fd = sync.rawValue
        unsafe c.pointee.report_fd = report.rawValue
        unsafe c.pointee.status_fd = status.rawValue
        unsafe c.pointee.arena_base = arena.base
        unsafe c.pointee.arena_size = UInt64(SharedArena.capacity)
    }

    /// The rest of the plan, written after the clone and before "go".
    static func writePlan(_ c: UnsafeMutablePointer<corral_launch_plan>, prepared: PreparedLaunch,
                          arena: SharedArena, rootBase: String) {
        let plan = prepared.plan
        unsafe c.pointee.exec_candidates = UnsafePointer(arena.copy(prepared.execCandidates.map { unsafe Optional(arena.cString($0)) }))
        unsafe c.pointee.exec_candidate_count = UInt32(prepared.execCandidates.count)
        unsafe c.pointee.argv = UnsafePointer(arena.cStringArray(plan.command))
        unsafe c.pointee.envp = UnsafePointer(arena.cStringArray(prepared.environment))
        unsafe c.pointee.workdir = arena.cString(plan.workdir)
        unsafe c.pointee.hostname = plan.namespaces.uts ? arena.cString(plan.hostname) : nil

        unsafe c.pointee.root_base = arena.cString(rootBase)
        let ops = unsafe prepared.mountOps.map { op in
            unsafe corral_mount_op(kind: op.kind.rawValue, flags: op.flags, mode: op.mode, size_mib: op.sizeMiB,
                                   source: op.source.map { unsafe arena.cString($0) }, target: arena.cString(op.target),
                                   source_dev: op.device, source_ino: op.inode,
                                   upper: op.upper.map { unsafe arena.cString($0) },
                                   work: op.work.map { unsafe arena.cString($0) })
        }
        unsafe c.pointee.mounts = UnsafePointer(arena.copy(ops))
        unsafe c.pointee.mount_count = UInt32(ops.count)
        unsafe c.pointee.scratch_fds = arena.buffer(of: Int32.self, count: ops.count)

        let rlimits = plan.rlimits.map { limit in
            corral_rlimit(resource: Self.resourceNumber(limit.resource), reserved: 0,
                          soft: limit.soft ?? UInt64.max, hard: limit.hard ?? UInt64.max)
        }
        unsafe c.pointee.rlimits = UnsafePointer(arena.copy(rlimits))
        unsafe c.pointee.rlimit_count = UInt32(rlimits.count)

        unsafe c.pointee.landlock_ruleset_fd = -1  // travels with "go"
        unsafe c.pointee.landlock_expected = prepared.landlockRuleset == nil ? 0 : 1
        let childRules = unsafe prepared.landlockChildRules.map {
            unsafe corral_landlock_child_rule(path: arena.cString($0.path), access: $0.access)
        }
        unsafe c.pointee.landlock_child_rules = UnsafePointer(arena.copy(childRules))
        unsafe c.pointee.landlock_child_rule_count = UInt32(childRules.count)

        var programs = unsafe prepared.seccompPrograms.map { program in
            unsafe corral_seccomp_program(filter: arena.bytes(program.bytes), length: UInt32(program.instructionCount), flags: 0)
        }
        // Last of all: its listener is the command's final message before execve.
        if let watch = prepared.watchProgram {
            unsafe programs.append(corral_seccomp_program(filter: arena.bytes(watch.bytes), length: UInt32(watch.instructionCount),
                                                          flags: corral_SECCOMP_WATCH_FLAGS))
        }
        unsafe c.pointee.seccomp_programs = UnsafePointer(arena.copy(programs))
        unsafe c.pointee.seccomp_program_count = UInt32(programs.count)
        unsafe c.pointee.cap_last_cap = prepared.capLastCap

        let ports = plan.egress?.listeners.map(\.port) ?? []
        unsafe c.pointee.listen_ports = UnsafePointer(arena.copy(ports))
        unsafe c.pointee.listen_port_count = UInt32(ports.count)
    }

    /// Linux's RLIMIT_* numbers (identical on x86_64 and aarch64).
    static func resourceNumber(_ resource: ResourceLimit.Resource) -> Int32 {
        switch resource {
        case .cpu: 0
        case .fsize: 1
        case .core: 4
        case .nproc: 6
        case .nofile: 7
        }
    }
}

// MARK: - The command's launch memory, for the syscall watcher

/// The shared arena as the command sees it until its execve: the supervisor's own view of
/// the pages that hold the command's exec path and argv.
///
/// Why: until its execve the command runs on init's memory (a vfork-style clone), a copy of
/// the supervisor's address space, made non-dumpable so nothing in the sandbox can read it.
/// That mm also still belongs to the supervisor's user namespace, so a rootless supervisor
/// gets EPERM from process_vm_readv there (it has CAP_SYS_PTRACE only in the sandbox's
/// namespace). The command's own execve, a watched call like any other, is then decoded from
/// these pages: MAP_SHARED, so exactly the bytes the kernel will read. Only while the exec
/// report is pending (the window closes when `go` returns) and only for ranges inside the
/// arena; after the execve the command has a fresh mm owned by the sandbox's namespace,
/// which the supervisor reads directly.
public final class LaunchMemory: @unchecked Sendable {
    // @unchecked: `arena` is read and cleared only while holding `lock`, so it is unmapped
    // (when the last reference goes) only after `close`, never under a reader.
    private let lock = Mutex(())
    private var arena: SharedArena?

    init(_ arena: SharedArena) {
        self.arena = arena
    }

    /// `count` bytes at `address`, or nil when the range is not (or no longer) in the arena.
    func read(_ address: UInt64, count: Int) -> [UInt8]? {
        lock.withLock { _ -> [UInt8]? in
            guard let arena else { return nil }
            let base = UInt64(UInt(bitPattern: unsafe arena.base))
            guard address >= base, count >= 0, address - base <= UInt64(SharedArena.capacity - count) else { return nil }
            let start = unsafe arena.base + Int(address - base)
            return unsafe Array(UnsafeRawBufferPointer(start: start, count: count))
        }
    }

    /// Ends the window: the arena may be unmapped from now on.
    func close() {
        let released = lock.withLock { _ in arena.take() }
        _ = released  // unmapped here, outside the lock, if this was the last reference
    }
}
