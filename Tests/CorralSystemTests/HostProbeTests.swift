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

    // cgroup detection (pure v2, hybrid, v1, subtree mounts) is CgroupHost's, tested with
    // fake mountinfo trees in CgroupTests; HostProbe only renames its layout.

    @Test func thisHostsFacts() {
        let facts = HostProbe().facts()
        #expect(facts.uid == geteuid())
        // The ABI the kernel answers to landlock_create_ruleset(NULL, 0, VERSION), or 0.
        #expect(facts.landlockABI == max(0, corral_raw_syscall(444, 0, 0, 1, 0, 0, 0)))
        #expect(!facts.dynamicLoaders.isEmpty, "an ELF interpreter exists on any glibc host")
        #expect(facts.dynamicLoaders.allSatisfy { $0.hasPrefix("/") && !$0.contains("*") })
    }
}
