#if canImport(Glibc)
import Glibc
#endif
@testable import CorralNet
import Testing

/// The proxy in-process on 127.0.0.1 listeners, with in-process upstream servers. Loopback
/// is a special address, so the tests allow it by address (`127.0.0.1:PORT`).
@Suite struct HTTPConnectTests {
    @Test func allowedConnectEchoes() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: ["127.0.0.1:\(echo.port)"])
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nearly ")
        #expect(client.receiveHead() == "HTTP/1.1 200 Connection Established\r\n\r\n")
        client.send("bytes")
        #expect(String(decoding: client.receive(count: 11), as: UTF8.self) == "early bytes")
        client.shutdownWrite()
        #expect(client.receiveAll() == [])  // the echo server's FIN comes back through
        #expect(harness.nextLine() == "allow\thttp-connect\t127.0.0.1\t\(echo.port)\t127.0.0.1\t127.0.0.1:\(echo.port)\t-")
        await harness.stop()
        try await echo.stop()
    }

    @Test func unlistedHostIsForbidden() async throws {
        let harness = try Harness(allow: ["api.example.test:443"])
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT api.other.test:443 HTTP/1.1\r\n\r\n")
        let body = "corral: api.other.test is not in network.allow\n"
        #expect(client.receiveText() == "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
        #expect(harness.nextLine() == "deny\thttp-connect\tapi.other.test\t443\t-\t-\tapi.other.test is not in network.allow")
        await harness.stop()
    }

    @Test func listedHostOnUnlistedPortIsForbidden() async throws {
        let harness = try Harness(allow: ["api.example.test:443"])
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT api.example.test:8443 HTTP/1.1\r\n\r\n")
        #expect(client.receiveText().hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(harness.nextLine() == "deny\thttp-connect\tapi.example.test\t8443\t-\t-\tport 8443 of api.example.test is not in network.allow")
        await harness.stop()
    }

    @Test func nameResolvingToLoopbackIsRefused() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: ["localhost:\(echo.port)"])
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT localhost:\(echo.port) HTTP/1.1\r\n\r\n")
        let response = client.receiveText()
        #expect(response.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        let line = try #require(harness.nextLine())
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        try #require(fields.count == 7)
        #expect(fields[0] == "deny")
        #expect(fields[2] == "localhost")
        #expect(fields[4] == "127.0.0.1" || fields[4] == "::1")
        #expect(fields[5] == "localhost:\(echo.port)")
        #expect(fields[6] == "\(fields[4]) is a loopback address; allow it by address to reach it")
        #expect(response.hasSuffix("corral: \(fields[6])\n"))
        await harness.stop()
        try await echo.stop()
    }

    @Test func clientVanishingMidRelayLeavesTheProxyServing() async throws {
        let echo = try TestServer.echo()
        let harness = try Harness(allow: ["127.0.0.1:\(echo.port)"])
        do {
            let gone = try TestClient(port: harness.httpPort)
            gone.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\n")
            _ = gone.receiveHead()
            gone.send([UInt8](repeating: 7, count: 1 << 20))
            var linger = linger(l_onoff: 1, l_linger: 0)  // close with a reset
            setsockopt(gone.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        }
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\nping")
        #expect(client.receiveHead() == "HTTP/1.1 200 Connection Established\r\n\r\n")
        #expect(client.receive(count: 4) == Array("ping".utf8))
        for _ in 0..<200 where harness.proxy.openConnections > 1 { usleep(10_000) }
        #expect(harness.proxy.openConnections == 1)
        await harness.stop()
        try await echo.stop()
    }
}

@Suite struct HTTPForwardingTests {
    @Test func contentLengthBodyStreamsUpstream() async throws {
        let received = Received()
        let server = try TestServer { HTTPRecorder(received) }
        let harness = try Harness(allow: ["127.0.0.1:\(server.port)"])
        let client = try TestClient(port: harness.httpPort)
        client.send("POST http://127.0.0.1:\(server.port)/upload?x=1 HTTP/1.1\r\nHost: elsewhere.test\r\n"
            + "Content-Length: 5\r\nProxy-Connection: keep-alive\r\nConnection: X-Private, keep-alive\r\n"
            + "X-Private: secret\r\nX-Kept: yes\r\n\r\nhello")
        let response = client.receiveText()
        let forwarded = "POST /upload?x=1 HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nContent-Length: 5\r\n"
            + "X-Kept: yes\r\nConnection: close\r\n\r\nhello"
        let body = "got \(forwarded.utf8.count) bytes"
        #expect(response == "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(try await received.wait(for: 1) == [forwarded])
        #expect(harness.nextLine() == "allow\thttp\t127.0.0.1\t\(server.port)\t127.0.0.1\t127.0.0.1:\(server.port)\t-")
        await harness.stop()
        try await server.stop()
    }

    @Test func chunkedBodyStreamsUpstream() async throws {
        let received = Received()
        let server = try TestServer { HTTPRecorder(received) }
        let harness = try Harness(allow: ["127.0.0.1:\(server.port)"])
        let client = try TestClient(port: harness.httpPort)
        client.send("PUT http://127.0.0.1:\(server.port)/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        usleep(50_000)
        client.send("6\r\n world\r\n0\r\n\r\n")
        let response = client.receiveText()
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        let upstream = try await received.wait(for: 1)
        try #require(upstream.count == 1)
        let head = "PUT / HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        #expect(upstream[0].hasPrefix(head))
        // NIO's decoder may split the body differently; the re-chunked body carries the same bytes.
        #expect(dechunk(String(upstream[0].dropFirst(head.count))) == "hello world")
        await harness.stop()
        try await server.stop()
    }

    @Test func pipelinedSecondRequestNeverReachesUpstream() async throws {
        let received = Received()
        let server = try TestServer { HTTPRecorder(received) }
        let harness = try Harness(allow: ["127.0.0.1:\(server.port)"])
        let client = try TestClient(port: harness.httpPort)
        client.send("GET http://127.0.0.1:\(server.port)/one HTTP/1.1\r\n\r\n"
            + "GET http://127.0.0.1:\(server.port)/two HTTP/1.1\r\nHost: internal.test\r\n\r\n")
        #expect(client.receiveText().hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(try await received.wait(for: 1)
            == ["GET /one HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nConnection: close\r\n\r\n"])
        await harness.stop()
        try await server.stop()
    }

    @Test func originFormIsBadRequest() async throws {
        let harness = try Harness(allow: [])
        let client = try TestClient(port: harness.httpPort)
        client.send("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(client.receiveText().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(harness.nextLine() == "error\thttp\t-\t0\t-\t-\tthe proxy takes CONNECT or absolute-form http:// requests")
        await harness.stop()
    }

    @Test func httpsAbsoluteFormIsBadRequest() async throws {
        let harness = try Harness(allow: ["example.test:443"])
        let client = try TestClient(port: harness.httpPort)
        client.send("GET https://example.test/ HTTP/1.1\r\n\r\n")
        #expect(client.receiveText().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        await harness.stop()
    }

    @Test func malformedRequestLineIsBadRequest() async throws {
        let harness = try Harness(allow: [])
        let client = try TestClient(port: harness.httpPort)
        client.send("HELLO THERE\r\n\r\n")
        #expect(client.receiveText().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        let line = try #require(harness.nextLine())
        #expect(line.hasPrefix("error\thttp\t-\t0\t-\t-\tmalformed request: "))
        await harness.stop()
    }

    @Test func headLargerThan16KiBIs431() async throws {
        let harness = try Harness(allow: ["example.test:443"])
        let client = try TestClient(port: harness.httpPort)
        client.send("CONNECT example.test:443 HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 17 * 1024) + "\r\n\r\n")
        #expect(client.receiveText().hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(harness.nextLine() == "error\thttp\t-\t0\t-\t-\trequest head larger than 16384 bytes")
        await harness.stop()
    }

    @Test func slowHeadTimesOutWith408() async throws {
        let harness = try Harness(allow: ["example.test:443"]) { $0.handshakeTimeout = .seconds(1) }
        let client = try TestClient(port: harness.httpPort)
        let start = ContinuousClock.now
        client.send("CONNECT exam")
        usleep(400_000)  // blocking: the parallel runner may delay a task's sleep by seconds
        client.send("ple.te")
        let response = client.receiveText()
        let elapsed = ContinuousClock.now - start
        #expect(response.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        // The timeout, not the client, ended it; the upper bound only catches a proxy that
        // waited for the client instead (under the parallel suite, seconds of slack).
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(8))
        #expect(harness.nextLine() == "error\thttp\t-\t0\t-\t-\trequest head not complete within 1 s")
        await harness.stop()
    }
}

/// The body of a chunked message body (no trailers), or nil when it is not well formed.
func dechunk(_ text: String) -> String? {
    var rest = Array(text.utf8)[...], body: [UInt8] = []
    let crlf = Array("\r\n".utf8)
    while let lineEnd = rest.firstRange(of: crlf) {
        guard let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { return nil }
        rest = rest[lineEnd.upperBound...]
        if size == 0 { return Array(rest) == crlf ? String(decoding: body, as: UTF8.self) : nil }
        guard rest.count >= size + 2 else { return nil }
        body += rest.prefix(size)
        rest = rest.dropFirst(size + 2)
    }
    return nil
}
