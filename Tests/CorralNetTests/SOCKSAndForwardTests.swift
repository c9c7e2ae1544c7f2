#if canImport(Glibc)
import Glibc
#endif
@testable import CorralNet
import NIOCore
import NIOPosix
import Foundation
import Testing

@Suite struct SOCKS5Tests {
    /// Greeting, then a CONNECT request for `address` (ATYP + address bytes) and `port`.
    func handshake(_ client: TestClient, _ address: [UInt8], port: UInt16) -> [UInt8] {
        client.send([5, 1, 0])
        guard client.receive(count: 2) == [5, 0] else { return [] }
        client.send([5, 1, 0] + address + [UInt8(port >> 8), UInt8(port & 0xFF)])
        let head = client.receive(count: 4)
        guard head.count == 4 else { return head }
        return head + client.receive(count: head[3] == 4 ? 18 : 6)
    }

    @Test func ipv4ConnectRelays() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: ["127.0.0.1:\(echo.port)"])
        let client = try TestClient(port: harness.socksPort)
        let reply = handshake(client, [1, 127, 0, 0, 1], port: echo.port)
        #expect(Array(reply.prefix(8)) == [5, 0, 0, 1, 127, 0, 0, 1])
        client.send("abc")
        #expect(client.receive(count: 3) == Array("abc".utf8))
        #expect(harness.nextLine() == "allow\tsocks5\t127.0.0.1\t\(echo.port)\t127.0.0.1\t127.0.0.1:\(echo.port)\t-")
        await harness.stop()
        try await echo.stop()
    }

    @Test func domainIsResolvedByTheProxy() async throws {
        let echo = try TestServer.echo()
        // A name resolving to loopback is refused (0x02) unless allowed by address; the
        // domain form still reaches the policy and the resolver.
        let harness = try Harness(allow: ["localhost:\(echo.port)"])
        let client = try TestClient(port: harness.socksPort)
        let reply = handshake(client, [3, 9] + Array("localhost".utf8), port: echo.port)
        #expect(Array(reply.prefix(2)) == [5, 0x02])
        let line = try #require(harness.nextLine())
        #expect(line.hasPrefix("deny\tsocks5\tlocalhost\t\(echo.port)\t"))
        #expect(line.hasSuffix("is a loopback address; allow it by address to reach it"))
        await harness.stop()
        try await echo.stop()
    }

    @Test func domainNamingAnAllowedAddressConnects() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: ["127.0.0.1:\(echo.port)"])
        let client = try TestClient(port: harness.socksPort)
        let reply = handshake(client, [3, 9] + Array("127.0.0.1".utf8), port: echo.port)
        #expect(Array(reply.prefix(2)) == [5, 0])
        client.send("x")
        #expect(client.receive(count: 1) == Array("x".utf8))
        await harness.stop()
        try await echo.stop()
    }

    @Test func ipv6LoopbackByAddress() async throws {
        let server = try TestServer6()
        let harness = try Harness(allow: ["[::1]:\(server.port)"])
        let client = try TestClient(port: harness.socksPort)
        let reply = handshake(client, [4] + [UInt8](repeating: 0, count: 15) + [1], port: server.port)
        #expect(Array(reply.prefix(4)) == [5, 0, 0, 4])
        client.send("v6")
        #expect(client.receive(count: 2) == Array("v6".utf8))
        #expect(harness.nextLine() == "allow\tsocks5\t[::1]\t\(server.port)\t::1\t[::1]:\(server.port)\t-")
        await harness.stop()
        try await server.stop()
    }

    @Test func deniedIsReply2() async throws {
        let harness = try Harness(allow: ["api.example.test:443"])
        let client = try TestClient(port: harness.socksPort)
        let reply = handshake(client, [1, 203, 0, 113, 7], port: 443)
        #expect(reply == [5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(harness.nextLine() == "deny\tsocks5\t203.0.113.7\t443\t-\t-\t203.0.113.7 is not in network.allow")
        await harness.stop()
    }

    @Test func bindIsReply7AndAuthOnlyIsFF() async throws {
        let harness = try Harness(allow: [])
        let bind = try TestClient(port: harness.socksPort)
        bind.send([5, 1, 0])
        #expect(bind.receive(count: 2) == [5, 0])
        bind.send([5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
        #expect(bind.receiveAll() == [5, 7, 0, 1, 0, 0, 0, 0, 0, 0])
        let auth = try TestClient(port: harness.socksPort)
        auth.send([5, 1, 2])
        #expect(auth.receiveAll() == [5, 0xFF])
        let socks4 = try TestClient(port: harness.socksPort)
        socks4.send([4, 1, 0, 80, 127, 0, 0, 1, 0])
        #expect(socks4.receiveAll() == [])
        await harness.stop()
    }

    /// Hosts come from the sandbox: tab, newline, ESC and `%` must not reach the line raw.
    @Test func decisionFieldsAreSanitised() async throws {
        let harness = try Harness(allow: [])
        let client = try TestClient(port: harness.socksPort)
        let host = Array("a\tb\nc\u{1B}[31md%e é".utf8)
        let reply = handshake(client, [3, UInt8(host.count)] + host, port: 443)
        #expect(Array(reply.prefix(2)) == [5, 1])
        let line = try #require(harness.nextLine())
        #expect(line == "error\tsocks5\ta%09b%0Ac%1B[31md%25e %C3%A9\t443\t-\t-\t`a%09b%0Ac%1B[31md%25e %C3%A9` is not a host name or address")
        #expect(Decision.escape("\u{7F}\r%") == "%7F%0D%25")
        // Through CONNECT: NIO's parser refuses control bytes in the target (a 400 whose line
        // names no host, and it refuses non-ASCII too); `%` gets through to the line, escaped.
        let connect = try TestClient(port: harness.httpPort)
        connect.send("CONNECT ev%il.test:443 HTTP/1.1\r\n\r\n")
        #expect(connect.receiveText().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(harness.nextLine() == "error\thttp-connect\tev%25il.test\t443\t-\t-\t`ev%25il.test` is not a host name or address")
        let control = try TestClient(port: harness.httpPort)
        control.send(Array("CONNECT a\tb\u{1B}.test:443 HTTP/1.1\r\n\r\n".utf8))
        #expect(control.receiveText().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(harness.nextLine() == "error\thttp\t-\t0\t-\t-\tmalformed request: invalid URL")
        await harness.stop()
    }
}

@Suite struct ForwardAndLifecycleTests {
    @Test func forwardRelaysToItsTarget() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: [], forwards: ["127.0.0.1:\(echo.port)"])
        let client = try TestClient(port: harness.forwardPorts[0])
        client.send("through")
        #expect(client.receive(count: 7) == Array("through".utf8))
        #expect(harness.nextLine() == "allow\tforward\t127.0.0.1\t\(echo.port)\t127.0.0.1\t127.0.0.1:\(echo.port)\t-")
        await harness.stop()
        try await echo.stop()
    }

    /// A client that sends and shuts its output at once: its FIN comes before the upstream
    /// is connected (NIO then reads everything), and the bytes and the FIN still go through.
    @Test func forwardKeepsBytesAndFINThatCameBeforeTheUpstream() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: [], forwards: ["127.0.0.1:\(echo.port)"])
        let client = try TestClient(port: harness.forwardPorts[0])
        client.send("sent-then-closed")
        client.shutdownWrite()
        #expect(client.receiveAll() == Array("sent-then-closed".utf8))
        #expect(harness.nextLine()?.hasPrefix("allow\tforward\t") == true)
        await harness.stop()
        try await echo.stop()
    }

    @Test func forwardByNameToLoopbackIsRefused() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: [], forwards: ["localhost:\(echo.port)"])
        let client = try TestClient(port: harness.forwardPorts[0])
        #expect(client.receiveAll() == [])
        let line = try #require(harness.nextLine())
        #expect(line.hasPrefix("deny\tforward\tlocalhost\t\(echo.port)\t"))
        await harness.stop()
        try await echo.stop()
    }

    /// Stopping must happen, not be fast: under the parallel suite the in-process shutdown's
    /// callbacks wait for a busy cooperative pool for seconds. The limit catches a hang.
    @Test(.timeLimit(.minutes(1))) func controlEndOfFileStopsTheProxy() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: ["127.0.0.1:\(echo.port)"])
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\n")
        #expect(client.receiveHead() == "HTTP/1.1 200 Connection Established\r\n\r\n")
        await harness.stop()  // returns once stopped: the test would hang (and time out) otherwise
        #expect(client.receiveAll() == [])  // the relayed connection was closed
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = harness.httpPort.bigEndian
        let probe = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(rc == -1 && errno == ECONNREFUSED)  // the listener is closed
        try await echo.stop()
    }

    /// 500 tunnels at once through the real `corral-egress` process, capped at 400: exactly
    /// 400 served, 100 refused with 503, one more served once some close, every decision
    /// logged, and a clean exit. Driven by a script in its own process (see its header: the
    /// descriptors would overflow Foundation's Process in this one).
    @Test func fiveHundredConcurrentConnections() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Scripts/many_connections.py").path
        let egress = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("corral-egress").path
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("corral-egress").path, egress]
        let binary = try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                                  "corral-egress is built next to the tests")
        // A file, not a pipe: a child forked meanwhile by another test would hold a pipe open.
        let outputPath = NSTemporaryDirectory() + "/corral-many-\(UUID().uuidString)"
        try #require(FileManager.default.createFile(atPath: outputPath, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try #require(FileHandle(forWritingAtPath: outputPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, binary]
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        try output.close()
        let text = try String(contentsOfFile: outputPath, encoding: .utf8)
        #expect(text == "served 400\nrefused 100\nlate ok\ndecisions allow=401 error=100\nexit 0\n", "\(text)")
    }

    @Test func argumentsParse() throws {
        let parsed = try EgressArguments.parse(["--control-fd", "3", "--http-fd", "4", "--forward", "5=db.internal.test:5432",
                                                "--allow", "*.pypi.org:443", "--idle-timeout", "7"]).get()
        #expect(parsed.controlFD == 3 && parsed.listeners.http == 4 && parsed.listeners.forwards.count == 1)
        #expect(parsed.configuration.policy.entries.map(\.text) == ["*.pypi.org:443"])
        #expect(parsed.configuration.idleTimeout == .seconds(7))
        #expect(EgressArguments.parse(["--http-fd", "4"]).failure == "--control-fd is required")
        #expect(EgressArguments.parse(["--control-fd", "3", "--allow", "*:443"]).failure == "--allow: `*` allows every host")
        #expect(EgressArguments.parse(["--control-fd", "3", "--forward", "5=*.x.test:1"]).failure
            == "--forward: `*.x.test` must name one host")
    }
}

extension Result where Failure == EgressArguments.Problem {
    var failure: String? { if case .failure(let problem) = self { problem.message } else { nil } }
}

/// An echo server on [::1].
final class TestServer6: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: Channel
    var port: UInt16 { UInt16(channel.localAddress!.port!) }

    init() throws {
        channel = try ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "::1", port: 0).wait()
    }

    func stop() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }
}
