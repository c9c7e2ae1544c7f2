import CCorralLaunch

/// Where a launch failed; mirrors `enum corral_stage` in corral_launch.h (a test checks
/// that the raw values match the C list).
public enum LaunchStage: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case sync = 1, signals, fds, idMaps, mountPropagation, mountSources, newRoot, mounts, pivotRoot,
         hostname, network, rlimits, landlockRules, capabilities, noNewPrivs, spawn, session, chdir,
         landlock, seccomp, exec, namespaces, cgroup

    /// The C enum's count, for the mirror test.
    static let cCount = UInt32(CORRAL_STAGE_COUNT.rawValue)

    public var description: String {
        switch self {
        case .sync: "sync"
        case .signals: "signals"
        case .fds: "fds"
        case .idMaps: "id-maps"
        case .mountPropagation: "mount-propagation"
        case .mountSources: "mount-sources"
        case .newRoot: "new-root"
        case .mounts: "mounts"
        case .pivotRoot: "pivot-root"
        case .hostname: "hostname"
        case .network: "network"
        case .rlimits: "rlimits"
        case .landlockRules: "landlock-rules"
        case .capabilities: "capabilities"
        case .noNewPrivs: "no-new-privs"
        case .spawn: "spawn"
        case .session: "session"
        case .chdir: "chdir"
        case .landlock: "landlock"
        case .seccomp: "seccomp"
        case .exec: "exec"
        case .namespaces: "namespaces"
        case .cgroup: "cgroup"
        }
    }

    /// The system call a stage's failure most likely came from, for messages.
    var operation: String {
        switch self {
        case .sync: "recvmsg (parent go-ahead)"
        case .signals: "prctl(PR_SET_PDEATHSIG)"
        case .fds: "dup2/close_range"
        case .idMaps: "write /proc/self/uid_map"
        case .mountPropagation: "mount(MS_SLAVE|MS_REC)"
        case .mountSources: "open_tree"
        case .newRoot: "fsmount(tmpfs)"
        case .mounts: "mount"
        case .pivotRoot: "pivot_root"
        case .hostname: "sethostname"
        case .network: "ioctl(SIOCSIFFLAGS lo) / bind of an egress listener"
        case .rlimits: "setrlimit"
        case .landlockRules: "landlock_add_rule"
        case .capabilities: "capset"
        case .noNewPrivs: "prctl(PR_SET_NO_NEW_PRIVS)"
        case .spawn: "clone"
        case .session: "setsid"
        case .chdir: "chdir"
        case .landlock: "landlock_restrict_self"
        case .seccomp: "seccomp(SECCOMP_SET_MODE_FILTER)"
        case .exec: "execve"
        case .namespaces: "unshare"
        case .cgroup: "write 0 to the cgroup's tasks file"
        }
    }
}
