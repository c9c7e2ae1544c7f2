#if canImport(Glibc)
import Glibc
#endif
import CorralNet
import CorralPlan
import CorralProfile
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

// MARK: - Blocking sockets for the client side

/// A listening TCP socket on 127.0.0.1 (an ephemeral port), as corral's init would make.
func makeListener() throws -> (fd: CInt, port: UInt16) {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    try #require(fd >= 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && listen(fd, 1024) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    try #require(bound)
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// A blocking client connection with a receive timeout.
final class TestClient {
    private(set) var fd: CInt

    /// How the last receive stopped: recv(2) returns 0 only at the peer's FIN; the receive
    /// timeout (SO_RCVTIMEO) makes it fail with EAGAIN, a reset with ECONNRESET.
    enum Ending: Equatable {
        case count, endOfFile, timeout, failure(CInt)
    }

    private(set) var ending = Ending.count

    init(port: UInt16, timeout seconds: Int = 5) throws {
        fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(rc == 0, "connect to 127.0.0.1:\(port): errno \(errno)")
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { if fd >= 0 { close(fd) } }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Bytes until `count` have come, end-of-file or the timeout (see `ending`).
    func receive(count: Int) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        ending = .count
        while result.count < count {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - result.count), 0) }
            if n == 0 { ending = .endOfFile }
            if n < 0 { ending = errno == EAGAIN || errno == EWOULDBLOCK ? .timeout : .failure(errno) }
            if n <= 0 { break }
            result += chunk[..<n]
        }
        return result
    }

    /// Everything until end-of-file (or the timeout, or a reset).
    func receiveAll() -> [UInt8] { receive(count: .max) }

    func receiveText() -> String { String(decoding: receiveAll(), as: UTF8.self) }

    /// Everything until the peer's FIN. A timeout or a reset instead is a test failure:
    /// for the tests where the FIN is what is being checked.
    func receiveToFIN(sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
        let bytes = receiveAll()
        if ending != .endOfFile {
            Issue.record("no FIN: the receive ended with \(ending) after \(bytes.count) bytes",
                         sourceLocation: sourceLocation)
        }
        return bytes
    }

    func receiveTextToFIN(sourceLocation: SourceLocation = #_sourceLocation) -> String {
        String(decoding: receiveToFIN(sourceLocation: sourceLocation), as: UTF8.self)
    }

    /// Closes the connection with a reset (SO_LINGER 0), as a client that dies or aborts.
    func reset() {
        var abort = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
        close(fd)
        fd = -1
    }

    /// Bytes up to and including the first empty line (a response head).
    func receiveHead() -> String {
        var head: [UInt8] = []
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            let byte = receive(count: 1)
            if byte.isEmpty { break }
            head += byte
        }
        return String(decoding: head, as: UTF8.self)
    }

    func shutdownWrite() { shutdown(fd, CInt(SHUT_WR)) }
}

extension Array where Element: Equatable {
    func ends(with suffix: [Element]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

// MARK: - The proxy under test

/// A proxy on fresh 127.0.0.1 listeners, with the supervisor's end of the control socket.
final class Harness {
    let proxy: EgressProxy
    let httpPort: UInt16
    let socksPort: UInt16
    let forwardPorts: [UInt16]
    let control: CInt

    init(allow: [String], forwards: [String] = [], configure: (inout EgressConfiguration) -> Void = { _ in }) throws {
        var entries: [EgressEntry] = []
        for text in allow { entries.append(try EgressSyntax.entry(text).get()) }
        var configuration = EgressConfiguration(policy: EgressPolicy(entries: entries))
        configure(&configuration)
        let http = try makeListener(), socks = try makeListener()
        var forwardListeners: [(fd: CInt, target: EgressConfiguration.Forward)] = []
        var ports: [UInt16] = []
        for text in forwards {
            let (host, port) = EgressSyntax.splitHostPort(text)!
            let listener = try makeListener()
            forwardListeners.append((listener.fd, .init(host: try EgressSyntax.hostPattern(host).get(),
                                                        port: EgressSyntax.port(port)!)))
            ports.append(listener.port)
        }
        var pair: [CInt] = [-1, -1]
        try #require(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        control = pair[0]
        proxy = try EgressProxy.start(configuration: configuration,
                                      listeners: EgressListeners(http: http.fd, socks: socks.fd, forwards: forwardListeners),
                                      controlFD: pair[1])
        httpPort = http.port
        socksPort = socks.port
        forwardPorts = ports
    }

    private var pending: [UInt8] = []

    /// The next decision line (without its newline), or nil after 5 s.
    func nextLine() -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(control, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            pending += chunk[..<n]
        }
    }

    /// Ends the run as the supervisor would: end-of-file on the control socket.
    func stop() async {
        close(control)
        await proxy.stopped()
    }
}

// MARK: - Upstream servers

/// A NIO server on 127.0.0.1:0 whose connections are handled by `handler()`.
final class TestServer: Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    var port: UInt16 { UInt16(channel.localAddress!.port!) }

    init(_ handler: @escaping @Sendable () -> ChannelHandler) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    static func echo() throws -> TestServer { try TestServer { EchoHandler() } }
}

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(mode: .output, promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

/// What an HTTP test server received on each connection, complete once the proxy closed it.
final class Received: Sendable {
    private let box = NIOLockedValueBox<[[UInt8]]>([])
    func append(_ bytes: [UInt8]) { box.withLockedValue { $0.append(bytes) } }
    var connections: [[UInt8]] { box.withLockedValue { $0 } }

    /// Waits up to 5 s for `count` finished connections.
    func wait(for count: Int) async throws -> [String] {
        for _ in 0..<500 {
            let all = connections
            if all.count >= count { return all.map { String(decoding: $0, as: UTF8.self) } }
            usleep(10_000)
        }
        return connections.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// A tiny HTTP/1.1 server: once a whole request is in (head, then Content-Length bytes or
/// chunks up to the last one) it answers `200` with the body `got <n> bytes`, shuts its
/// output, and records everything the connection carried until the proxy closes it.
final class HTTPRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let received: Received
    private var bytes: [UInt8] = []
    private var answered = false

    init(_ received: Received) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
        guard !answered, let size = Self.requestSize(bytes) else { return }
        answered = true
        let body = "got \(size) bytes"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(
            string: "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)), promise: nil)
        context.close(mode: .output, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) { received.append(bytes) }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    /// The size of the first complete request in `bytes`, or nil while incomplete.
    static func requestSize(_ bytes: [UInt8]) -> Int? {
        guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self).lowercased()
        let lines = head.split(separator: "\r\n")
        if let line = lines.first(where: { $0.hasPrefix("content-length:") }),
           let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: " ")) {
            return bytes.count >= headEnd.upperBound + length ? headEnd.upperBound + length : nil
        }
        if lines.contains("transfer-encoding: chunked") {
            let body = Array(bytes[headEnd.upperBound...])
            if body.starts(with: Array("0\r\n\r\n".utf8)) { return headEnd.upperBound + 5 }
            guard let end = body.firstRange(of: Array("\r\n0\r\n\r\n".utf8)) else { return nil }
            return headEnd.upperBound + end.upperBound
        }
        return headEnd.upperBound
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result.removeFirst() }
        while let last = result.last, set.contains(last) { result.removeLast() }
        return result
    }
}
