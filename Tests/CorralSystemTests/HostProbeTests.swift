import CCorralLaunch
import Glibc
import Testing
@testable import CorralSystem

/// Host probing against fixture trees (roots are parameters) and against this host.
struct HostProbeTests {
    static func tempTree(_ files: [String: String]) -> String {
        var template = Array("/tmp/corral-probe-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        for (path, content) in files {
            let full = root + "/" + path
            _ = system("mkdir -p \"$(dirname '\(full)')\"")
            try? HostEnvironment.writeFile(full, Array(content.utf8))
        }
        return root
    }

    @Test func pureV2Host() {
        let root = Self.tempTree(["cgroup.controllers": "cpuset cpu io memory pids\n"])
        defer { _ = system("rm -rf '\(root)'") }
        let (version, controllers) = HostProbe(cgroupRoot: root).cgroups()
        #expect(version == "v2")
        #expect(controllers == ["cpuset": "v2", "cpu": "v2", "io": "v2", "memory": "v2", "pids": "v2"])
    }

    @Test func hybridHostLikeThisMachine() {
        let root = Self.tempTree(["unified/cgroup.controllers": "hugetlb\n", "memory/tasks": "", "pids/tasks": "",
                                  "cpu/tasks": ""])
        defer { _ = system("rm -rf '\(root)'") }
        let (version, controllers) = HostProbe(cgroupRoot: root).cgroups()
        #expect(version == "hybrid")
        #expect(controllers == ["hugetlb": "v2", "memory": "v1", "pids": "v1", "cpu": "v1"])
    }

    @Test func thisHostsFacts() {
        let facts = HostProbe().facts()
        #expect(facts.uid == geteuid())
        // The ABI the kernel answers to landlock_create_ruleset(NULL, 0, VERSION), or 0.
        #expect(facts.landlockABI == max(0, corral_raw_syscall(444, 0, 0, 1, 0, 0, 0)))
        #expect(!facts.dynamicLoaders.isEmpty, "an ELF interpreter exists on any glibc host")
        #expect(facts.dynamicLoaders.allSatisfy { $0.hasPrefix("/") && !$0.contains("*") })
    }
}
