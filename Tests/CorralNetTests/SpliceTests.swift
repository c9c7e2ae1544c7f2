#if canImport(Glibc)
import Glibc
#endif
@testable import CorralNet
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Established tunnels leave NIO for the splice workers: these check that they carry every
/// byte in order both ways, pass each FIN on, keep the idle timeout, the lifetime and the
/// connection cap, and end with the proxy. `tunnelsSpliced` counts the hand-overs, so each
/// test also fails if its tunnel stayed with the NIO relay.
@Suite struct SpliceTests {
    enum Path: String, CaseIterable, Sendable {
        case connect, socks5, forward
    }

    /// A client connected through `path` to 127.0.0.1:`port`, past the proxy's handshake.
    static func open(_ path: Path, _ harness: Harness, port: UInt16, timeout: Int = 5) throws -> TestClient {
        switch path {
        case .connect:
            let client = try TestClient(port: harness.httpPort, timeout: timeout)
            client.send("CONNECT 127.0.0.1:\(port) HTTP/1.1\r\n\r\n")
            try #require(client.receiveHead() == "HTTP/1.1 200 Connection Established\r\n\r\n")
            return client
        case .socks5:
            let client = try TestClient(port: harness.socksPort, timeout: timeout)
            client.send([5, 1, 0])
            try #require(client.receive(count: 2) == [5, 0])
            client.send([5, 1, 0, 1, 127, 0, 0, 1, UInt8(port >> 8), UInt8(port & 0xFF)])
            try #require(Array(client.receive(count: 10).prefix(2)) == [5, 0])
            return client
        case .forward:
            return try TestClient(port: harness.forwardPorts[0], timeout: timeout)
        }
    }

    /// Whether `condition` holds within 5 s (the hand-over follows the reply by a moment).
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    static func harness(_ port: UInt16, configure: (inout EgressConfiguration) -> Void = { _ in }) throws -> Harness {
        try Harness(allow: ["127.0.0.1:\(port)"], forwards: ["127.0.0.1:\(port)"], configure: configure)
    }

    /// 64 MiB up, the client's FIN, 64 MiB back: the upstream sees exactly the bytes sent
    /// and the FIN after them, and the client the upstream's bytes and its FIN.
    @Test(arguments: Path.allCases)
    func largeTransferArrivesByteExactBothWays(path: Path) async throws {
        let size = 64 << 20
        let received = StreamRecord()
        let server = try TestServer { StreamServer(record: received, replyBytes: size, replySeed: 2) }
        let harness = try Self.harness(server.port)
        let client = try Self.open(path, harness, port: server.port, timeout: 60)
        var sent = StreamDigest()
        for chunk in 0..<size / Pattern.chunkSize {
            let bytes = Pattern.chunk(chunk, seed: 1)
            bytes.withUnsafeBytes { sent.update($0) }
            client.send(bytes)
        }
        client.shutdownWrite()
        var back = StreamDigest()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var last = 0
        while true {
            last = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
            if last <= 0 { break }
            buffer.withUnsafeBytes { back.update(UnsafeRawBufferPointer(rebasing: $0[..<last])) }
        }
        #expect(last == 0, "the upstream's FIN, not a timeout or a reset (errno \(errno))")
        var expected = StreamDigest()
        for chunk in 0..<size / Pattern.chunkSize { Pattern.chunk(chunk, seed: 2).withUnsafeBytes { expected.update($0) } }
        #expect(received.digest == sent.value)
        #expect(back.value == expected.value)
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        await harness.stop()
        try await server.stop()
    }

    /// The upstream speaks first and shuts its output: the client reads the banner and the
    /// FIN, and can still send; the upstream reads that and the client's FIN after it. With
    /// splicing off, the NIO relay takes the tunnel over, FIN included (NIO may have read
    /// the upstream's FIN before the hand-over).
    @Test(arguments: Path.allCases, [true, false])
    func finPassesEachWayOnItsOwn(path: Path, splice: Bool) async throws {
        let received = StreamRecord()
        let server = try TestServer { BannerServer(record: received) }
        let harness = try Self.harness(server.port) { $0.splice = splice }
        let client = try Self.open(path, harness, port: server.port)
        #expect(client.receiveToFIN() == Array("banner\n".utf8))  // its FIN came through
        client.send("after the banner")
        client.shutdownWrite()
        #expect(try await received.wait() == "after the banner")
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == (splice ? 1 : 0) })
        #expect(Self.eventually { harness.proxy.openConnections == 0 })  // both FINs passed: the tunnel ended
        await harness.stop()
        try await server.stop()
    }

    /// A CONNECT client that sends its first bytes with the head and shuts its output at
    /// once (before the upstream is connected): the bytes and the FIN still go through
    /// (NIO's HTTP decoder drops what it holds at an end-of-file; the head limit kept a copy).
    /// The echo shuts its output at the client's FIN, so the client's end-of-file (not the
    /// receive timeout) shows that the FIN went up, and back.
    @Test(arguments: [true, false])
    func connectBytesAndFINBeforeTheUpstreamGoThrough(splice: Bool) async throws {
        let echo = try TestServer.echo()
        let harness = try Self.harness(echo.port) { $0.splice = splice }
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\nearly bytes")
        client.shutdownWrite()
        #expect(client.receiveHead() == "HTTP/1.1 200 Connection Established\r\n\r\n")
        #expect(client.receiveTextToFIN() == "early bytes")
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == (splice ? 1 : 0) })
        await harness.stop()
        try await echo.stop()
    }

    /// A client sends its request and its FIN, then dies with a reset while the upstream is
    /// still silent (a long poll). The direction client → upstream is done, so no pump
    /// reads the client's socket again: only the reset's EPOLLERR tells. The tunnel must
    /// end at once (the upstream sees its connection reset, the connection's place is
    /// free), not at the idle timeout, set long here.
    @Test(arguments: Path.allCases)
    func clientResetAfterItsFINEndsTheTunnel(path: Path) async throws {
        let record = SilentRecord()
        let server = try TestServer { SilentServer(record: record) }
        let harness = try Self.harness(server.port) { $0.idleTimeout = .seconds(30) }
        let client = try Self.open(path, harness, port: server.port)
        client.send("GET /long-poll")
        client.shutdownWrite()
        #expect(record.waitForFIN() == "GET /long-poll")
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        #expect(harness.proxy.openConnections == 1)
        client.reset()
        let reset = ContinuousClock.now
        #expect(Self.eventually { record.closed }, "the upstream's connection stays open")
        #expect(Self.eventually { harness.proxy.openConnections == 0 })
        #expect(ContinuousClock.now - reset < .seconds(3))
        await harness.stop()
        try await server.stop()
    }

    @Test func idleTimeoutClosesASplicedTunnel() async throws {
        let echo = try TestServer.echo()
        let harness = try Self.harness(echo.port) { $0.idleTimeout = .milliseconds(300) }
        let client = try Self.open(.connect, harness, port: echo.port)
        client.send("ping")
        #expect(client.receive(count: 4) == Array("ping".utf8))
        let quiet = ContinuousClock.now
        #expect(client.receiveToFIN() == [])  // closed by the proxy (the receive timeout is 5 s)
        let elapsed = ContinuousClock.now - quiet
        #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(4), "\(elapsed)")
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        #expect(Self.eventually { harness.proxy.openConnections == 0 })
        await harness.stop()
        try await echo.stop()
    }

    /// Traffic every 50 ms keeps the idle timeout away; the lifetime ends the tunnel anyway.
    @Test func maximumLifetimeClosesABusySplicedTunnel() async throws {
        let echo = try TestServer.echo()
        let harness = try Self.harness(echo.port) { $0.maxDuration = .milliseconds(600) }
        let client = try Self.open(.socks5, harness, port: echo.port)
        let start = ContinuousClock.now
        var echoed = 0
        while ContinuousClock.now - start < .seconds(4) {
            client.send("x")
            guard client.receive(count: 1) == Array("x".utf8) else { break }
            echoed += 1
            usleep(50_000)
        }
        let elapsed = ContinuousClock.now - start
        #expect(client.ending == .endOfFile, "the lifetime ends the tunnel with a FIN, not a reset or a timeout")
        #expect(echoed >= 3)
        #expect(elapsed >= .milliseconds(550) && elapsed < .seconds(3), "\(elapsed)")
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        await harness.stop()
        try await echo.stop()
    }

    /// A spliced tunnel keeps its place under `maxConnections` until it ends.
    @Test func splicedTunnelCountsAgainstTheCap() async throws {
        let echo = try TestServer.echo()
        let harness = try Self.harness(echo.port) { $0.maxConnections = 1 }
        var first: TestClient? = try Self.open(.connect, harness, port: echo.port)
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        let refused = try TestClient(port: harness.httpPort)
        #expect(refused.receiveText().hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        first?.shutdownWrite()
        #expect(first?.receiveToFIN() == [])
        first = nil
        #expect(Self.eventually { harness.proxy.openConnections == 0 })
        let later = try Self.open(.connect, harness, port: echo.port)
        later.send("again")
        #expect(later.receive(count: 5) == Array("again".utf8))
        await harness.stop()
        try await echo.stop()
    }

    /// Past `spliceMaxTunnels`, tunnels stay with the NIO relay (and still work); once a
    /// spliced one ends, the next is spliced again.
    @Test func tunnelsPastTheSpliceCapAreRelayedByNIO() async throws {
        let echo = try TestServer.echo()
        let harness = try Self.harness(echo.port) { $0.spliceMaxTunnels = 1 }
        var first: TestClient? = try Self.open(.connect, harness, port: echo.port)
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        let second = try Self.open(.socks5, harness, port: echo.port)
        second.send("second")
        #expect(second.receive(count: 6) == Array("second".utf8))
        #expect(harness.proxy.tunnelsSpliced == 1)
        first?.shutdownWrite()
        #expect(first?.receiveToFIN() == [])
        first = nil
        #expect(Self.eventually { harness.proxy.openConnections == 1 })
        let third = try Self.open(.forward, harness, port: echo.port)
        third.send("third")
        #expect(third.receive(count: 5) == Array("third".utf8))
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 2 })
        await harness.stop()
        try await echo.stop()
    }

    @Test(.timeLimit(.minutes(1))) func stoppingTheProxyClosesSplicedTunnels() async throws {
        let echo = try TestServer.echo()
        let harness = try Self.harness(echo.port)
        let client = try Self.open(.forward, harness, port: echo.port)
        client.send("x")
        #expect(client.receive(count: 1) == Array("x".utf8))
        #expect(Self.eventually { harness.proxy.tunnelsSpliced == 1 })
        await harness.stop()
        #expect(client.receiveToFIN() == [])
        #expect(harness.proxy.openConnections == 0)
        try await echo.stop()
    }

    /// The real `corral-egress`, hardened as in a run (Landlock forbids it /proc, so the
    /// descriptor must come from NIO, not from /proc/self/fd), splices: two pipes while the
    /// tunnel is open, none after. Driven by a script (see `fiveHundredConcurrentConnections`).
    @Test func hardenedProxyProcessSplicesATunnel() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Scripts/spliced_tunnel.py").path
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("corral-egress").path
        let candidates = [binary, Bundle.main.bundleURL.deletingLastPathComponent()
            .appendingPathComponent("corral-egress").path]
        let egress = try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                                  "corral-egress is built next to the tests")
        let outputPath = NSTemporaryDirectory() + "/corral-splice-\(UUID().uuidString)"
        try #require(FileManager.default.createFile(atPath: outputPath, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try #require(FileHandle(forWritingAtPath: outputPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, egress]
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        try output.close()
        let text = try String(contentsOfFile: outputPath, encoding: .utf8)
        // Two pipes, a read and a write end each.
        #expect(text == "echo ok\npipes open +4\npipes after +0\nexit 0\n", "\(text)")
    }

    @Test func descriptorCandidateIsReadFromTheDescription() {
        #expect(ChannelDescriptor.candidate(in: "SocketChannel { BaseSocket { fd=12 }, active = true }") == 12)
        #expect(ChannelDescriptor.candidate(in: "SocketChannel { active = true }") == nil)
    }
}
