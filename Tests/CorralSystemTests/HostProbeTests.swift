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

    /// The syscall watcher waits in RECV from 6.11 on, decided from this.
    @Test func kernelVersionsFromReleases() {
        #expect(HostProbe.kernelVersion(release: "6.18.44-fc-v1272").map { [$0.major, $0.minor] } == [6, 18])
        #expect(HostProbe.kernelVersion(release: "6.11-rc1").map { [$0.major, $0.minor] } == [6, 11])
        #expect(HostProbe.kernelVersion(release: "5.15.0-91-generic").map { [$0.major, $0.minor] } == [5, 15])
        #expect(HostProbe.kernelVersion(release: "6") == nil)
        #expect(HostProbe.kernelVersion(release: "unknown") == nil)
        #expect(HostProbe.kernelVersion(release: HostProbe.kernelRelease()) != nil)
    }
}
