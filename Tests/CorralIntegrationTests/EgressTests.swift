import Corral
import Foundation
import Testing

/// `network.mode: allowlist` end to end: real clients (curl, Python's urllib, a raw TCP
/// client) inside a sandbox reach a test host in another network namespace only through
/// Corral's egress proxy, and only what the allow list names. Every test runs corral inside
/// a `NetworkLab`, whose /etc/hosts gives the proxy its names.
@Suite(.tags(.integration), .enabled(if: NetworkLab.isAvailable, "network labs need root, `ip netns`, python3 and openssl"))
struct EgressTests {
    static let curl = "/usr/bin/curl"

    /// The base manifest, plus the lab's shared folder (its CA certificate), curl and Python,
    /// and `network` with mode allowlist and `allow`.
    static func manifest(_ sandbox: Sandbox, _ lab: NetworkLab, allow: [String], extra: [String] = []) -> Manifest {
        var manifest = Manifest(sandbox: sandbox)
        manifest.read.append(lab.sharedFolder)
        manifest.exec += [curl, "/usr/bin/python3*"]
        manifest.network = ["mode: allowlist", "allow: [\(allow.map { "\"\($0)\"" }.joined(separator: ", "))]"] + extra
        return manifest
    }

    /// The proxy's decisions, from the run's `--events` file.
    static func networkEvents(_ path: String) throws -> [NetworkDecision] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").compactMap { line in
            try JSONDecoder().decode(RunEvent.self, from: Data(line.utf8)).network
        }
    }

    @Test("curl reaches an allowed host over HTTP and HTTPS (CONNECT) and SOCKS5, through the proxy only",
          arguments: RunAs.allCases)
    func curlThroughTheProxy(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let manifest = try sandbox.write(Self.manifest(sandbox, lab, allow: ["api.test:80", "api.test:443"]))
                let events = sandbox.scratch + "/events.jsonl"
                let before = try lab.connections().count
                for (argv, name) in [([Self.curl, "-sS", "http://api.test/hello"], "http"),
                                     ([Self.curl, "-sS", "--cacert", lab.caFile, "https://api.test/hello"], "https"),
                                     ([Self.curl, "-sS", "-x", "socks5h://127.0.0.1:1080", "http://api.test/hello"], "socks5")] {
                    let result = try await sandbox.corral(["run", "--events", events, "--profile", manifest, "--"] + argv, in: lab)
                    #expect(result.status == 0 && result.stdout == "hello from api.test\n", "\(name): \(result)")
                    let decisions = try Self.networkEvents(events)
                    #expect(decisions.count == 1 && decisions.first?.decision == .allow, "\(name): \(decisions)")
                    #expect(decisions.first?.address == NetworkLab.publicAddress && decisions.first?.host == "api.test")
                }
                // Three requests, three connections at the test host, each from the proxy's side.
                let connections = try lab.connections().dropFirst(before)
                #expect(connections.map(\.peer) == Array(repeating: NetworkLab.clientPublicAddress, count: 3))
                #expect(connections.map(\.localPort) == [80, 443, 80])
            }
        }
    }

    @Test("Python's urllib fetches over HTTPS through the proxy", arguments: RunAs.allCases)
    func pythonThroughTheProxy(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let manifest = try sandbox.write(Self.manifest(sandbox, lab, allow: ["api.test:443"]))
                let script = """
                    import ssl, urllib.request
                    context = ssl.create_default_context(cafile="\(lab.caFile)")
                    print(urllib.request.urlopen("https://api.test/hello", context=context, timeout=10).read().decode(), end="")
                    """
                let result = try await sandbox.run(manifest, ["/usr/bin/python3", "-c", script], in: lab)
                #expect(result.status == 0 && result.stdout == "hello from api.test\n", "\(result)")
            }
        }
    }

    @Test("an unlisted host gets 403 with a reason, an unlisted port too, and both are events",
          arguments: RunAs.allCases)
    func unlistedHostsAndPortsAreRefused(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let manifest = try sandbox.write(Self.manifest(sandbox, lab, allow: ["api.test:443"]))
                let events = sandbox.scratch + "/events.jsonl"
                let before = try lab.connections().count
                let plain = try await sandbox.corral(["run", "--events", events, "--profile", manifest, "--",
                                                      Self.curl, "-sS", "-i", "http://other.test/hello"], in: lab)
                #expect(plain.status == 0, "\(plain)")
                #expect(plain.stdout.hasPrefix("HTTP/1.1 403 "), "\(plain)")
                #expect(plain.stdout.hasSuffix("\r\n\r\ncorral: other.test is not in network.allow\n"), "\(plain)")

                let port = try await sandbox.corral(["run", "--events", events, "--profile", manifest, "--",
                                                     Self.curl, "-sS", "--cacert", lab.caFile, "https://api.test:8443/"], in: lab)
                #expect(port.status == 56 && port.stderr.contains("CONNECT tunnel failed, response 403"), "\(port)")
                let decisions = try Self.networkEvents(events)
                #expect(decisions.map(\.decision) == [.deny])
                #expect(decisions.first?.reason == "port 8443 of api.test is not in network.allow", "\(decisions)")
                #expect(try lab.connections().count == before, "nothing reached the test host")
            }
        }
    }

    @Test("an allowed name that resolves to a private address is refused; by address it is allowed",
          arguments: RunAs.allCases)
    func privateAddressesNeedAnAddressEntry(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let manifest = try sandbox.write(Self.manifest(sandbox, lab, allow: ["internal.test:80", "\(lab.privateAddress):80"]))
                let report = sandbox.scratch + "/report.json"
                let byName = try await sandbox.run(manifest, [Self.curl, "-sS", "http://internal.test/hello"], in: lab, report: report)
                #expect(byName.stdout == "corral: \(lab.privateAddress) is a private address; allow it by address to reach it\n",
                        "\(byName)")
                let refused = try RunReportFile.read(report).egress?.decisions.first
                #expect(refused?.decision == .deny && refused?.address == lab.privateAddress && refused?.entry == "internal.test:80")

                let byAddress = try await sandbox.run(manifest, [Self.curl, "-sS", "http://\(lab.privateAddress)/hello"], in: lab)
                #expect(byAddress.status == 0 && byAddress.stdout == "hello from \(lab.privateAddress)\n", "\(byAddress)")
            }
        }
    }

    @Test("without the proxy, neither TCP nor UDP reaches the test host", arguments: RunAs.allCases)
    func directTrafficGoesNowhere(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let manifest = try sandbox.write(Self.manifest(sandbox, lab, allow: ["api.test:80", "\(NetworkLab.publicAddress):80"]))
                let before = try lab.connections().count
                // Landlock (ABI 4+) refuses the connect before routing; without it, no route.
                let tcpError = HostSupport.landlockABI >= 4 ? "EACCES" : "ENETUNREACH"
                expectProbe(try await sandbox.run(manifest, [sandbox.probe, "connect", NetworkLab.publicAddress, "80"], in: lab),
                            printed: "connect \(NetworkLab.publicAddress):80 errno=\(tcpError)")
                expectProbe(try await sandbox.run(manifest, [sandbox.probe, "udp", NetworkLab.publicAddress, "\(NetworkLab.udpEchoPort)"],
                                                  in: lab),
                            printed: "udp \(NetworkLab.publicAddress):\(NetworkLab.udpEchoPort) errno=ENETUNREACH")
                #expect(try lab.connections().count == before)
                #expect(try lab.datagrams().isEmpty)

                // Control: the same probe outside the sandbox, in the same namespace, gets through.
                let control = try await sandbox.command([sandbox.probe, "udp", NetworkLab.publicAddress, "\(NetworkLab.udpEchoPort)"],
                                                        in: lab)
                expectProbe(control, printed: "udp \(NetworkLab.publicAddress):\(NetworkLab.udpEchoPort) ok")
            }
        }
    }

    @Test("a forward entry serves a raw TCP client", arguments: RunAs.allCases)
    func forwardServesRawTCP(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let manifest = try sandbox.write(Self.manifest(sandbox, lab, allow: [],
                                                               extra: ["forward: [{ listen: 7000, to: \"api.test:\(NetworkLab.tcpEchoPort)\" }]"]))
                let report = sandbox.scratch + "/report.json"
                let result = try await sandbox.run(manifest, [sandbox.probe, "tcp-send", "127.0.0.1", "7000", "ping"], in: lab, report: report)
                expectProbe(result, printed: "tcp-send 127.0.0.1:7000 got=ping")
                let egress = try RunReportFile.read(report).egress
                let decision = egress?.decisions.first
                #expect(decision?.decision == .allow && decision?.via == "forward" && decision?.address == NetworkLab.publicAddress,
                        "\(String(describing: egress))")
                #expect(egress?.proxyEnded == nil, "the proxy ended on its own: \(String(describing: egress?.proxyEnded))")
            }
        }
    }

    /// `script` under `/bin/sh` with api.test:80 allowed and `rule` watching; the result and
    /// the report.
    static func runWithRule(_ rule: String, script: String, sandbox: Sandbox,
                            lab: NetworkLab) async throws -> (CommandResult, RunReport) {
        var manifest = Self.manifest(sandbox, lab, allow: ["api.test:80"])
        manifest.monitor = [rule]
        manifest.exec.append("/usr/bin/*")  // the shell
        let report = sandbox.scratch + "/report.json"
        let result = try await sandbox.run(try sandbox.write(manifest), ["/bin/sh", "-c", script], in: lab, report: report)
        return (result, try RunReportFile.read(report))
    }

    @Test("new-host kills the run at a request for an unlisted host", arguments: RunAs.allCases)
    func newHostRuleKills(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                // A listed host first (no firing), then an unlisted one, then a long sleep the
                // kill must cut short.
                let (result, report) = try await Self.runWithRule(
                    "{ id: stray-host, when: new-host, then: kill }",
                    script: "\(Self.curl) -sS http://api.test/hello; \(Self.curl) -sS http://other.test/; sleep 20",
                    sandbox: sandbox, lab: lab)
                #expect(result.status == 137 && result.stdout.hasPrefix("hello from api.test\n"), "\(result)")
                #expect(report.killReason == .monitor && report.killRule == "stray-host")
                #expect(report.rulesFired.first?.detail == "request for other.test:80, which network.allow does not name")
                #expect(report.durationSeconds < 10)
            }
        }
    }

    @Test("rate(connect) counts requests through the proxy, once each", arguments: RunAs.allCases)
    func rateRuleCountsProxiedConnects(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                let (result, report) = try await Self.runWithRule(
                    "{ id: chatty, when: \"rate(connect) > 3/10s\", then: kill }",
                    script: "for i in 1 2 3 4 5 6; do \(Self.curl) -sS http://api.test/hello; done; sleep 20",
                    sandbox: sandbox, lab: lab)
                #expect(result.status == 137, "\(result)")
                #expect(report.killRule == "chatty", "\(result)")
                #expect(report.rulesFired.first?.detail == "4 connect calls within 10s")
                // Each curl's connect to the proxy's port is watched too: were it counted as
                // well, the rule would fire during the second request. The first three
                // complete; the fourth is the one that fires (its answer may still come).
                let answered = result.stdout.components(separatedBy: "hello from api.test").count - 1
                #expect((3...4).contains(answered), "\(result)")
            }
        }
    }
}
