import Foundation
import Glibc
import SystemPackage
import Testing
@testable import CorralSystem

extension CgroupTests {
    /// What this host lets the tests do for real (root, writable hierarchies).
    enum Real {
        static let host = CgroupHost.detect()
        static let usable = getuid() == 0 && CgroupPlan(host: host, limits: CgroupLimits()).notWritable == nil
        static func can(_ limits: CgroupLimits) -> Bool {
            usable && CgroupPlan(host: host, limits: limits).unenforceable.isEmpty
        }
        static let unified = usable && host.unified?.writable == true
        static let legacyFreezer = usable && host.legacy("freezer")?.writable == true
        /// A controller the v2 root offers (hugetlb on this build machine), preferring one
        /// already enabled there; for the delegation test, which needs the real v2 root.
        static let spareV2Controller: String? = {
            guard usable, let unified = host.unified, unified.writable,
                  MountEntry.parseCgroupMounts(CgroupFS.read("/proc/self/mountinfo") ?? "")
                      .contains(where: { $0.fileSystem == "cgroup2" && $0.mountPoint == unified.mountPoint && $0.root == "/" })
            else { return nil }
            let offered = CgroupFS.controllerNames(CgroupFS.read(unified.mountPoint + "/cgroup.controllers") ?? "")
            let enabled = CgroupFS.controllerNames(CgroupFS.read(unified.mountPoint + "/cgroup.subtree_control") ?? "")
            return offered.intersection(enabled).sorted().first ?? offered.sorted().first
        }()
        /// The same host without its v2 tree: everything from v1 (freezer loop for kill).
        static var legacyOnly: CgroupHost {
            var host = host
            host.unified = nil
            return host
        }
    }

    /// A child process started with Foundation, optionally waiting for a line on stdin (the
    /// way the sandbox's init waits for the supervisor's go-ahead) before it does anything.
    final class Child {
        let process = Process()
        private let input = Pipe()
        private let output = Pipe()

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: arguments[0])
            process.arguments = Array(arguments.dropFirst())
            process.standardInput = input
            process.standardOutput = output
            try process.run()
        }

        /// A Python program that first waits for the go-ahead.
        convenience init(gatedPython program: String) throws {
            try self.init(["/usr/bin/python3", "-c", "import sys\nsys.stdin.readline()\n" + program])
        }

        deinit {
            guard process.isRunning else { return }
            Glibc.kill(pid, SIGKILL)
            // Bounded: a process left in a frozen v1 cgroup does not die until thawed, and a
            // broken test must fail, not hang the run.
            if !CgroupFS.wait(timeout: 5, until: { !process.isRunning }) {
                Issue.record("child \(pid) survived SIGKILL for 5 s (left frozen?)")
            }
        }

        var pid: Int32 { process.processIdentifier }

        func go() { try? input.fileHandleForWriting.write(contentsOf: Data("\n".utf8)) }

        /// One line of the child's output, without the newline ("" at end of file).
        func line() -> String {
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while Glibc.read(output.fileHandleForReading.fileDescriptor, &byte, 1) == 1 && byte != 10 { bytes.append(byte) }
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Waits for the end (at most `timeout` seconds: a broken test fails instead of hanging):
        /// the signal that ended it, or nil and the exit status.
        func wait(timeout: Double = 30) -> (signal: Int32?, status: Int32) {
            guard CgroupFS.wait(timeout: timeout, until: { !process.isRunning }) else {
                Issue.record("child \(pid) still running after \(timeout) s")
                return (nil, -1)
            }
            process.waitUntilExit()
            return process.terminationReason == .uncaughtSignal ? (process.terminationStatus, 0) : (nil, process.terminationStatus)
        }
    }

    static func read(_ path: String) -> String? { CgroupFS.read(path) }

    /// `/proc/<pid>/stat`: the state letter and utime + stime in clock ticks; nil once reaped.
    static func stat(_ pid: Int32) -> (state: String, ticks: Int)? {
        guard let text = read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return (String(fields[0]), Int(fields[11])! + Int(fields[12])!)
    }

    /// Gone, or a zombie waiting for its parent.
    static func isDead(_ pid: Int32) -> Bool {
        guard let state = stat(pid)?.state else { return true }
        return state == "Z" || state == "X"
    }

    @Suite(.serialized, .enabled(if: Real.usable, "needs root and a writable cgroup hierarchy"))
    struct Kernel {
        @Test(.enabled(if: Real.can(CgroupTests.limits), "needs memory, pids and cpu controllers"))
        func limitsReadBackExactly() throws {
            let group = try RunCgroup.create(limits: CgroupTests.limits, host: Real.host)
            defer { try? group.remove() }
            let memory = try #require(group.memory)
            let pids = try #require(group.pids)
            if memory.version == 1 {
                #expect(read(memory.directory + "/memory.limit_in_bytes") == "67108864\n")
                if FileManager.default.fileExists(atPath: memory.directory + "/memory.memsw.limit_in_bytes") {
                    #expect(read(memory.directory + "/memory.memsw.limit_in_bytes") == "67108864\n")
                }
            } else {
                #expect(read(memory.directory + "/memory.max") == "67108864\n")
                if FileManager.default.fileExists(atPath: memory.directory + "/memory.swap.max") {
                    #expect(read(memory.directory + "/memory.swap.max") == "0\n")
                }
            }
            #expect(read(pids.directory + "/pids.max") == "32\n")
            if let cpu = Real.host.legacy("cpu"), Real.host.unified?.controllers.contains("cpu") != true {
                #expect(read("\(cpu.directory)/\(group.name)/cpu.cfs_quota_us") == "50000\n")
                #expect(read("\(cpu.directory)/\(group.name)/cpu.cfs_period_us") == "100000\n")
            } else {
                #expect(read("\(Real.host.unified!.directory)/\(group.name)/cpu.max") == "50000 100000\n")
            }
            // One folder per hierarchy used, each inside this process's own cgroup there.
            var expected = Real.host.unified.map { ["\($0.directory)/\(group.name)"] } ?? []
            for controller in ["memory", "pids", "cpu"] {
                if let h = Real.host.legacy(controller), !expected.contains("\(h.directory)/\(group.name)") {
                    expected.append("\(h.directory)/\(group.name)")
                }
            }
            #expect(group.directories == expected)
            try group.remove()
            #expect(group.directories.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        }

        @Test func attachedChildIsInEveryHierarchyAndKillEndsIt() throws {
            let group = try RunCgroup.create(limits: CgroupLimits(), host: Real.host)
            defer { try? group.remove() }
            let child = try Child(["/bin/sleep", "30"])
            try group.attach(pid: child.pid)
            for directory in group.directories {
                #expect(read(directory + "/cgroup.procs") == "\(child.pid)\n", "\(directory)")
            }
            // The kernel's own view: every hierarchy used names the run's group.
            let lines = try #require(read("/proc/\(child.pid)/cgroup")).split(separator: "\n")
            let inGroup = lines.filter { $0.hasSuffix("/" + group.name) }
            #expect(inGroup.count == group.directories.count, "\(lines)")
            #expect(group.processes() == [child.pid])
            #expect(group.isPopulated)

            try group.kill()
            #expect(child.wait().signal == SIGKILL)
            #expect(group.processes() == [])
            #expect(!group.isPopulated)
            try group.remove()
            #expect(group.directories.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
            try group.remove()  // already gone: not an error
        }

        /// CPU time of this process's reaped children (user + system), in seconds.
        static func childrenCPUSeconds() -> Double {
            var usage = rusage()
            getrusage(RUSAGE_CHILDREN.rawValue, &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        }

        @Test func usageCountsTheChildsCPUTime() throws {
            let group = try RunCgroup.create(limits: CgroupLimits(), host: Real.host)
            defer { try? group.remove() }
            let before = Self.childrenCPUSeconds()
            let child = try Child(gatedPython: """
                import time
                start = time.process_time()
                while time.process_time() - start < 0.5:
                    for i in range(100000): pass  # user time: process_time() itself is a syscall
                """)
            try group.attach(pid: child.pid)
            child.go()
            let end = child.wait()
            #expect(end.signal == nil && end.status == 0)
            // Everything the child used, start-up before the attach included (and any other
            // child this test process reaped meanwhile: an upper bound).
            let total = Self.childrenCPUSeconds() - before
            let usage = group.usage()
            let user = try #require(usage.cpuUserSeconds)
            let system = try #require(usage.cpuSystemSeconds)
            // At least the 0.5 s spun inside the group (v1 cpuacct samples ticks: 10% slack),
            // at most all the child used.
            #expect(user + system >= 0.45, "user \(user) system \(system)")
            #expect(user >= 0.4)
            #expect(user + system <= total + 0.005, "cgroup \(user + system) s > child \(total) s")
        }

        @Test(.enabled(if: Real.can(CgroupLimits(memoryBytes: 1 << 20)), "needs a memory controller"))
        func allocatingPastTheMemoryLimitIsAnOOMKill() throws {
            let limit: UInt64 = 32 << 20
            let group = try RunCgroup.create(limits: CgroupLimits(memoryBytes: limit), host: Real.host)
            defer { try? group.remove() }
            let child = try Child(gatedPython: "b = b'x' * (256 << 20)\nprint('survived', len(b))")
            try group.attach(pid: child.pid)
            child.go()
            #expect(child.line() == "")
            #expect(child.wait().signal == SIGKILL)
            let usage = group.usage()
            #expect(usage.oomKills == 1)
            withKnownIssue("v1 with memory.memsw.limit_in_bytes set: recent kernels keep no memsw.failcnt (0 on 6.18)") {
                #expect((usage.memoryLimitHits ?? 0) >= 1)
            } when: {
                group.memory?.version == 1 && group.enforcement.first?.mechanism.contains("memsw") == true
            }
            let peak = try #require(usage.memoryPeakBytes)
            #expect(peak <= limit && peak >= limit / 10 * 9, "peak \(peak)")
            #expect(group.enforcement.first?.limit == "memory")
        }

        @Test(.enabled(if: Real.can(CgroupLimits(maxProcesses: 1)), "needs a pids controller"))
        func forkPastTheProcessLimitIsEAGAIN() throws {
            let group = try RunCgroup.create(limits: CgroupLimits(maxProcesses: 8), host: Real.host)
            defer { try? group.remove() }
            let child = try Child(gatedPython: """
                import errno, os, time
                n = 0
                while True:
                    try:
                        pid = os.fork()
                    except OSError as e:
                        print(errno.errorcode[e.errno], n, flush=True)
                        break
                    if pid == 0:
                        time.sleep(30)
                        os._exit(0)
                    n += 1
                sys.stdin.readline()
                """)
            try group.attach(pid: child.pid)
            child.go()
            #expect(child.line() == "EAGAIN 7")  // itself and 7 children make 8
            let usage = group.usage()
            #expect(usage.processesCurrent == 8)
            #expect(usage.processesLimitHits == 1)
            if usage.processesPeak != nil { #expect(usage.processesPeak == 8) }
            let members = group.processes()
            #expect(members.count == 8)
            try group.kill()
            #expect(child.wait().signal == SIGKILL)
            #expect(members.allSatisfy(CgroupTests.isDead))
        }

        // MARK: Freeze and kill, through each mechanism this host has

        @Test(.enabled(if: Real.unified, "needs a writable cgroup v2 tree"))
        func freezeAndThawWithCgroupFreeze() throws { try freezeAndThaw(host: Real.host, version: 2) }

        @Test(.enabled(if: Real.legacyFreezer, "needs a writable cgroup v1 freezer"))
        func freezeAndThawWithTheV1Freezer() throws { try freezeAndThaw(host: Real.legacyOnly, version: 1) }

        func freezeAndThaw(host: CgroupHost, version: Int) throws {
            let group = try RunCgroup.create(limits: CgroupLimits(), host: host)
            defer { try? group.thaw(); try? group.kill(); try? group.remove() }
            let freezer = try #require(group.freezer)
            #expect(freezer.version == version)
            let child = try Child(["/bin/sh", "-c", "while :; do :; done"])
            try group.attach(pid: child.pid)
            #expect(CgroupFS.wait(timeout: 5) { (stat(child.pid)?.ticks ?? 0) > 0 }, "the child never ran")

            try group.freeze()
            if version == 2 {
                #expect(read(freezer.directory + "/cgroup.events")?.contains("frozen 1\n") == true)
            } else {
                #expect(read(freezer.directory + "/freezer.state") == "FROZEN\n")
            }
            let frozen = try #require(stat(child.pid))
            #expect(frozen.state != "R")
            CgroupFS.pause(0.3)
            #expect(stat(child.pid)?.ticks == frozen.ticks, "a frozen process used CPU")

            try group.thaw()
            #expect(CgroupFS.wait(timeout: 5) { (stat(child.pid)?.ticks ?? 0) > frozen.ticks }, "thawed but not running")
            // Kill works on a frozen group too (v1 frozen tasks die only once thawed: kill does that).
            try group.freeze()
            try group.kill()
            #expect(child.wait().signal == SIGKILL)
            #expect(group.processes() == [])
        }

        @Test(.enabled(if: Real.unified, "needs a writable cgroup v2 tree"))
        func killWithCgroupKillLeavesNothing() throws { try killForkingTree(host: Real.host, mechanism: "cgroup v2 cgroup.kill") }

        @Test(.enabled(if: Real.legacyFreezer, "needs a writable cgroup v1 freezer"))
        func killWithTheV1FreezerLoopLeavesNothing() throws {
            try killForkingTree(host: Real.legacyOnly,
                                mechanism: "cgroup v1 freezer, then SIGKILL to each process until none is left")
        }

        /// A child that keeps forking (a bounded fork storm) is killed with everything it
        /// started; no process of it is left and the folders go.
        func killForkingTree(host: CgroupHost, mechanism: String) throws {
            let limits = Real.can(CgroupLimits(maxProcesses: 1)) ? CgroupLimits(maxProcesses: 200) : CgroupLimits()
            let group = try RunCgroup.create(limits: limits, host: host)
            defer { try? group.thaw(); try? group.remove() }
            #expect(group.enforcement.last == CgroupEnforcement(limit: "kill", mechanism: mechanism))
            // Paced, so the storm cannot reach pids.max (where sh would give up and exit on its
            // own) before the kill.
            let child = try Child(["/bin/sh", "-c", "read x; echo started; while :; do sleep 30 & sleep 0.01; done"])
            try group.attach(pid: child.pid)
            child.go()
            #expect(child.line() == "started")
            #expect(CgroupFS.wait(timeout: 5) { group.processes().count > 20 })
            let seen = group.processes()

            try group.kill()
            #expect(group.processes() == [])
            #expect(!group.isPopulated)
            #expect(child.wait().signal == SIGKILL)
            #expect(seen.allSatisfy(CgroupTests.isDead))
            try group.remove()
            #expect(group.directories.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        }

        // MARK: Events for the supervisor's poll loop

        static func isReady(_ source: CgroupEvents.Source, waitingMilliseconds: Int32) -> Bool {
            var fds = [pollfd(fd: source.descriptor, events: source.events, revents: 0)]
            return poll(&fds, 1, waitingMilliseconds) == 1
        }

        @Test(.enabled(if: Real.unified, "needs a writable cgroup v2 tree"))
        func cgroupEventsWakesWhenTheGroupFillsAndEmpties() throws {
            let group = try RunCgroup.create(limits: CgroupLimits(), host: Real.host)
            defer { try? group.remove() }
            let events = try group.openEvents()
            let source = try #require(events.sources.first { $0.name == "cgroup.events" })
            #expect(!Self.isReady(source, waitingMilliseconds: 0))
            let child = try Child(["/bin/sleep", "30"])
            try group.attach(pid: child.pid)
            #expect(Self.isReady(source, waitingMilliseconds: 2000), "populated 1 did not wake the poller")
            events.acknowledge(source)
            #expect(!Self.isReady(source, waitingMilliseconds: 0), "acknowledged, yet still ready")
            try group.kill()
            #expect(Self.isReady(source, waitingMilliseconds: 2000), "populated 0 did not wake the poller")
            #expect(child.wait().signal == SIGKILL)
        }

        @Test(.enabled(if: Real.can(CgroupLimits(memoryBytes: 1 << 20)), "needs a memory controller"))
        func anOOMKillWakesTheMemorySource() throws {
            let group = try RunCgroup.create(limits: CgroupLimits(memoryBytes: 32 << 20), host: Real.host)
            defer { try? group.remove() }
            let events = try group.openEvents()
            // v2: memory.events (POLLPRI); v1: an eventfd on memory.oom_control (POLLIN).
            let expected = group.memory?.version == 2 ? ("memory.events", Int16(POLLPRI)) : ("memory.oom_control", Int16(POLLIN))
            let source = try #require(events.sources.first { $0.name == expected.0 })
            #expect(source.events == expected.1)
            #expect(!Self.isReady(source, waitingMilliseconds: 0))
            let child = try Child(gatedPython: "b = b'x' * (256 << 20)")
            try group.attach(pid: child.pid)
            child.go()
            #expect(child.wait().signal == SIGKILL)
            #expect(Self.isReady(source, waitingMilliseconds: 2000), "the OOM kill did not wake the poller")
            events.acknowledge(source)
            #expect(!Self.isReady(source, waitingMilliseconds: 0), "acknowledged, yet still ready")
        }

        // MARK: v2 delegation (the no-internal-process rule)

        @Test(.enabled(if: Real.spareV2Controller != nil, "needs the real cgroup v2 root with a controller to enable"))
        func aLoneSupervisorMovesIntoALeafToEnableControllers() throws {
            let root = Real.host.unified!.mountPoint
            let controller = Real.spareV2Controller!
            let wasEnabled = CgroupFS.controllerNames(read(root + "/cgroup.subtree_control") ?? "").contains(controller)
            if !wasEnabled { try CgroupFS.write(root + "/cgroup.subtree_control", "+" + controller) }
            defer { if !wasEnabled { try? CgroupFS.write(root + "/cgroup.subtree_control", "-" + controller) } }

            // A delegated scope holding only the supervisor (a sleep stands in for it).
            let scope = "\(root)/corral-test\(getpid())-scope"
            try CgroupFS.makeDirectory(scope)
            defer { try? RunCgroup.removeTree(scope, timeout: 1) }
            let supervisor = try Child(["/bin/sleep", "30"])
            defer { Glibc.kill(supervisor.pid, SIGKILL); _ = supervisor.wait() }
            try CgroupFS.write(scope + "/cgroup.procs", String(supervisor.pid))
            let untouched = read(scope + "/cgroup.subtree_control")
            #expect(untouched == "")

            // Accounting alone does not justify moving the caller: refused, nothing changed.
            let refused = try #require(throws: CorralError.self) {
                try RunCgroup.enableControllers([controller], in: scope, supervisor: supervisor.pid, mayMoveSupervisor: false)
            }
            #expect(refused.errno == .resourceBusy)
            #expect(refused.message?.hasPrefix("the supervisor would have to move into a leaf of its cgroup") == true)
            #expect(read(scope + "/cgroup.procs") == "\(supervisor.pid)\n")
            #expect(read(scope + "/cgroup.subtree_control") == "")

            try RunCgroup.enableControllers([controller], in: scope, supervisor: supervisor.pid)
            #expect(read(scope + "/cgroup.subtree_control") == controller + "\n")
            let leaf = "corral-\(supervisor.pid)-supervisor"
            #expect(read("\(scope)/\(leaf)/cgroup.procs") == "\(supervisor.pid)\n")
            #expect(read(scope + "/cgroup.procs") == "")
            let cgroupFile = try #require(read("/proc/\(supervisor.pid)/cgroup"))
            #expect(cgroupFile.split(separator: "\n").contains("0::/corral-test\(getpid())-scope/\(leaf)"))
            // Seen from the moved supervisor, runs still go into the scope, beside the leaf.
            let seen = CgroupHost(cgroupFile: cgroupFile, mountinfo: read("/proc/\(supervisor.pid)/mountinfo") ?? "",
                                  supervisorPID: supervisor.pid)
            #expect(seen.unified?.directory == scope)
            #expect(seen.unified?.enabled == [controller])
            // Enabled already: nothing to do, no error.
            try RunCgroup.enableControllers([controller], in: scope, supervisor: supervisor.pid)

            // A cgroup the supervisor shares with another process: not Corral's to rearrange.
            let shared = "\(root)/corral-test\(getpid())-shared"
            try CgroupFS.makeDirectory(shared)
            defer { try? RunCgroup.removeTree(shared, timeout: 1) }
            let (first, second) = (try Child(["/bin/sleep", "30"]), try Child(["/bin/sleep", "30"]))
            defer { for child in [first, second] { Glibc.kill(child.pid, SIGKILL); _ = child.wait() } }
            try CgroupFS.write(shared + "/cgroup.procs", String(first.pid))
            try CgroupFS.write(shared + "/cgroup.procs", String(second.pid))
            let error = try #require(throws: CorralError.self) {
                try RunCgroup.enableControllers([controller], in: shared, supervisor: first.pid)
            }
            #expect(error.code == .kernelUnsupported)
            #expect(error.errno == .resourceBusy)
            #expect(error.message == "other processes share this cgroup (2 in cgroup.procs), so its controllers cannot "
                    + "be enabled for the run (cgroup v2 no-internal-process rule)")
            #expect(read(shared + "/cgroup.subtree_control") == "")
            #expect(!FileManager.default.fileExists(atPath: "\(shared)/corral-\(first.pid)-supervisor"))
            #expect(Set(CgroupFS.processIDs(read(shared + "/cgroup.procs") ?? "")) == [first.pid, second.pid])
        }

        // MARK: Cost

        /// create (with limits) + attach + remove, the supervisor's per-run overhead. Prints the
        /// medians; the bound only catches a pathological regression (e.g. a sleep in a loop).
        @Test func costOfCreateAttachRemove() throws {
            let limits = Real.can(CgroupTests.limits) ? CgroupTests.limits : CgroupLimits()
            let child = try Child(["/bin/sleep", "30"])
            let home = ((Real.host.unified.map { [$0] } ?? []) + Real.host.legacy.filter(\.writable)).map(\.directory)
            var create: [Double] = [], attach: [Double] = [], remove: [Double] = []
            for _ in 0..<40 {
                let t0 = HostEnvironment.monotonicSeconds()
                let group = try RunCgroup.create(limits: limits, host: Real.host)
                let t1 = HostEnvironment.monotonicSeconds()
                try group.attach(pid: child.pid)
                let t2 = HostEnvironment.monotonicSeconds()
                for directory in home { try? CgroupFS.write(directory + "/cgroup.procs", String(child.pid)) }
                let t3 = HostEnvironment.monotonicSeconds()
                try group.remove()
                let t4 = HostEnvironment.monotonicSeconds()
                create.append(t1 - t0); attach.append(t2 - t1); remove.append(t4 - t3)
            }
            var detect: [Double] = []
            for _ in 0..<40 {
                let t0 = HostEnvironment.monotonicSeconds()
                _ = CgroupHost.detect()
                detect.append(HostEnvironment.monotonicSeconds() - t0)
            }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] * 1000 }
            let total = median(create) + median(attach) + median(remove)
            print("cgroup cost (ms, median of 40, \(Real.host.layout)): create \(median(create)) attach \(median(attach)) "
                  + "remove \(median(remove)); detect \(median(detect))")
            #expect(total < 50, "create + attach + remove took \(total) ms")
        }

        // MARK: Failure and leftovers

        @Test(.enabled(if: Real.can(CgroupLimits(maxProcesses: 1)), "needs a pids controller"))
        func aRefusedLimitLeavesNothingBehind() throws {
            // pids.max takes at most PID_MAX_LIMIT (4194304): the kernel refuses this with
            // EINVAL after the other folders were made and the memory limit written.
            let error = try #require(throws: CorralError.self) {
                try RunCgroup.create(limits: CgroupLimits(memoryBytes: 64 << 20, maxProcesses: 10_000_000), host: Real.host)
            }
            #expect(error.code == .profileInvalid)
            #expect(error.errno == .invalidArgument)
            let path = try #require(error.path)
            #expect(path.hasSuffix("/pids.max"))
            #expect(error.description.hasPrefix("write `10000000` to `\(path)`: limits.processes: Invalid argument (EINVAL)"))
            let name = String(path.split(separator: "/").dropLast().last!)
            #expect(name.hasPrefix("corral-\(getpid())-"))
            let parents = (Real.host.unified.map { [$0] } ?? []) + Real.host.legacy
            for parent in parents {
                #expect(!FileManager.default.fileExists(atPath: "\(parent.directory)/\(name)"), "\(parent.directory)")
            }
        }

        /// Groups named after a pid that has just ended, the run's (holding `pid`) and its
        /// supervisor leaf.
        static func makeStaleGroups(_ parents: [String], holding pid: Int32) throws -> (stale: String, leaf: String) {
            let finished = try Child(["/bin/true"])
            _ = finished.wait()
            let stale = "corral-\(finished.pid)-1", leaf = "corral-\(finished.pid)-supervisor"
            for parent in parents { try CgroupFS.makeDirectory("\(parent)/\(stale)") }
            try CgroupFS.makeDirectory("\(parents[0])/\(leaf)")
            for parent in parents { try CgroupFS.write("\(parent)/\(stale)/cgroup.procs", String(pid)) }
            return (stale, leaf)
        }

        /// A run's group with groups the sandbox made inside it (two levels) is removed whole:
        /// the first rmdir is refused (EBUSY), the children go, then the group.
        @Test func removeTreeRemovesGroupsMadeInside() throws {
            let parent = try #require(((Real.host.unified.map { [$0] } ?? []) + Real.host.legacy.filter { $0.writable }).first)
            let top = "\(parent.directory)/corral-test\(getpid())-tree"
            try CgroupFS.makeDirectory(top)
            try CgroupFS.makeDirectory(top + "/a")
            try CgroupFS.makeDirectory(top + "/a/b")
            try CgroupFS.makeDirectory(top + "/c")
            try RunCgroup.removeTree(top, timeout: 1)
            #expect(!FileManager.default.fileExists(atPath: top))
        }

        @Test func removeStaleDeletesGroupsOfDeadSupervisorsOnly() throws {
            let parents = ((Real.host.unified.map { [$0] } ?? []) + Real.host.legacy.filter { $0.writable }).map(\.directory)
            let alive = "corral-1-test\(getpid())"  // pid 1 always lives
            try CgroupFS.makeDirectory("\(parents[0])/\(alive)")
            defer { try? CgroupFS.removeDirectory("\(parents[0])/\(alive)") }
            // A concurrent corral run's own removeStale may take the stale groups first (they
            // are stale to it too): the setup is retried then.
            var names: (stale: String, leaf: String)?
            var inside: Child?
            for _ in 0..<5 where inside == nil {
                let candidate = try Child(["/bin/sleep", "30"])
                if let made = try? Self.makeStaleGroups(parents, holding: candidate.pid) {
                    names = made
                    inside = candidate
                } else {
                    kill(candidate.pid, SIGKILL)
                    _ = candidate.wait()
                }
            }
            let (stale, leaf) = try #require(names)
            let child = try #require(inside)

            let removed = RunCgroup.removeStale(host: Real.host)
            // A corral run of another test may remove them between the setup and this call
            // (they are stale to it too); what counts is that they are gone below, their
            // process killed, and the live owner's group kept.
            #expect(!removed.contains(alive))
            #expect(child.wait().signal == SIGKILL)
            for parent in parents { #expect(!FileManager.default.fileExists(atPath: "\(parent)/\(stale)")) }
            #expect(!FileManager.default.fileExists(atPath: "\(parents[0])/\(leaf)"))
            #expect(FileManager.default.fileExists(atPath: "\(parents[0])/\(alive)"))
        }
    }
}
