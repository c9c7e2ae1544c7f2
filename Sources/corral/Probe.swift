import ArgumentParser
import Corral

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report what this host supports.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let report = HostProbe().report()
        if json {
            print(String(decoding: try report.jsonData(), as: UTF8.self))
            return
        }
        let facts = report.facts
        print("kernel: \(report.kernel) (\(facts.architecture))")
        print("user namespaces: \(facts.userNamespaces ? "yes" : "no") (uid \(facts.uid))")
        print("landlock: " + (facts.landlockABI > 0 ? "ABI \(facts.landlockABI)" : "unavailable"))
        print("seccomp: filters yes; kill-process \(report.seccompKillProcess ? "yes" : "no"); "
              + "user notification \(facts.seccompUserNotification ? "yes" : "no")")
        print("capabilities: last cap \(report.capLastCap)")
        // Which hierarchies, whether this user may make run groups, and how each limit would
        // be enforced (or why not).
        print(CgroupHost.detect().description)
        print("overlayfs: \(report.overlayfs ? "yes" : "no")")
        print("dynamic loaders: " + facts.dynamicLoaders.joined(separator: " "))
    }
}
