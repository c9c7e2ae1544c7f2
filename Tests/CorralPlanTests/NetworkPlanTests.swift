import CorralProfile
import Testing
@testable import CorralPlan

/// What each network mode compiles to: the egress listeners, the Landlock TCP backstop, the
/// proxy variables, and how `corral explain` shows them.
@Suite struct NetworkPlanTests {
    static let allowlist = """
        run: { command: [/usr/bin/curl], env: { set: { HTTPS_PROXY: "http://elsewhere:1", LANG: C } } }
        network:
          mode: allowlist
          allow: [api.example.com:443, "*.pypi.org:443"]
          forward: [{ listen: 5432, to: db.example:5432 }]
        """

    @Test func allowlistListensProxiesAndForwardsAndConnectsOnlyThere() throws {
        let plan = try Plans.compile(Self.allowlist)
        #expect(plan.namespaces.network)
        #expect(plan.egress?.listeners.map(\.port) == [3128, 1080, 5432])
        #expect(plan.landlock.handledNet == .connectTCP)
        #expect(plan.landlock.portRules.map(\.port) == [3128, 1080, 5432])
        let text = plan.description.split(separator: "\n").map(String.init)
        #expect(text.contains("network allowlist (loopback only; the outside through the supervisor's proxy)"))
        #expect(Array(text.drop { !$0.hasPrefix("egress listen") }.prefix(8)) == [
            "egress listen 127.0.0.1:3128 http-proxy",
            "egress listen 127.0.0.1:1080 socks5-proxy",
            "egress listen 127.0.0.1:5432 forward to db.example:5432",
            "egress allow api.example.com:443",
            "egress allow *.pypi.org:443",
            "egress allow db.example:5432",
            "egress refuse loopback, private, link-local, metadata … addresses unless allowed by address",
            "egress limits idle 5m max-duration 1h connections 1024",
        ])
        #expect(Array(text.drop { !$0.hasPrefix("landlock handle") }.prefix(4)) == [
            "landlock handle connect-tcp; allowed only to the ports below",
            "landlock allow connect-tcp port 3128", "landlock allow connect-tcp port 1080",
            "landlock allow connect-tcp port 5432",
        ])
    }

    /// Corral's proxy variables come last, so a manifest's own cannot point tools elsewhere
    /// (the sandbox could not reach it anyway).
    @Test func proxyVariablesWinOverTheManifests() throws {
        let plan = try Plans.compile(Self.allowlist)
        let fixed = plan.environment.compactMap { entry -> String? in
            if case .fixed(let value) = entry.source { return "\(entry.name)=\(value)" }
            return nil
        }
        #expect(fixed.last(where: { $0.hasPrefix("HTTPS_PROXY=") }) == "HTTPS_PROXY=http://127.0.0.1:3128")
        for expected in ["http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
                         "ALL_PROXY=socks5h://127.0.0.1:1080", "all_proxy=socks5h://127.0.0.1:1080",
                         "NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1"] {
            #expect(fixed.contains(expected), "\(expected)")
        }
    }

    @Test func withoutLandlockNetTheNamespaceAloneHolds() throws {
        let plan = try Plans.compile(Self.allowlist, landlockABI: 3)
        #expect(plan.landlock.handledNet.isEmpty && plan.landlock.portRules.isEmpty)
        #expect(plan.egress?.listeners.count == 3)
    }

    @Test func noneLoopbackAndHost() throws {
        let none = try Plans.compile("run: { command: [/bin/true] }\nnetwork: { mode: none }\n")
        #expect(none.egress == nil && none.landlock.handledNet.isEmpty && none.namespaces.network)
        #expect(!none.environment.contains { $0.name == "http_proxy" })

        let loopback = try Plans.compile("run: { command: [/bin/true] }\nnetwork: { mode: loopback, ports: [8080] }\n")
        #expect(loopback.egress?.listeners.map(\.port) == [8080])
        #expect(loopback.landlock.handledNet.isEmpty)  // the sandbox's own loopback servers stay reachable

        let host = try Plans.compile("run: { command: [/bin/true] }\nnetwork: { mode: host }\n")
        #expect(!host.namespaces.network && host.egress == nil)
        #expect(host.namespaces.names == ["user", "pid", "mount", "ipc", "uts", "cgroup"])
        #expect(host.description.contains("network host (no network namespace: the host's network, unconfined)\n"))
    }

    @Test func newHostNeedsTheProxy() throws {
        #expect(try Plans.failure("""
            run: { command: [/bin/true] }
            monitor:
              - { id: unlisted, when: new-host, then: kill }
            """) == """
            profiles/t.yaml:5: monitor[0]: rule unlisted: new-host can never fire: only network.mode allowlist has a proxy that sees hosts
              hint: set network.mode: allowlist, or remove the rule
            """)
        #expect(try Plans.failure(Self.allowlist + "\nmonitor: [{ when: new-host, then: alert }]\n") == "compiled")
    }
}
