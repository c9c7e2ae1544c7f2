import Foundation
import Testing

/// The lab itself, without Corral: real clients in the client namespace reach the remote's
/// servers by the lab's names, the remote logs what arrived, nothing of the lab shows in
/// the host namespace, and teardown leaves nothing behind.
@Suite(.tags(.integration),
       .enabled(if: NetworkLab.isAvailable, "network labs need root, `ip netns`, python3 and openssl"))
struct NetworkLabTests {
    static let curl = "/usr/bin/curl"

    @Test("curl reaches the HTTP server by the lab's names")
    func http() async throws {
        try await withNetworkLab { lab in
            expectOutput(try await lab.run([Self.curl, "-sS", "http://api.test/hello"]), "hello from api.test\n")
            expectOutput(try await lab.run([Self.curl, "-sS", "http://internal.test/hello"]),
                         "hello from internal.test\n")
            expectOutput(try await lab.run([Self.curl, "-sS", "--data-binary", "ping\npong", "http://api.test/echo"]),
                         "ping\npong")
            expectOutput(try await lab.run([Self.curl, "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                                            "http://www.api.test/big?n=1000000"]), "1000000")
        }
    }

    @Test("curl verifies the HTTPS server with the lab's certificate, for its names only")
    func https() async throws {
        try await withNetworkLab { lab in
            expectOutput(try await lab.run([Self.curl, "-sS", "--cacert", lab.caFile, "https://api.test/hello"]),
                         "hello from api.test\n")
            expectOutput(try await lab.run([Self.curl, "-sS", "--cacert", lab.caFile, "https://www.api.test/hello"]),
                         "hello from www.api.test\n")

            // other.test reaches the same server, whose certificate does not name it.
            let other = try await lab.run([Self.curl, "-sS", "--cacert", lab.caFile, "https://other.test/hello"])
            #expect(other.status == 60, "\(other)")   // CURLE_PEER_FAILED_VERIFICATION
            #expect(other.stderrFirstLine.hasPrefix("curl: (60) SSL: no alternative certificate subject name matches"),
                    "\(other)")

            let caMode = try FileManager.default.attributesOfItem(atPath: lab.caFile)[.posixPermissions] as? Int
            let folderMode = try FileManager.default.attributesOfItem(atPath: lab.sharedFolder)[.posixPermissions] as? Int
            #expect(caMode == 0o644 && folderMode == 0o755)
        }
    }

    @Test("Python's urllib verifies the HTTPS server strictly (VERIFY_X509_STRICT)")
    func pythonHTTPS() async throws {
        try await withNetworkLab { lab in
            let script = """
                import ssl, urllib.request
                context = ssl.create_default_context(cafile="\(lab.caFile)")
                context.verify_flags |= ssl.VERIFY_X509_STRICT
                print(urllib.request.urlopen("https://api.test/hello", context=context).read().decode(), end="")
                """
            expectOutput(try await lab.run([NetworkLab.python, "-c", script]), "hello from api.test\n")
        }
    }

    @Test("the TCP echo echoes and the connection log names each peer")
    func tcpEchoAndConnectionLog() async throws {
        try await withNetworkLab { lab in
            let script = """
                import socket
                s = socket.create_connection(("api.test", \(NetworkLab.tcpEchoPort)))
                s.sendall(b"echo me"); s.shutdown(socket.SHUT_WR)
                print(s.getsockname()[1], s.makefile("rb").read().decode())
                """
            let echo = try await lab.run([NetworkLab.python, "-c", script])
            let fields = echo.stdout.split(separator: " ", maxSplits: 1)
            #expect(echo.status == 0 && fields.count == 2 && fields.last == "echo me\n", "\(echo)")
            let port = Int(fields.first ?? "") ?? -1

            expectOutput(try await lab.run([Self.curl, "-sS", "http://internal.test/hello"]),
                         "hello from internal.test\n")

            let connections = try lab.connections()
            #expect(connections.count == 2, "\(connections)")
            #expect(connections.first == NetworkLab.Connection(peer: NetworkLab.clientPublicAddress, peerPort: port,
                                                               local: NetworkLab.publicAddress,
                                                               localPort: NetworkLab.tcpEchoPort))
            #expect(connections.last.map { [$0.peer, $0.local, String($0.localPort)] }
                == [lab.clientPrivateAddress, lab.privateAddress, "80"])
        }
    }

    @Test("the UDP echo echoes and records the datagram")
    func udpEcho() async throws {
        try await withNetworkLab { lab in
            #expect(try lab.datagrams().isEmpty)
            let script = """
                import socket
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
                s.sendto(b"lab datagram", ("\(NetworkLab.publicAddress)", \(NetworkLab.udpEchoPort)))
                data, peer = s.recvfrom(100)
                print(s.getsockname()[1], peer[0], data.decode())
                """
            let echo = try await lab.run([NetworkLab.python, "-c", script])
            let fields = echo.stdout.split(separator: " ", maxSplits: 1)
            #expect(echo.status == 0 && fields.last == "\(NetworkLab.publicAddress) lab datagram\n", "\(echo)")
            let port = Int(fields.first ?? "") ?? -1
            #expect(try lab.datagrams() == [
                NetworkLab.Datagram(peer: NetworkLab.clientPublicAddress, peerPort: port,
                                    localPort: NetworkLab.udpEchoPort, data: "lab datagram", length: 12),
            ])
            #expect(try lab.connections().isEmpty)
        }
    }

    @Test("names resolve from the lab's hosts file only, in the client namespace only")
    func names() async throws {
        try await withNetworkLab { lab in
            expectOutput(try await lab.run(["/usr/bin/getent", "hosts", "api.test"]),
                         "203.0.113.10    api.test www.api.test other.test\n")
            expectOutput(try await lab.run(["/usr/bin/getent", "hosts", "internal.test"]),
                         lab.privateAddress.padding(toLength: 15, withPad: " ", startingAt: 0) + " internal.test\n")
            // No DNS: an unknown name fails at once (getent: 2 = not found).
            let unknown = try await lab.run(["/usr/bin/getent", "hosts", "unknown.test"])
            #expect(unknown.status == 2 && unknown.stdout.isEmpty, "\(unknown)")

            // The host namespace does not know the lab's names. Only its files are asked
            // (`-s files`): its `dns` source would send a query off this machine.
            let host = try await CommandRunner.run(["/usr/bin/getent", "-s", "files", "hosts", "api.test"],
                                                   captureFolder: lab.privateFolder)
            #expect(host.status == 2 && host.stdout.isEmpty, "\(host)")
        }
    }

    /// A connect with SO_DONTROUTE reaches only hosts on a directly attached subnet and
    /// never uses a gateway, so the host-side attempt fails locally instead of sending
    /// a packet out through the host's default route.
    @Test("the remote is on-link from the client namespace only; the client namespace has no other route")
    func isolation() async throws {
        try await withNetworkLab { lab in
            let connect = { (address: String) in
                """
                import socket
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_DONTROUTE, 1); s.settimeout(5)
                try:
                    s.connect(("\(address)", 80)); print("connected")
                except OSError as error:
                    print(error.strerror)
                """
            }
            expectOutput(try await lab.run([NetworkLab.python, "-c", connect(NetworkLab.publicAddress)]), "connected\n")
            let host = try await CommandRunner.run([NetworkLab.python, "-c", connect(NetworkLab.publicAddress)],
                                                   captureFolder: lab.privateFolder)
            expectOutput(host, "Network is unreachable\n")
            #expect(try lab.connections().map(\.peer) == [NetworkLab.clientPublicAddress])

            // The host holds no lab address; the client namespace routes nowhere but the lab.
            for subnet in ["203.0.113.0/24", "10.77.\(lab.subnet).0/24"] {
                expectOutput(try await CommandRunner.run([NetworkLab.ip, "-o", "addr", "show", "to", subnet],
                                                         captureFolder: lab.privateFolder), "")
            }
            let route = try await lab.run([NetworkLab.ip, "route", "get", "198.51.100.1"])
            #expect(route.status == 2 && route.stderr == "RTNETLINK answers: Network is unreachable\n", "\(route)")
        }
    }

    @Test("two labs at once use distinct namespaces and see only their own traffic")
    func twoLabs() async throws {
        try await withNetworkLab { first in
            try await withNetworkLab { second in
                #expect(first.clientNamespace != second.clientNamespace)
                #expect(first.remoteNamespace != second.remoteNamespace)
                #expect(first.subnet != second.subnet)
                expectOutput(try await first.run([Self.curl, "-sS", "http://api.test/hello"]), "hello from api.test\n")
                expectOutput(try await second.run([Self.curl, "-sS", "http://other.test/hello"]),
                             "hello from other.test\n")
                #expect(try first.connections().count == 1)
                #expect(try second.connections().count == 1)
            }
        }
    }

    @Test("teardown removes namespaces, /etc/netns entries, folders and servers, also when the body throws",
          arguments: [false, true])
    func teardown(bodyThrows: Bool) async throws {
        struct BodyFailed: Error {}
        var seen: NetworkLab?
        do {
            try await withNetworkLab { lab in
                seen = lab
                expectOutput(try await lab.run([Self.curl, "-sS", "http://api.test/hello"]), "hello from api.test\n")
                if bodyThrows { throw BodyFailed() }
            }
            #expect(!bodyThrows)
        } catch is BodyFailed {
            #expect(bodyThrows)
        }
        let lab = try #require(seen)

        let names = try LabTool.run([NetworkLab.ip, "netns", "list"]).split(separator: "\n")
            .map { String($0.split(separator: " ").first ?? "") }
        #expect(!names.contains(lab.clientNamespace) && !names.contains(lab.remoteNamespace), "\(names)")
        for path in ["/etc/netns/" + lab.clientNamespace, lab.sharedFolder, lab.privateFolder] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) is left")
        }
        let servers = CommandRunner.processes(running: NetworkLab.python).filter { pid in
            let commandLine = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return commandLine.contains(lab.privateFolder)
        }
        #expect(servers.isEmpty)
    }

    @Test("corral runs inside the client namespace as each user", arguments: RunAs.allCases)
    func corralInsideTheLab(_ runAs: RunAs) async throws {
        try await withNetworkLab { lab in
            try await withSandbox(runAs) { sandbox in
                // Control: the same user in the same namespace, without Corral.
                expectOutput(try await sandbox.command(["/usr/bin/id", "-u"], in: lab), "\(runAs.uid)\n")
                expectOutput(try await sandbox.command([Self.curl, "-sS", "--cacert", lab.caFile,
                                                        "https://api.test/hello"], in: lab),
                             "hello from api.test\n")

                // `network.mode: none`: the lab's names are visible, its hosts are not.
                var manifest = Manifest(sandbox: sandbox)
                manifest.read.append(lab.sharedFolder)
                manifest.exec.append(Self.curl)
                let result = try await sandbox.run(try sandbox.write(manifest),
                                                   [Self.curl, "-sS", "http://api.test/hello"], in: lab)
                #expect(result.status == 7, "\(result)")   // CURLE_COULDNT_CONNECT
                #expect(result.stderrFirstLine.hasPrefix("curl: (7) Failed to connect to api.test port 80"), "\(result)")
                #expect(try lab.connections().count == 1)
            }
        }
    }
}

/// The command exited 0 and printed exactly `stdout`.
private func expectOutput(_ result: CommandResult, _ stdout: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout == stdout, "\(result)", sourceLocation: sourceLocation)
}
