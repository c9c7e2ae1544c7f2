import Testing
@testable import CorralProfile

/// `network:` as written, and the address and host syntax the proxy shares.
@Suite struct NetworkSpecTests {
    @Test func anAllowlistManifestLoadsEveryKind() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            network:
              mode: allowlist
              allow:
                - API.Example.com.:443
                - "*.pypi.org:443"
                - 203.0.113.7:8000-8100
                - 10.0.0.0/8:5432
                - "[2001:db8::1]:*"
                - "[2001:db8::/32]:443"
              forward:
                - { listen: 5432, to: db.internal.example:5432 }
              proxy: { http_port: 8080, socks_port: 9050, idle_timeout: 30s, max_duration: 10m, max_connections: 64 }
            """)
        let network = profile.network
        #expect(network.mode == .allowlist)
        #expect(network.allow.map(\.host.description) == [
            "api.example.com", "*.pypi.org", "203.0.113.7", "10.0.0.0/8", "[2001:db8::1]", "[2001:db8::/32]",
        ])
        #expect(network.allow.map(\.ports) == [443...443, 443...443, 8000...8100, 5432...5432, 1...65535, 443...443])
        #expect(network.allow[0].location?.description == "profiles/x.yaml:5: network.allow[0]")
        #expect(network.forward == [PortForward(listen: 5432, host: .name("db.internal.example"), port: 5432,
                                                location: network.forward.first?.location)])
        #expect(network.proxy.httpPort == 8080 && network.proxy.socksPort == 9050)
        #expect(network.proxy.idleTimeout == .seconds(30) && network.proxy.maxDuration == .seconds(600))
        #expect(network.proxy.maxConnections == 64)
    }

    @Test func loopbackAndHostModes() throws {
        let loopback = try Manifest.load("goal: { id: a }\nnetwork: { mode: loopback, ports: [8080, 5432] }\n")
        #expect(loopback.network.mode == .loopback && loopback.network.ports == [8080, 5432])
        let host = try Manifest.load("goal: { id: a }\nnetwork: { mode: host }\n")
        #expect(host.network.mode == .host)
    }

    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"), ("203.0.113.7", "203.0.113.7"), ("::", "::"), ("::1", "::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
        ("::ffff:10.1.2.3", "::ffff:a01:203"), ("fe80::1:0:0:1", "fe80::1:0:0:1"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ])
    func addressesParseAndPrintCanonically(_ text: String, _ printed: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == printed)
        #expect(IPAddress(printed) == address)
        #expect(IPAddress(bytes: address.bytes) == address)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", " 1.2.3.4", "0x7f.0.0.1",
                      ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "::1%eth0", "g::1", "1:2:3:4:5:6:7::8:9",
                      "::ffff:1.2.3", "1:"])
    func malformedAddressesAreRefused(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func mappedAddressesKnowTheirIPv4() {
        #expect(IPAddress("::ffff:127.0.0.1")?.mappedV4 == IPAddress("127.0.0.1"))
        #expect(IPAddress("::1")?.mappedV4 == nil)
    }

    @Test func networksContainTheirAddressesOnly() throws {
        let ten = try #require(IPNetwork("10.0.0.0/8"))
        #expect(ten.contains(IPAddress("10.255.0.1")!) && !ten.contains(IPAddress("11.0.0.0")!))
        #expect(!ten.contains(IPAddress("::ffff:10.0.0.1")!))  // the policy maps it first
        let doc = try #require(IPNetwork("2001:db8::/32"))
        #expect(doc.contains(IPAddress("2001:db8:ffff::1")!) && !doc.contains(IPAddress("2001:db9::")!))
        #expect(IPNetwork("0.0.0.0/0")?.contains(IPAddress("8.8.8.8")!) == true)
        #expect(IPNetwork("10.0.0.0/33") == nil && IPNetwork("10.0.0.0/") == nil && IPNetwork("10.0.0.0/+8") == nil)
    }

    @Test(arguments: [
        ("Example.COM.", "example.com"), ("a-b.c_d.example", "a-b.c_d.example"), ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ])
    func hostNamesAreCanonical(_ text: String, _ canonical: String) {
        #expect(EgressSyntax.hostName(text) == canonical)
    }

    @Test(arguments: ["", ".", "-a.example", "a-.example", "a..example", "127.1", "2130706433", "0x7f000001",
                      "a.example/x", "a example", "a.example\t", String(repeating: "a", count: 64) + ".example",
                      "bücher.example", "example.123"])
    func notHostNames(_ text: String) {
        #expect(EgressSyntax.hostName(text) == nil)
    }
}
