import CorralProfile
import Testing
@testable import CorralPlan

/// The proxy's decisions, without sockets: which entry a request matches, and which
/// resolved addresses an entry lets the proxy connect to.
@Suite struct EgressPolicyTests {
    static func policy(_ entries: String...) throws -> EgressPolicy {
        EgressPolicy(entries: try entries.map { try EgressSyntax.entry($0).get() })
    }

    static func decide(_ policy: EgressPolicy, _ host: String, _ port: UInt16) -> String {
        guard let target = EgressPolicy.Target(host) else { return "malformed" }
        switch policy.decide(target, port: port) {
        case .allowed(let entry): return "allowed by \(entry.text)"
        case .denied(let reason): return "denied: \(reason)"
        }
    }

    @Test func namesMatchExactlyAndWildcardsMatchSubdomainsOnly() throws {
        let policy = try Self.policy("api.example.com:443", "*.pypi.org:443", "203.0.113.0/24:8000-8100")
        #expect(Self.decide(policy, "API.example.com", 443) == "allowed by api.example.com:443")
        #expect(Self.decide(policy, "api.example.com.", 443) == "allowed by api.example.com:443")
        #expect(Self.decide(policy, "api.example.com", 80) == "denied: port 80 of api.example.com is not in network.allow")
        #expect(Self.decide(policy, "evil-api.example.com", 443) == "denied: evil-api.example.com is not in network.allow")
        #expect(Self.decide(policy, "api.example.com.evil.test", 443) == "denied: api.example.com.evil.test is not in network.allow")
        #expect(Self.decide(policy, "files.pypi.org", 443) == "allowed by *.pypi.org:443")
        #expect(Self.decide(policy, "a.b.pypi.org", 443) == "allowed by *.pypi.org:443")
        #expect(Self.decide(policy, "pypi.org", 443) == "denied: pypi.org is not in network.allow")
        #expect(Self.decide(policy, "notpypi.org", 443) == "denied: notpypi.org is not in network.allow")
        #expect(Self.decide(policy, "203.0.113.9", 8050) == "allowed by 203.0.113.0/24:8000-8100")
        #expect(Self.decide(policy, "203.0.114.9", 8050) == "denied: 203.0.114.9 is not in network.allow")
    }

    /// What `new-host` reads back from a decision line: a host no entry names, not a port.
    @Test func unlistedHostDenialsAreRecognisedAsSuch() throws {
        let policy = try Self.policy("api.example.com:443")
        guard case .denied(let host) = policy.decide(EgressPolicy.Target("Other.Example.")!, port: 443),
              case .denied(let port) = policy.decide(EgressPolicy.Target("api.example.com")!, port: 80)
        else { Issue.record("expected two denials"); return }
        #expect(EgressPolicy.isUnlistedHost("Other.Example.", reason: host))
        #expect(!EgressPolicy.isUnlistedHost("api.example.com", reason: port))
        #expect(!EgressPolicy.isUnlistedHost("api.example.com", reason: host))
    }

    @Test func anAddressNeverMatchesANameEntryNorANameAnAddressEntry() throws {
        let policy = try Self.policy("api.example.com:443", "198.51.100.7:443")
        #expect(Self.decide(policy, "93.184.215.14", 443) == "denied: 93.184.215.14 is not in network.allow")
        #expect(Self.decide(policy, "198.51.100.7", 443) == "allowed by 198.51.100.7:443")
        #expect(Self.decide(policy, "[::ffff:198.51.100.7]", 443) == "allowed by 198.51.100.7:443")
        #expect(Self.decide(policy, "::ffff:198.51.100.7", 443) == "allowed by 198.51.100.7:443")
    }

    @Test func malformedHostsAreNotTargets() {
        for host in ["", "a b", "127.1", "0x7f000001", "[1.2.3.4]", "[::1", "a.example\n", "*.example.com", "evil.com%00.example"] {
            #expect(EgressPolicy.Target(host) == nil, "\(host.debugDescription)")
        }
    }

    @Test func specialAddressesNeedAnEntryThatNamesThem() throws {
        let policy = try Self.policy("api.example.com:443", "10.1.2.3:5432", "192.168.0.0/16:80")
        let byName = policy.entries[0], byAddress = policy.entries[1], byNetwork = policy.entries[2]
        let refused: [(String, String)] = [
            ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
            ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
            ("fd12::1", "private"), ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
            ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
            ("255.255.255.255", "reserved"), ("192.0.0.192", "reserved"), ("64:ff9b::a00:1", "private"),
            ("2002:a00:1::", "private"), ("2002:7f00:1::", "loopback"), ("::10.0.0.1", "reserved"),
        ]
        for (text, kind) in refused {
            let address = try #require(IPAddress(text))
            #expect(policy.refusal(of: address, for: byName) == "\(address.mappedV4 ?? address) is a \(kind) address; allow it by address to reach it",
                    "\(text)")
        }
        for ordinary in ["203.0.113.10", "198.51.100.1", "93.184.215.14", "2001:db8::1", "2606:4700::1", "64:ff9b::5db8:d70e",
                         "172.32.0.1", "100.128.0.1"] {
            #expect(policy.refusal(of: IPAddress(ordinary)!, for: byName) == nil, "\(ordinary)")
        }
        #expect(policy.refusal(of: IPAddress("10.1.2.3")!, for: byAddress) == nil)
        #expect(policy.refusal(of: IPAddress("10.1.2.4")!, for: byAddress) == "10.1.2.4 is not 10.1.2.3")
        #expect(policy.refusal(of: IPAddress("192.168.7.7")!, for: byNetwork) == nil)
        #expect(policy.refusal(of: IPAddress("10.0.0.1")!, for: byNetwork) == "10.0.0.1 is outside 192.168.0.0/16")
    }

    @Test func forwardsAndLoopbackPortsBecomePlansWithTheirOwnEntries() throws {
        var network = NetworkSpec()
        network.mode = .allowlist
        network.allow = [try EgressSyntax.entry("api.example.com:443").get()]
        network.forward = [PortForward(listen: 5432, host: .name("db.example"), port: 5432)]
        let plan = try #require(EgressPlan.of(network))
        #expect(plan.listeners.map(\.port) == [3128, 1080, 5432])
        #expect(plan.policy.entries.map(\.text) == ["api.example.com:443", "db.example:5432"])
        #expect(plan.proxyEnvironment.first { $0.name == "https_proxy" }?.value == "http://127.0.0.1:3128")
        #expect(plan.proxyEnvironment.first { $0.name == "ALL_PROXY" }?.value == "socks5h://127.0.0.1:1080")

        var loopback = NetworkSpec()
        loopback.mode = .loopback
        loopback.ports = [8080]
        let loopbackPlan = try #require(EgressPlan.of(loopback))
        #expect(loopbackPlan.listeners == [EgressPlan.Listener(port: 8080, role: .forward(host: .address(IPAddress("127.0.0.1")!), port: 8080))])
        #expect(loopbackPlan.proxyEnvironment.isEmpty)
        #expect(loopbackPlan.policy.refusal(of: IPAddress("127.0.0.1")!, for: loopbackPlan.policy.entries[0]) == nil)

        for mode in [NetworkMode.none, .host] {
            var spec = NetworkSpec()
            spec.mode = mode
            #expect(EgressPlan.of(spec) == nil)
        }
    }
}
