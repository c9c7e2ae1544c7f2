import CorralProfile

/// Everything a run will do, decided before anything touches the kernel: the output of
/// `PlanCompiler`, the input of `CorralSystem`'s materialisation. Its `description` is the
/// stable text `corral explain` prints; golden tests compare it and its SHA-256 is the
/// run's plan digest.
public struct LaunchPlan: Sendable, Hashable, CustomStringConvertible {
    public var goalID: String
    public var namespaces: Namespaces
    /// Written by the sandbox's init into its own user namespace (`inside outside count`).
    public var uidMap: IDMapping
    public var gidMap: IDMapping
    public var hostname: String

    public var shape: SandboxShape { SandboxShape(namespaces: namespaces, uidMap: uidMap, gidMap: gidMap) }
    /// Ordered: each step's target exists when it runs (parents first).
    public var mounts: [MountStep]
    public var landlock: LandlockPlan
    public var seccomp: SeccompPlan
    public var rlimits: [ResourceLimit]
    public var network: NetworkMode
    /// The proxy and forwards (modes allowlist and loopback); nil for none and host.
    public var egress: EgressPlan?
    public var command: [String]
    public var environment: [EnvironmentEntry]
    public var workdir: String
    /// The manifest's limits; `rlimits` holds the ones rlimits carry, the supervisor the rest
    /// (cgroup, output cap, clocks).
    public var limits: Limits
    public var wallLimit: Duration? { limits.wall }
    /// Monitor rules, evaluated by the supervisor while the run goes (the syscalls they need
    /// to see are in `seccomp.watched`).
    public var monitor: [MonitorRule]
    /// When the staged writes (the `.overlay` mounts) reach the real folders.
    public var commit: CommitMode

    public var description: String { PlanPrinter.text(of: self) }
}

public struct Namespaces: Sendable, Hashable, CustomStringConvertible {
    public var user = true, pid = true, mount = true, network = true, ipc = true, uts = true, cgroup = true

    public init() {}

    public var names: [String] {
        [("user", user), ("pid", pid), ("mount", mount), ("net", network), ("ipc", ipc), ("uts", uts),
         ("cgroup", cgroup)].filter(\.1).map(\.0)
    }

    public var description: String { "unshare \(joinedStrings(names, separator: " "))" }
}

/// What the sandbox's init is cloned with: known from the profile and the caller's ids
/// alone, so the clone can start before the rest of the plan is compiled.
public struct SandboxShape: Sendable, Hashable {
    public var namespaces: Namespaces
    public var uidMap: IDMapping
    public var gidMap: IDMapping

    public init(namespaces: Namespaces, uidMap: IDMapping, gidMap: IDMapping) {
        self.namespaces = namespaces
        self.uidMap = uidMap
        self.gidMap = gidMap
    }
}

public struct IDMapping: Sendable, Hashable, CustomStringConvertible {
    public var inside: UInt32
    public var outside: UInt32
    public var count: UInt32

    public init(inside: UInt32, outside: UInt32, count: UInt32 = 1) {
        self.inside = inside
        self.outside = outside
        self.count = count
    }

    /// The line written to /proc/PID/uid_map.
    public var description: String { "\(inside) \(outside) \(count)" }
}

/// One step of building the sandbox's filesystem view. Paths are absolute as the sandbox
/// sees them; a bind's host source is the same path on the host.
public struct MountStep: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Bind the host's `path` at the same place.
        case bind(readOnly: Bool)
        /// An overlay at `path` over the host's folder there: the sandbox sees its own
        /// writes, which land in the run's staging layer `layer` (the index of the write entry)
        /// until the run is committed.
        case overlay(layer: Int)
        /// Bind a host device node.
        case deviceBind
        /// Fresh tmpfs with `mode`.
        case tmpfs(mode: UInt32)
        case proc
        case devpts
        /// A symlink at `path` whose text is `to`.
        case symlink(to: String)
        /// Hide `path` (a `deny` entry): empty, unreadable, read-only.
        case mask
        /// Re-bind `path` over itself read-only (procfs knobs).
        case readOnly
    }

    public var kind: Kind
    public var path: String
    public var noexec: Bool
    /// A missing source is skipped instead of failing (bubblewrap's `--ro-bind-try`).
    public var optional: Bool
    /// The manifest entry this step comes from; nil for steps Corral always adds.
    public var origin: ManifestLocation?
    /// tmpfs only: its size in MiB (tmpfs defaults to half the host's memory).
    public var sizeMiB: UInt32?

    public init(_ kind: Kind, _ path: String, noexec: Bool = false, optional: Bool = false,
                origin: ManifestLocation? = nil, sizeMiB: UInt32? = nil) {
        self.kind = kind
        self.path = path
        self.noexec = noexec
        self.optional = optional
        self.origin = origin
        self.sizeMiB = sizeMiB
    }

    public var description: String {
        let flags = (noexec ? " noexec" : "") + (optional ? " optional" : "")
        switch kind {
        case .bind(readOnly: true): return "ro-bind \(path)\(flags)"
        case .bind(readOnly: false): return "bind \(path)\(flags)"
        case .overlay(let layer): return "overlay \(path) layer=\(layer) staged\(flags)"
        case .deviceBind: return "dev-bind \(path)\(flags)"
        case .tmpfs(let mode):
            return "tmpfs \(path) mode=\(String(mode, radix: 8))\(sizeMiB.map { " size=\($0)MiB" } ?? "")\(flags)"
        case .proc: return "proc \(path)\(flags)"
        case .devpts: return "devpts \(path)\(flags)"
        case .symlink(let to): return "symlink \(path) -> \(to)"
        case .mask: return "mask \(path)\(flags)"
        case .readOnly: return "remount-ro \(path)\(flags)"
        }
    }
}

public struct ResourceLimit: Sendable, Hashable, CustomStringConvertible {
    public enum Resource: String, Sendable, Hashable {
        case core, nofile, fsize, nproc, cpu
    }

    public var resource: Resource
    public var soft: UInt64?
    public var hard: UInt64?

    public init(_ resource: Resource, soft: UInt64?, hard: UInt64?) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }

    public var description: String {
        "rlimit \(resource.rawValue) \(soft.map(String.init) ?? "unlimited") \(hard.map(String.init) ?? "unlimited")"
    }
}

public struct EnvironmentEntry: Sendable, Hashable {
    public enum Source: Sendable, Hashable {
        case fixed(String)
        /// Copied from the supervisor's environment when present.
        case passed
        /// Copied like `passed`, but its value is never printed, logged or reported.
        case secret
    }

    public var name: String
    public var source: Source

    public init(name: String, source: Source) {
        self.name = name
        self.source = source
    }
}
