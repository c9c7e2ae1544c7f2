import Foundation
import Glibc
import SystemPackage
import Testing
@testable import CorralSystem

/// The per-run cgroup backend: host detection and the v2/v1 file formats against fake trees
/// (any machine), then the real kernel (root with writable cgroups): limits read back,
/// membership, usage, OOM kill, pids limit, freeze, kill, removal and stale groups.
struct CgroupTests {
    // MARK: - Fixtures

    /// A temporary folder removed on deinit.
    final class Tree {
        let root: String
        init() throws {
            var template = Array("/tmp/corral-cgroup-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            root = String(cString: try #require(made))
        }
        deinit { _ = system("rm -rf '\(root)'") }

        func write(_ path: String, _ text: String) {
            let full = root + "/" + path
            _ = system("mkdir -p '\(full.split(separator: "/").dropLast().joined(separator: "/").prependingSlash)'")
            try! HostEnvironment.writeFile(full, Array(text.utf8))
        }

        func mkdir(_ path: String) { _ = system("mkdir -p '\(root)/\(path)'") }
        func read(_ path: String) -> String? { CgroupFS.read(root + "/" + path) }
    }

    /// A hybrid host like this machine, under `tree`: v1 memory (this process in a
    /// sub-group), pids, freezer, cpu+cpuacct mounted together, a name=systemd hierarchy, and
    /// a v2 tree without controllers.
    static func fakeHybrid(_ tree: Tree) -> CgroupHost {
        let fs = tree.root + "/fs"
        tree.write("proc/cgroup", """
            9:name=systemd:/
            8:pids:/
            6:freezer:/
            4:memory:/process_api/abc
            2:cpu,cpuacct:/
            0::/

            """)
        tree.write("proc/mountinfo", """
            31 23 0:28 / \(fs) rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / \(fs)/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
            35 31 0:32 / \(fs)/memory rw,relatime - cgroup cgroup rw,memory
            37 31 0:34 / \(fs)/freezer rw,relatime - cgroup cgroup rw,freezer
            39 31 0:36 / \(fs)/pids rw,relatime - cgroup cgroup rw,pids
            40 31 0:37 / \(fs)/systemd rw,relatime - cgroup cgroup rw,name=systemd
            41 31 0:38 / \(fs)/unified rw,relatime - cgroup2 cgroup2 rw

            """)
        for dir in ["cpu,cpuacct", "memory/process_api/abc", "freezer", "pids", "systemd"] { tree.mkdir("fs/" + dir) }
        tree.write("fs/unified/cgroup.controllers", "hugetlb\n")
        tree.write("fs/unified/cgroup.subtree_control", "\n")
        return CgroupHost.detect(procSelf: tree.root + "/proc")
    }

    /// A pure v2 host, this process in `/user.slice/corral.scope`, which offers cpu, memory
    /// and pids to its children.
    static func fakeUnified(_ tree: Tree) -> CgroupHost {
        tree.write("proc/cgroup", "0::/user.slice/corral.scope\n")
        tree.write("proc/mountinfo", "41 31 0:38 / \(tree.root)/fs rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n")
        tree.write("fs/user.slice/corral.scope/cgroup.controllers", "cpuset cpu io memory pids\n")
        tree.write("fs/user.slice/corral.scope/cgroup.subtree_control", "\n")
        return CgroupHost.detect(procSelf: tree.root + "/proc")
    }

    static let limits = CgroupLimits(memoryBytes: 64 << 20, maxProcesses: 32, cpuQuota: 0.5)

    // MARK: - Detection

    @Test func detectsAHybridHostFromProcFiles() throws {
        let tree = try Tree()
        let host = Self.fakeHybrid(tree)
        let fs = tree.root + "/fs"
        #expect(host.layout == .hybrid)
        #expect(host.unified?.directory == "\(fs)/unified")
        #expect(host.unified?.controllers == ["hugetlb"])
        #expect(host.legacy.map(\.directory).sorted()
                == ["\(fs)/cpu,cpuacct", "\(fs)/freezer", "\(fs)/memory/process_api/abc", "\(fs)/pids"])
        #expect(host.legacy("cpuacct") == host.legacy("cpu"), "mounted together: one hierarchy")
        #expect(host.legacy("memory")?.path == "/process_api/abc")
        #expect(host.description == """
            cgroups: hybrid (v1 controllers and a v2 tree)
              v2 unified: \(fs)/unified; controllers: hugetlb
              v1 pids: \(fs)/pids
              v1 freezer: \(fs)/freezer
              v1 memory: \(fs)/memory/process_api/abc
              v1 cpu,cpuacct: \(fs)/cpu,cpuacct
              memory: cgroup v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes
              processes: cgroup v1 pids.max
              cpu: cgroup v1 cpu.cfs_quota_us per cpu.cfs_period_us
              freeze: cgroup v2 cgroup.freeze
              kill: cgroup v2 cgroup.kill
            """)
    }

    @Test func mountShowingASubtreeAndEscapedMountPoint() throws {
        let tree = try Tree()
        // A container's view: the mount shows only /kubepods/pod1, at a path with a space.
        tree.mkdir("my fs/ctr")
        tree.write("proc/cgroup", "0::/kubepods/pod1/ctr\n")
        tree.write("proc/mountinfo", "50 40 0:38 /kubepods/pod1 \(tree.root)/my\\040fs rw - cgroup2 cgroup2 rw\n")
        let host = CgroupHost.detect(procSelf: tree.root + "/proc")
        #expect(host.layout == .unified)
        #expect(host.unified?.directory == "\(tree.root)/my fs/ctr")
        // A cgroup the mount does not show (another namespace's) is unusable, not misplaced.
        tree.write("proc/cgroup", "0::/elsewhere\n")
        #expect(CgroupHost.detect(procSelf: tree.root + "/proc").layout == .none)
    }

    @Test func supervisorLeafCountsAsItsParent() throws {
        let tree = try Tree()
        tree.write("proc/cgroup", "0::/app.slice/run.scope/corral-4242-supervisor\n")
        tree.write("proc/mountinfo", "41 31 0:38 / \(tree.root) rw - cgroup2 cgroup2 rw\n")
        let host = CgroupHost(cgroupFile: tree.read("proc/cgroup")!, mountinfo: tree.read("proc/mountinfo")!,
                              supervisorPID: 4242)
        #expect(host.unified?.directory == "\(tree.root)/app.slice/run.scope")
        let other = CgroupHost(cgroupFile: tree.read("proc/cgroup")!, mountinfo: tree.read("proc/mountinfo")!,
                               supervisorPID: 7)
        #expect(other.unified?.directory == "\(tree.root)/app.slice/run.scope/corral-4242-supervisor")
    }

    @Test func thisHostMatchesProcSelfCgroup() throws {
        let host = CgroupHost.detect()
        let lines = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8).split(separator: "\n")
        if let memoryLine = lines.first(where: { $0.split(separator: ":", maxSplits: 2)[1] == "memory" }),
           let memory = host.legacy("memory") {
            let path = String(memoryLine.split(separator: ":", maxSplits: 2)[2])
            #expect(memory.path == path)
            #expect(memory.directory == memory.mountPoint + (path == "/" ? "" : path))
            #expect(FileManager.default.fileExists(atPath: memory.directory + "/memory.limit_in_bytes"))
        }
        if let unified = host.unified {
            #expect(FileManager.default.fileExists(atPath: unified.directory + "/cgroup.procs"))
        }
        #expect(host.description.hasPrefix("cgroups: \(host.layout.summary)\n"))
        print(host.description)
    }

    // MARK: - File formats on fake trees

    @Test func unifiedLimitsFormatsAndDelegation() throws {
        let tree = try Tree()
        let host = Self.fakeUnified(tree)
        let parent = "fs/user.slice/corral.scope"
        let group = try RunCgroup.create(limits: Self.limits, host: host)
        let dir = "\(parent)/\(group.name)"
        #expect(group.name.hasPrefix("corral-\(getpid())-"))
        #expect(group.directories == ["\(tree.root)/\(dir)"])
        #expect(tree.read("\(parent)/cgroup.subtree_control") == "+cpu +memory +pids")
        #expect(tree.read("\(dir)/memory.max") == "67108864")
        #expect(tree.read("\(dir)/memory.swap.max") == "0")
        #expect(tree.read("\(dir)/pids.max") == "32")
        #expect(tree.read("\(dir)/cpu.max") == "50000 100000")
        #expect(group.enforcement.map(\.description) == [
            "memory: cgroup v2 memory.max and memory.swap.max 0",
            "processes: cgroup v2 pids.max",
            "cpu: cgroup v2 cpu.max",
            "freeze: cgroup v2 cgroup.freeze",
            // The fake folder has no cgroup.kill, as before Linux 5.14.
            "kill: cgroup v2 cgroup.freeze, then SIGKILL to each process until none is left (no cgroup.kill before Linux 5.14)",
        ])

        tree.write("\(dir)/cgroup.events", "populated 1\nfrozen 1\n")
        try group.freeze()
        #expect(tree.read("\(dir)/cgroup.freeze") == "1")
        try group.thaw()
        #expect(tree.read("\(dir)/cgroup.freeze") == "0")

        // Usage from the kernel's v2 formats (Documentation/admin-guide/cgroup-v2.rst).
        tree.write("\(dir)/memory.peak", "66912256\n")
        tree.write("\(dir)/memory.current", "1052672\n")
        tree.write("\(dir)/memory.events", "low 0\nhigh 0\nmax 117\noom 2\noom_kill 1\noom_group_kill 0\n")
        tree.write("\(dir)/pids.current", "3\n")
        tree.write("\(dir)/pids.peak", "32\n")
        tree.write("\(dir)/pids.events", "max 5\nmax.imposed 5\n")
        tree.write("\(dir)/cpu.stat", "usage_usec 1750000\nuser_usec 1250000\nsystem_usec 500000\nnice_usec 0\n"
                   + "core_sched.force_idle_usec 0\nnr_periods 20\nnr_throttled 3\nthrottled_usec 90000\n")
        var expected = CgroupUsage()
        expected.memoryPeakBytes = 66_912_256
        expected.memoryCurrentBytes = 1_052_672
        expected.oomKills = 1
        expected.memoryLimitHits = 117
        expected.processesCurrent = 3
        expected.processesPeak = 32
        expected.processesLimitHits = 5
        expected.cpuUserSeconds = 1.25
        expected.cpuSystemSeconds = 0.5
        #expect(group.usage() == expected)
    }

    @Test func unifiedControllersAlreadyEnabledAreNotRewritten() throws {
        let tree = try Tree()
        let host = Self.fakeUnified(tree)
        tree.write("fs/user.slice/corral.scope/cgroup.subtree_control", "memory pids\n")
        _ = try RunCgroup.create(limits: CgroupLimits(memoryBytes: 64 << 20), host: host)
        #expect(tree.read("fs/user.slice/corral.scope/cgroup.subtree_control") == "memory pids\n")
    }

    @Test func legacyOnlyHostUsesV1FilesCpuacctAndFreezer() throws {
        let tree = try Tree()
        var host = Self.fakeHybrid(tree)
        host.unified = nil
        let fs = tree.root + "/fs"
        let group = try RunCgroup.create(limits: Self.limits, host: host)
        let name = group.name
        #expect(group.directories == ["\(fs)/memory/process_api/abc/\(name)", "\(fs)/pids/\(name)",
                                      "\(fs)/cpu,cpuacct/\(name)", "\(fs)/freezer/\(name)"])
        #expect(tree.read("fs/memory/process_api/abc/\(name)/memory.limit_in_bytes") == "67108864")
        #expect(tree.read("fs/memory/process_api/abc/\(name)/memory.memsw.limit_in_bytes") == "67108864")
        #expect(tree.read("fs/pids/\(name)/pids.max") == "32")
        #expect(tree.read("fs/cpu,cpuacct/\(name)/cpu.cfs_period_us") == "100000")
        #expect(tree.read("fs/cpu,cpuacct/\(name)/cpu.cfs_quota_us") == "50000")
        #expect(group.enforcement.map(\.description) == [
            "memory: cgroup v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes",
            "processes: cgroup v1 pids.max",
            "cpu: cgroup v1 cpu.cfs_quota_us per cpu.cfs_period_us",
            "freeze: cgroup v1 freezer.state",
            "kill: cgroup v1 freezer, then SIGKILL to each process until none is left",
        ])
        tree.write("fs/freezer/\(name)/freezer.state", "FROZEN\n")
        try group.freeze()
        try group.thaw()
        #expect(tree.read("fs/freezer/\(name)/freezer.state") == "THAWED")

        // Usage from the kernel's v1 formats (Documentation/admin-guide/cgroup-v1/).
        tree.write("fs/memory/process_api/abc/\(name)/memory.max_usage_in_bytes", "67108864\n")
        tree.write("fs/memory/process_api/abc/\(name)/memory.usage_in_bytes", "4096\n")
        tree.write("fs/memory/process_api/abc/\(name)/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
        tree.write("fs/memory/process_api/abc/\(name)/memory.failcnt", "4711\n")
        tree.write("fs/memory/process_api/abc/\(name)/memory.memsw.failcnt", "289\n")
        tree.write("fs/pids/\(name)/pids.current", "1\n")
        tree.write("fs/pids/\(name)/pids.events", "max 9\n")
        tree.write("fs/cpu,cpuacct/\(name)/cpuacct.usage_user", "2500000000\n")
        tree.write("fs/cpu,cpuacct/\(name)/cpuacct.usage_sys", "125000000\n")
        var expected = CgroupUsage()
        expected.memoryPeakBytes = 64 << 20
        expected.memoryCurrentBytes = 4096
        expected.oomKills = 2
        expected.memoryLimitHits = 5000
        expected.processesCurrent = 1
        expected.processesLimitHits = 9
        expected.cpuUserSeconds = 2.5
        expected.cpuSystemSeconds = 0.125
        #expect(group.usage() == expected)
    }

    @Test func nothingWritableIsKernelUnsupportedWithAHint() throws {
        let tree = try Tree()
        var host = Self.fakeHybrid(tree)
        host.unified?.writable = false
        for i in host.legacy.indices { host.legacy[i].writable = false }
        let error = try #require(throws: CorralError.self) { try RunCgroup.create(limits: CgroupLimits(), host: host) }
        #expect(error.code == .kernelUnsupported)
        #expect(error.description.hasPrefix("create cgroup `\(tree.root)/fs/unified`: not writable by this user: "))
        #expect(error.hint == "cgroup not writable by this user: run as root, or under a systemd-delegated cgroup "
                + "(`systemd-run --user --scope -p Delegate=yes corral …`), or set limits.enforce: best-effort")
        #expect(FileManager.default.subpaths(atPath: tree.root + "/fs")?.contains { $0.contains("corral-") } == false)
    }

    @Test func limitWithoutAControllerIsKernelUnsupported() throws {
        let tree = try Tree()
        var host = Self.fakeHybrid(tree)
        host.legacy.removeAll { $0.controllers.contains("pids") }
        let error = try #require(throws: CorralError.self) {
            try RunCgroup.create(limits: CgroupLimits(maxProcesses: 8), host: host)
        }
        #expect(error.code == .kernelUnsupported)
        #expect(error.message == "limits.processes: no writable cgroup controller on this host (`corral probe` shows what there is)")
    }

    @Test(arguments: [(CgroupLimits(cpuQuota: 0), "limits.cpu_quota: 0.0 is not a share of a core between 0.01 and 1024"),
                      (CgroupLimits(cpuQuota: .nan), "limits.cpu_quota: nan is not a share of a core between 0.01 and 1024"),
                      (CgroupLimits(memoryBytes: 4096), "limits.memory: 4096 bytes is below the 1 MiB minimum"),
                      (CgroupLimits(maxProcesses: 0), "limits.processes: must be at least 1 (the command itself)")])
    func impossibleLimitsAreRefusedBeforeAnythingIsMade(limits: CgroupLimits, message: String) throws {
        let tree = try Tree()
        let host = Self.fakeUnified(tree)
        let error = try #require(throws: CorralError.self) { try RunCgroup.create(limits: limits, host: host) }
        #expect(error.code == .profileInvalid)
        #expect(error.message == message)
        #expect(tree.read("fs/user.slice/corral.scope/cgroup.subtree_control") == "\n")
    }

    @Test func groupNamesAndOwners() {
        #expect(RunCgroup.owner(ofGroup: "corral-123-7") == 123)
        #expect(RunCgroup.owner(ofGroup: "corral-123-supervisor") == 123)
        #expect(RunCgroup.owner(ofGroup: "corral-123-") == nil)
        #expect(RunCgroup.owner(ofGroup: "corral-test-1") == nil)
        #expect(RunCgroup.owner(ofGroup: "other-123-1") == nil)
    }
}

extension String {
    fileprivate var prependingSlash: String { hasPrefix("/") ? self : "/" + self }
}
