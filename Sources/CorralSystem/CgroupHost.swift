import Glibc

/// The cgroup hierarchies of this host as this process sees them: which are mounted (v2
/// unified, v1 controllers, or both), where this process's own cgroup is in each, and
/// whether this user can create groups there.
///
/// Found from `/proc/self/cgroup` (the process's path in each hierarchy) and
/// `/proc/self/mountinfo` (where each hierarchy is mounted, and which part of it), as runc
/// and systemd do; `/sys/fs/cgroup` is not assumed. `procSelf` is a parameter so tests can
/// describe any host with two small files and a folder.
public struct CgroupHost: Sendable, Hashable, CustomStringConvertible {
    public enum Layout: String, Sendable, Hashable {
        /// cgroup v2 only (the unified hierarchy holds the controllers).
        case unified
        /// A v2 tree next to v1 controller hierarchies (systemd's "hybrid" mode).
        case hybrid
        /// cgroup v1 only.
        case legacy
        /// No cgroup hierarchy is mounted.
        case none
    }

    /// One mounted hierarchy, seen from this process.
    public struct Hierarchy: Sendable, Hashable {
        /// 1 or 2.
        public var version: Int
        /// v1: the controllers bound to the hierarchy (`memory`, or `cpu` and `cpuacct` when
        /// mounted together). v2: the controllers `directory` can enable for its children
        /// (its `cgroup.controllers`).
        public var controllers: Set<String>
        /// v2: the controllers already enabled for children (`cgroup.subtree_control`).
        public var enabled: Set<String>
        public var mountPoint: String
        /// This process's cgroup in the hierarchy, as `/proc/self/cgroup` names it.
        public var path: String
        /// The folder run groups are created in: this process's cgroup (v2: its parent when
        /// this process moved itself into a `corral-<pid>-supervisor` leaf).
        public var directory: String
        /// Whether this user may create groups in `directory`.
        public var writable: Bool
    }

    public var layout: Layout
    public var unified: Hierarchy?
    /// The v1 hierarchies that hold a controller Corral uses (memory, pids, cpu, cpuacct,
    /// freezer).
    public var legacy: [Hierarchy]

    /// The v1 controllers the backend can use.
    static let legacyControllers: Set<String> = ["memory", "pids", "cpu", "cpuacct", "freezer"]

    /// The v1 hierarchy holding `controller`.
    public func legacy(_ controller: String) -> Hierarchy? {
        legacy.first { $0.controllers.contains(controller) }
    }

    /// The hierarchies of this process.
    public static func detect(procSelf: String = "/proc/self") -> CgroupHost {
        CgroupHost(cgroupFile: CgroupFS.read("\(procSelf)/cgroup") ?? "",
                   mountinfo: CgroupFS.read("\(procSelf)/mountinfo") ?? "", supervisorPID: getpid())
    }

    /// Builds the picture from the text of `/proc/<pid>/cgroup` and `/proc/<pid>/mountinfo`,
    /// reading each hierarchy's folder for v2 controllers and writability.
    init(cgroupFile: String, mountinfo: String, supervisorPID: Int32) {
        let mounts = MountEntry.parseCgroupMounts(mountinfo)
        var unified: Hierarchy?
        var legacy: [Hierarchy] = []
        for line in cgroupFile.split(separator: "\n") {
            // "hierarchy-ID:controller-list:cgroup-path"; v2 is "0::/path".
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                guard unified == nil else { continue }
                unified = Self.unifiedHierarchy(path: path, mounts: mounts, supervisorPID: supervisorPID)
                continue
            }
            let controllers = Set(fields[1].split(separator: ",").map(String.init))
            guard !controllers.isDisjoint(with: Self.legacyControllers),
                  !legacy.contains(where: { !$0.controllers.isDisjoint(with: controllers) }) else { continue }
            let candidates = mounts.filter { $0.fileSystem == "cgroup" && controllers.isSubset(of: $0.superOptions) }
            guard let (mount, directory) = Self.locate(path, in: candidates) else { continue }
            legacy.append(Hierarchy(version: 1, controllers: controllers, enabled: [], mountPoint: mount.mountPoint,
                                    path: path, directory: directory, writable: CgroupFS.isWritable(directory)))
        }
        self.unified = unified
        self.legacy = legacy
        switch (unified != nil, !legacy.isEmpty) {
        case (true, true): layout = .hybrid
        case (true, false): layout = .unified
        case (false, true): layout = .legacy
        case (false, false): layout = .none
        }
    }

    static func unifiedHierarchy(path: String, mounts: [MountEntry], supervisorPID: Int32) -> Hierarchy? {
        var path = path
        // A supervisor that moved itself into a leaf (see `RunCgroup.enableControllers`) still
        // creates its runs beside that leaf, in the cgroup it was started in.
        if path.hasSuffix("/corral-\(supervisorPID)-supervisor") {
            path = String(path[..<path.lastIndex(of: "/")!])
            if path.isEmpty { path = "/" }
        }
        guard let (mount, directory) = locate(path, in: mounts.filter { $0.fileSystem == "cgroup2" }) else { return nil }
        return Hierarchy(version: 2,
                         controllers: CgroupFS.controllerNames(CgroupFS.read("\(directory)/cgroup.controllers") ?? ""),
                         enabled: CgroupFS.controllerNames(CgroupFS.read("\(directory)/cgroup.subtree_control") ?? ""),
                         mountPoint: mount.mountPoint, path: path, directory: directory,
                         writable: CgroupFS.isWritable(directory))
    }

    /// The first mount that shows `path` (a mount may show only a subtree: its `root`), and
    /// the folder `path` is at there. A cgroup outside every mount (another cgroup
    /// namespace's) gives nil.
    static func locate(_ path: String, in mounts: [MountEntry]) -> (MountEntry, String)? {
        for mount in mounts {
            let root = mount.root == "/" ? "" : mount.root
            guard path == mount.root || path.hasPrefix(root + "/") else { continue }
            let relative = path.dropFirst(root.count)
            let base = mount.mountPoint == "/" ? "" : mount.mountPoint
            // String + String: `+ relative` (a Substring) would look a conformance up at run time.
            return (mount, relative == "/" || relative.isEmpty ? mount.mountPoint : base + String(relative))
        }
        return nil
    }

    // MARK: - Summary for `corral probe`

    /// One line per hierarchy, then the mechanism each limit would use, e.g.
    /// `memory: cgroup v1 memory.limit_in_bytes (+ memory.memsw.limit_in_bytes)`.
    public var description: String {
        var lines = ["cgroups: \(layout.summary)"]
        func describe(_ h: Hierarchy, name: String) -> String {
            var line = "  v\(h.version) \(name): \(h.directory)" + (h.writable ? "" : " (not writable by this user)")
            if h.version == 2 {
                line += "; controllers: " + (h.controllers.isEmpty ? "none" : h.controllers.sorted().joined(separator: " "))
            }
            return line
        }
        if let unified { lines.append(describe(unified, name: "unified")) }
        for h in legacy { lines.append(describe(h, name: h.controllers.sorted().joined(separator: ","))) }
        let plan = CgroupPlan(host: self, limits: CgroupLimits(memoryBytes: 1, maxProcesses: 1, cpuQuota: 1))
        if let problem = plan.notWritable {
            lines.append("  run groups: unavailable (\(problem))")
        } else {
            for (limit, backend) in [("memory", plan.memory), ("processes", plan.pids), ("cpu", plan.cpuLimit)] {
                lines.append("  \(limit): " + (backend.map { plan.mechanism(limit, $0) } ?? "not enforceable here"))
            }
            lines.append("  freeze: " + (plan.freezer.map { plan.mechanism("freeze", $0) } ?? "not available"))
            let noKill: Set<String> = unifiedHasKill ? [] : ["cgroup.kill"]
            lines.append("  kill: " + (plan.freezer.map { plan.mechanism("kill", $0, skipped: noKill) }
                                       ?? "SIGKILL to each process until none is left"))
        }
        return lines.joined(separator: "\n")
    }
}

extension CgroupHost {
    /// Whether groups made in the v2 tree get `cgroup.kill` (Linux 5.14). The supervisor's
    /// cgroup shows the file, unless it is the root (which has neither `cgroup.kill` nor
    /// `cgroup.type`): then the kernel release decides. `RunCgroup.create` checks the
    /// group it made; this is for the summary.
    var unifiedHasKill: Bool {
        guard let unified else { return false }
        if CgroupFS.exists(unified.directory + "/cgroup.kill") { return true }
        if CgroupFS.exists(unified.directory + "/cgroup.type") { return false }
        guard let version = HostProbe.kernelVersion(release: HostProbe.kernelRelease()) else { return false }
        return version >= (5, 14)
    }
}

extension CgroupHost.Layout {
    var summary: String {
        switch self {
        case .unified: "v2 (unified)"
        case .hybrid: "hybrid (v1 controllers and a v2 tree)"
        case .legacy: "v1"
        case .none: "none mounted"
        }
    }
}

/// One line of `/proc/self/mountinfo` (proc(5)):
/// `36 35 98:0 /root /mount/point rw,noatime master:1 - cgroup2 cgroup2 rw,nsdelegate`.
struct MountEntry: Sendable, Hashable {
    /// The part of the file system the mount shows (a cgroup path for cgroup mounts).
    var root: String
    var mountPoint: String
    var fileSystem: String
    /// Per-superblock options; for cgroup v1 they name the controllers (`rw,cpu,cpuacct`).
    var superOptions: Set<String>

    /// The cgroup and cgroup2 mounts in `text`. Scanned as bytes, and other lines are passed
    /// over before they are split into fields: this runs at every launch with limits, and a
    /// host has dozens of mounts (String's Character-wise split cost ~0.1 ms here).
    static func parseCgroupMounts(_ text: String) -> [MountEntry] {
        let bytes = Array(text.utf8)
        let marker = Array(" - cgroup".utf8)
        var entries: [MountEntry] = []
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            let line = bytes[lineStart..<lineEnd]
            guard line.count >= marker.count,
                  (line.startIndex...(line.endIndex - marker.count)).contains(where: { start in
                      line[start..<(start + marker.count)].elementsEqual(marker)
                  }) else { continue }
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard let dash = fields.firstIndex(where: { $0.elementsEqual([UInt8(ascii: "-")]) }), dash >= 6,
                  fields.count >= dash + 4 else { continue }
            func text(_ field: ArraySlice<UInt8>) -> String { String(decoding: field, as: UTF8.self) }
            entries.append(MountEntry(root: unescape(Substring(text(fields[3]))), mountPoint: unescape(Substring(text(fields[4]))),
                                      fileSystem: text(fields[dash + 1]),
                                      superOptions: Set(fields[dash + 3].split(separator: UInt8(ascii: ",")).map(text))))
        }
        return entries
    }

    /// Undoes the octal escapes the kernel writes for space, tab, newline and backslash.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
