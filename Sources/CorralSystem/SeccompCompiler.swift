import CorralPlan
import CorralProfile
import CCorralLaunch
import CSeccomp
import Glibc
import SystemPackage

/// A compiled classic-BPF seccomp program: `struct sock_filter[]` as bytes.
public struct SeccompProgram: Sendable, Hashable, Codable {
    public var bytes: [UInt8]
    /// Number of BPF instructions (8 bytes each).
    public var instructionCount: Int { bytes.count / 8 }
}

/// Lowers a `SeccompPlan` to BPF with libseccomp, in the parent (libseccomp allocates, so it
/// may never run between clone and exec).
public enum SeccompCompiler {
    /// Syscalls newer than the libseccomp on this machine knows by name. From Linux 5.1
    /// (number 424) on, x86_64 and the generic table (aarch64) share numbers.
    static let newerSyscalls: [String: Int32] = [
        "process_mrelease": 448, "futex_waitv": 449, "set_mempolicy_home_node": 450, "cachestat": 451,
        "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454, "futex_wait": 455,
        "futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
        "lsm_set_self_attr": 460, "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463,
        "getxattrat": 464, "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467,
        "file_getattr": 468, "file_setattr": 469,
    ]

    /// The native syscall number for `name`, or nil when this architecture has no such call.
    static func resolve(_ name: String) -> Int32? {
        let nr = unsafe seccomp_syscall_resolve_name(name)
        if nr >= 0 { return nr }
        if nr == __NR_SCMP_ERROR { return newerSyscalls[name] }
        return nil  // a pseudo number: the call exists only on other architectures
    }

    static func action(for deny: DenyAction) -> UInt32 {
        switch deny {
        case .errno(let value): 0x0005_0000 | (UInt32(value) & 0xFFFF)  // SCMP_ACT_ERRNO(value)
        case .kill: SCMP_ACT_KILL_PROCESS
        }
    }

    /// The programs of a plan, in install order: the base allow-list and its argument overlay
    /// (see `SeccompPlan`), built from the base and the manifest's allows only, then — when the
    /// manifest denies syscalls — a small program that denies them. The kernel applies the
    /// strictest answer, and for equal actions the last installed, so this is the plan's effect.
    /// The default base comes precompiled (`PrecompiledSeccomp`) when this host's libseccomp
    /// and architecture match the ones it was generated with; a test keeps it equal to a fresh
    /// compile.
    public static func compile(_ plan: SeccompPlan, usePrecompiled: Bool = true) throws(CorralError) -> [SeccompProgram] {
        var spec = SyscallSpec()
        spec.base = plan.base
        spec.allow = plan.manifestAllows
        spec.onDeny = plan.onDeny
        var programs: [SeccompProgram]
        if usePrecompiled, spec.allow.isEmpty, let precompiled = PrecompiledSeccomp.programs(for: spec) {
            programs = precompiled
        } else {
            programs = try compileBase(PlanCompiler.seccomp(for: spec))
        }
        if !plan.manifestDenials.isEmpty {
            let deny = action(for: plan.onDeny)
            programs.append(try unsafe build(defaultAction: SCMP_ACT_ALLOW) { ctx throws(CorralError) in
                for name in plan.manifestDenials {
                    guard let nr = resolve(name) else { continue }
                    try check(unsafe seccomp_rule_add_array(ctx, deny, nr, 0, nil), "deny \(name)")
                }
            })
        }
        return programs
    }

    /// The watch program of a plan (nil when nothing is watched): SCMP_ACT_NOTIFY for each
    /// watched syscall of this architecture, everything else allowed. It is installed after
    /// the others, with a listener (`corral_SECCOMP_WATCH_FLAGS`), and can only add a stop at
    /// the supervisor to what they allow: their ERRNO and KILL answers outrank USER_NOTIF.
    /// Other architectures are killed by the base programs already; this one notifies only
    /// native calls, whose numbers `syscalls` maps back to names for the supervisor.
    public static func compileWatch(_ plan: SeccompPlan) throws(CorralError)
        -> (program: SeccompProgram, syscalls: [Int32: String])? {
        guard !plan.watched.isEmpty else { return nil }
        guard corral_seccomp_has_user_notif() == 1 else {
            throw CorralError(.kernelUnsupported, stage: .seccomp, operation: "seccomp user notification",
                              message: "syscalls.watch needs SECCOMP_RET_USER_NOTIF, which this kernel lacks",
                              hint: "remove syscalls.watch, or run on Linux 5.19 or later")
        }
        var numbers: [Int32: String] = [:]
        let program = try unsafe build(defaultAction: SCMP_ACT_ALLOW) { ctx throws(CorralError) in
            for name in plan.watched {
                guard let nr = resolve(name) else { continue }
                try check(unsafe seccomp_rule_add_array(ctx, SCMP_ACT_NOTIFY, nr, 0, nil), "watch \(name)")
                numbers[nr] = name
            }
        }
        return (program, numbers)
    }

    /// The allow-list and the argument overlay of a plan without manifest denials.
    static func compileBase(_ plan: SeccompPlan) throws(CorralError) -> [SeccompProgram] {
        let deny = action(for: plan.onDeny)
        var programs: [SeccompProgram] = []
        programs.append(try unsafe build(defaultAction: deny) { ctx throws(CorralError) in
            for name in plan.allowed {
                guard let nr = resolve(name) else { continue }
                try check(unsafe seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 0, nil), "allow \(name)")
            }
            for rule in plan.conditionalAllows {
                try unsafe add(rule, action: SCMP_ACT_ALLOW, to: ctx)
            }
            for name in plan.enosys {
                guard let nr = resolve(name) else { continue }
                try check(unsafe seccomp_rule_add_array(ctx, 0x0005_0000 | UInt32(ENOSYS), nr, 0, nil), "enosys \(name)")
            }
        })
        if !plan.argumentDenials.isEmpty {
            programs.append(try unsafe build(defaultAction: SCMP_ACT_ALLOW) { ctx throws(CorralError) in
                for rule in plan.argumentDenials { try unsafe add(rule, action: deny, to: ctx) }
            })
        }
        return programs
    }

    private static func add(_ rule: ArgumentRule, action: UInt32, to ctx: scmp_filter_ctx) throws(CorralError) {
        guard let nr = resolve(rule.syscall) else { return }
        var comparisons = rule.comparisons.map {
            scmp_arg_cmp(arg: UInt32($0.argument), op: SCMP_CMP_MASKED_EQ, datum_a: $0.mask, datum_b: $0.value)
        }
        let rc = unsafe comparisons.withUnsafeMutableBufferPointer { buffer in
            unsafe seccomp_rule_add_array(ctx, action, nr, UInt32(buffer.count), buffer.baseAddress)
        }
        try check(rc, "rule \(rule)")
    }

    private static func check(_ rc: Int32, _ what: String) throws(CorralError) {
        guard rc < 0 else { return }
        throw CorralError(.setupFailed, operation: "seccomp_rule_add", errno: Errno(rawValue: -rc),
                          message: what)
    }

    private static func build(defaultAction: UInt32,
                              _ body: (scmp_filter_ctx) throws(CorralError) -> Void) throws(CorralError) -> SeccompProgram {
        guard let ctx = unsafe seccomp_init(defaultAction) else {
            throw CorralError(.setupFailed, operation: "seccomp_init", errno: .noMemory)
        }
        defer { unsafe seccomp_release(ctx) }
        // Other architectures' calling conventions (int 0x80, x32) would reach syscalls under
        // other numbers: kill the whole process, not just the thread.
        try check(unsafe seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch")
        // Linear layout (libseccomp's default). The binary tree attaches faster (~0.09 ms
        // against ~0.28 ms, DESIGN.md) but takes ~1 ms longer to generate for ~300 rules
        // (measured here with libseccomp 2.5.4), and generation is on every launch's path.
        try unsafe body(ctx)
        return try unsafe export(ctx)
    }

    /// libseccomp 2.5 exports only to a file descriptor: go through a memfd.
    private static func export(_ ctx: scmp_filter_ctx) throws(CorralError) -> SeccompProgram {
        let fd: FileDescriptor
        do {
            fd = FileDescriptor(rawValue: try valueOrNegatedErrno(unsafe corral_memfd_create("corral-seccomp")).get())
        } catch {
            throw CorralError(.setupFailed, operation: "memfd_create", errno: error)
        }
        defer { fd.closeChecked() }
        let rc = unsafe seccomp_export_bpf(ctx, fd.rawValue)
        if rc < 0 { throw CorralError(.setupFailed, operation: "seccomp_export_bpf", errno: Errno(rawValue: -rc)) }
        let size = lseek(fd.rawValue, 0, SEEK_CUR)
        _ = lseek(fd.rawValue, 0, SEEK_SET)
        do {
            return SeccompProgram(bytes: try fd.readFully(count: Int(size)))
        } catch {
            throw CorralError(.setupFailed, operation: "read seccomp program", errno: error)
        }
    }
}

extension SeccompProgram {
    /// Sets no_new_privs and installs `programs` in the *calling* process, irreversibly.
    /// For exit tests and single-threaded tools; Corral's launcher installs filters in the
    /// sandboxed child instead.
    ///
    /// The corresponding C function is `seccomp(SECCOMP_SET_MODE_FILTER)`.
    public static func installInCurrentProcess(_ programs: [SeccompProgram]) throws(Errno) {
        for program in programs {
            let rc = unsafe program.bytes.withUnsafeBytes { raw in
                unsafe corral_seccomp_install(raw.baseAddress, UInt32(program.instructionCount))
            }
            if rc < 0 { throw Errno(rawValue: -rc) }
        }
    }

    /// Installs this watch program on the *calling thread* only (no TSYNC), irreversibly for
    /// that thread, and returns its listener. For tests that serve a `SyscallWatcher`
    /// in-process: the filter has no user left once the thread exits.
    ///
    /// The corresponding C function is `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER)`.
    func installWatchOnCurrentThread() throws(Errno) -> FileDescriptor {
        let rc = unsafe bytes.withUnsafeBytes { raw in
            unsafe corral_seccomp_install_listener(raw.baseAddress, UInt32(instructionCount), corral_SECCOMP_WATCH_FLAGS)
        }
        if rc < 0 { throw Errno(rawValue: -rc) }
        return FileDescriptor(rawValue: rc)
    }
}
