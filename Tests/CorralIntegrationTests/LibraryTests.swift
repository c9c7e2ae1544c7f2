import Corral
import Foundation
import Synchronization
import Testing

/// The Swift library, driven in-process: `Corral.run` returns the command's termination and
/// a report, a launch failure is a thrown `CorralError` with its stage, and many runs in a
/// row leave no descriptor, child process or memory mapping behind in the supervisor.
@Suite(.serialized, .tags(.integration), .enabled(if: HostSupport.isRoot, "the in-process runs use the root variant"))
struct LibraryTests {
    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    static func childCount() -> Int {
        let me = getpid()
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == me
        }.count
    }

    @Test func runReturnsTerminationAndReport() async throws {
        try await withSandbox(.root) { sandbox in
            let loaded = try Corral.loadProfile(at: try sandbox.write(Manifest(sandbox: sandbox)))
            let result = try await Corral.run(loaded, options: RunOptions(command: [sandbox.probe, "exit", "7"],
                                                                          environment: [:]))
            #expect(result.termination == .exited(7))
            #expect(result.report.exitStatus == 7)
            #expect(result.report.goalID == Manifest.goalID)
            #expect(result.report.manifestSHA256?.count == 64)
        }
    }

    @Test func aLaunchFailureIsAThrownErrorWithItsStage() async throws {
        try await withSandbox(.root) { sandbox in
            let loaded = try Corral.loadProfile(at: try sandbox.write(Manifest(sandbox: sandbox)))
            await #expect {
                _ = try await Corral.run(loaded, options: RunOptions(command: ["/nonexistent"], environment: [:]))
            } throws: { error in
                let error = try #require(error as? CorralError)
                return error.stage == .exec && error.errno == .noSuchFileOrDirectory && error.code == .execFailed
            }
        }
    }

    /// The sandbox starts inside its run's cgroup in every hierarchy the run uses: cloned
    /// into the v2 group, and moved into each v1 group by init itself. Read from the host
    /// while the command runs: each of init's lines for a hierarchy with a writable group
    /// (v1 memory and pids, the v2 tree) names the same run group of this supervisor (a join
    /// that did not happen would leave init in this process's group there). It cannot tell
    /// "started inside" from "moved there before the command ran"; the launch's speed does.
    @Test(.enabled(if: HostSupport.runCgroupsUnavailable == nil, "\(HostSupport.runCgroupsUnavailable ?? "")"))
    func theSandboxStartsInsideItsCgroupEverywhere() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["memory: 128MiB", "processes: 32"]
            let loaded = try Corral.loadProfile(at: try sandbox.write(manifest))
            let membership = Mutex<[String]>([])
            var options = RunOptions(command: [sandbox.probe, "sleep", "0.3"], environment: [:])
            options.quiet = true
            options.eventObserver = { event in
                guard event.type == .start, let pid = event.pid,
                      let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return }
                membership.withLock { $0 = text.split(separator: "\n").map(String.init) }
            }
            let result = try await Corral.run(loaded, options: options)
            #expect(result.termination == .exited(0))
            let lines = membership.withLock { $0 }
            func group(_ controller: String) -> String? {
                lines.first { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).dropFirst().first.map(String.init) == controller }?
                    .split(separator: "/").last.map(String.init)
            }
            let host = CgroupHost.detect()
            let used = ["memory", "pids"].filter { host.legacy($0)?.writable == true }
                + (host.unified?.writable == true ? [""] : [])  // the v2 line: "0::/path"
            #expect(!used.isEmpty, "no writable hierarchy, yet run cgroups were made: \(host)")
            let run = group(used.first ?? "")
            #expect(run?.hasPrefix("corral-\(getpid())-") == true, "\(lines)")
            for controller in used { #expect(group(controller) == run, "\(controller): \(lines)") }
        }
    }

    /// 200 runs in a row, in this process, each with its own cgroup (memory and process
    /// limits) where this host can make one: no descriptor, child process, memory mapping,
    /// mount or cgroup per run is left. Other suites run in parallel in this process and open
    /// a few descriptors of their own, so the check allows a small drift; a per-run leak
    /// would add 200 or more.
    @Test func manyRunsLeaveNothingBehind() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            if HostSupport.runCgroupsUnavailable == nil { manifest.limits = ["memory: 128MiB", "processes: 32"] }
            let loaded = try Corral.loadProfile(at: try sandbox.write(manifest))
            var options = RunOptions(command: [sandbox.probe, "exit", "0"], environment: [:])
            options.quiet = true
            _ = try await Corral.run(loaded, options: options)  // first use of lazily opened things
            let descriptors = Self.openDescriptors(), children = Self.childCount(), mappings = Self.mappingCount()
            let mounts = Self.mountCount()
            for _ in 0..<200 {
                let result = try await Corral.run(loaded, options: options)
                #expect(result.termination == .exited(0))
            }
            #expect(Self.openDescriptors() - descriptors < 20, "descriptors: \(descriptors) → \(Self.openDescriptors())")
            #expect(Self.childCount() - children < 20, "children: \(children) → \(Self.childCount())")
            #expect(Self.mappingCount() - mappings < 20, "mappings: \(mappings) → \(Self.mappingCount())")
            #expect(Self.mountCount() == mounts, "host mounts: \(mounts) → \(Self.mountCount())")
            #expect(MonitorTests.runGroups(prefix: "corral-\(getpid())-").filter { !$0.hasSuffix("-supervisor") } == [],
                    "run cgroups left behind")
        }
    }

    /// Mounts in this process's (the host's) mount namespace.
    static func mountCount() -> Int {
        // procfs files report size 0: read to the end explicitly.
        // Network labs of tests running alongside mount and unmount namespace files
        // (/run/netns/…, nsfs): not this process's doing, so not counted.
        let data = FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() ?? Data()
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .filter { !$0.contains(" - nsfs ") && !$0.contains("/run/netns") }.count
    }

    /// Memory mappings of this process (one entry each in /proc/self/map_files).
    static func mappingCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/map_files").count) ?? -1
    }

    /// The sandbox is cloned before its plan is complete (its namespaces are built while the
    /// paths are resolved). A path that vanished after the manifest was loaded fails that
    /// preparation: the error names the path, and the already-cloned child, its descriptors
    /// and the shared plan arena are all gone — 20 times over.
    @Test func aFailureAfterTheCloneLeavesNothingBehind() async throws {
        try await withSandbox(.root) { sandbox in
            let vanishing = sandbox.root + "/vanishing"
            try FileManager.default.createDirectory(atPath: vanishing, withIntermediateDirectories: true)
            var manifest = Manifest(sandbox: sandbox)
            manifest.read.append(vanishing)
            let loaded = try Corral.loadProfile(at: try sandbox.write(manifest))
            try FileManager.default.removeItem(atPath: vanishing)
            let options = RunOptions(command: [sandbox.probe, "exit", "0"], environment: [:])
            let descriptors = Self.openDescriptors(), children = Self.childCount(), mappings = Self.mappingCount()
            for _ in 0..<20 {
                await #expect {
                    _ = try await Corral.run(loaded, options: options)
                } throws: { error in
                    let error = try #require(error as? CorralError)
                    return error.errno == .noSuchFileOrDirectory && error.path == vanishing
                }
            }
            #expect(Self.openDescriptors() - descriptors < 10, "descriptors: \(descriptors) → \(Self.openDescriptors())")
            #expect(Self.childCount() - children < 10, "children: \(children) → \(Self.childCount())")
            #expect(Self.mappingCount() - mappings < 10, "mappings: \(mappings) → \(Self.mappingCount())")
        }
    }

    /// A launch dropped before "go" (its plan failed) ends its sandbox at once: init sleeps on
    /// the plan's release word, and dropping the launch wakes it to read the closed socket. Without
    /// that wake-up it would end only at its 100 ms check of the socket.
    @Test func aDroppedLaunchEndsItsSandboxAtOnce() async throws {
        try await withSandbox(.root) { sandbox in
            let loaded = try Corral.loadProfile(at: try sandbox.write(Manifest(sandbox: sandbox)))
            let shape = PlanCompiler.shape(of: loaded.profile, uid: getuid(), gid: getgid())
            var waits: [Duration] = []
            for _ in 0..<5 {
                var pending: PendingLaunch? = try Launcher.start(shape)
                let process = try #require(pending?.sandbox)
                usleep(10_000)  // init has built its namespaces and sleeps on the release word
                var alive = pollfd(fd: process.pollDescriptor, events: Int16(POLLIN), revents: 0)
                #expect(poll(&alive, 1, 0) == 0, "init waits for go")
                let dropped = ContinuousClock.now
                pending = nil
                var ended = pollfd(fd: process.pollDescriptor, events: Int16(POLLIN), revents: 0)
                #expect(poll(&ended, 1, 2000) == 1)
                waits.append(ContinuousClock.now - dropped)
                let status = process.reap()
                // init's failure exit at the sync stage: 126, not a kill.
                #expect(status & 0x7F == 0 && (status >> 8) & 0xFF == 126, "wait status \(status)")
            }
            // Without the wake-up every one takes ~90 ms (the 100 ms check less the sleep
            // above); the quickest of five allows for a loaded machine.
            #expect(waits.min()! < .milliseconds(40), "init ended \(waits) after the launch was dropped")
        }
    }

    /// Two runs launched at once from this process: neither sandbox's init may hold a view
    /// of the other's plan arena (a MAP_SHARED mapping shows as "/dev/zero (deleted)").
    @Test func concurrentRunsShareNoPlanMemory() async throws {
        try await withSandbox(.root) { sandbox in
            let loaded = try Corral.loadProfile(at: try sandbox.write(Manifest(sandbox: sandbox)))
            let options = RunOptions(command: [sandbox.probe, "sleep", "4"], environment: ["TOKEN": "secret"])
            async let first = Corral.run(loaded, options: options)
            async let second = Corral.run(loaded, options: options)
            usleep(700_000)  // blocking: a Task.sleep may resume seconds late under the parallel runner
            let me = getpid()
            let inits = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { return false }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 2 && Int32(fields[1]) == me
            }
            #expect(inits.count >= 2, "the two sandboxes' inits are this process's children")
            for pid in inits {
                let maps = (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? ""
                #expect(!maps.contains("/dev/zero (deleted)"), "init \(pid) still maps a plan arena:\n\(maps)")
            }
            #expect(try await first.termination == .exited(0))
            #expect(try await second.termination == .exited(0))
        }
    }
}
