import CorralPlan
import CorralProfile
import NIOCore

/// The SOCKS5 front end (RFC 1928): no authentication, CONNECT only, IPv4, domain (resolved
/// by the proxy) and IPv6 addresses.
final class SOCKS5Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// RFC 1928 §6 reply codes.
    enum Reply: UInt8 {
        case succeeded = 0x00
        case generalFailure = 0x01
        case notAllowed = 0x02
        case hostUnreachable = 0x04
        case connectionRefused = 0x05
        case commandNotSupported = 0x07
        case addressTypeNotSupported = 0x08
    }

    private enum State { case greeting, request, connecting, done }

    private let services: ProxyServices
    private var state = State.greeting
    private var buffer: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(services: ProxyServices) {
        self.services = services
    }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let timeout = services.configuration.handshakeTimeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard state == .greeting || state == .request else { return }
            fail(loopBound.value, reason: "SOCKS5 handshake not complete within \(timeout.seconds) s", reply: nil)
        }
        context.read()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .done else { return }
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        step(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state == .greeting || state == .request || state == .done { context.read() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            timer?.cancel()
            if state != .connecting { state = .done }
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: - Handshake

    private func step(_ context: ChannelHandlerContext) {
        guard var bytes = buffer else { return }
        if state == .greeting {
            guard let version: UInt8 = bytes.getInteger(at: bytes.readerIndex) else { return }
            guard version == 5 else { return fail(context, reason: "not SOCKS5 (version \(version))", reply: nil) }
            guard let count: UInt8 = bytes.getInteger(at: bytes.readerIndex + 1),
                  let methods = bytes.getBytes(at: bytes.readerIndex + 2, length: Int(count)) else { return }
            bytes.moveReaderIndex(forwardBy: 2 + Int(count))
            buffer = bytes
            guard methods.contains(0x00) else {
                state = .done
                services.log.record(Decision(.error, via: .socks5, reason: "SOCKS5 client offers no method without authentication"))
                return answerAndClose(context, context.channel.allocator.buffer(bytes: [5, 0xFF]))
            }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: [5, 0])), promise: nil)
            state = .request
        }
        guard state == .request else { return }
        // VER CMD RSV ATYP DST.ADDR DST.PORT
        let start = bytes.readerIndex
        guard let header = bytes.getBytes(at: start, length: 4) else { return }
        guard header[0] == 5 else { return fail(context, reason: "not SOCKS5 (version \(header[0]))", reply: nil) }
        let hostText: String
        let target: EgressPolicy.Target?
        var offset = start + 4
        switch header[3] {
        case 1:
            guard let raw = bytes.getBytes(at: offset, length: 4) else { return }
            let address = IPAddress(bytes: raw)!
            hostText = address.description
            target = .address(address)
            offset += 4
        case 3:
            guard let length: UInt8 = bytes.getInteger(at: offset),
                  let raw = bytes.getBytes(at: offset + 1, length: Int(length)) else { return }
            hostText = String(decoding: raw, as: UTF8.self)
            target = raw.contains(0) ? nil : EgressPolicy.Target(hostText)
            offset += 1 + Int(length)
        case 4:
            guard let raw = bytes.getBytes(at: offset, length: 16) else { return }
            let address = IPAddress(bytes: raw)!
            hostText = "[\(address)]"
            target = .address(address.mappedV4 ?? address)
            offset += 16
        default:
            return fail(context, reason: "SOCKS5 address type \(header[3]) is not supported", reply: .addressTypeNotSupported)
        }
        guard let port: UInt16 = bytes.getInteger(at: offset) else { return }
        offset += 2
        bytes.moveReaderIndex(to: offset)
        buffer = bytes
        guard header[1] == 1 else {
            return fail(context, host: hostText, port: port,
                        reason: "SOCKS5 command \(header[1]) is not supported (CONNECT only)", reply: .commandNotSupported)
        }
        guard let target, port != 0 else {
            return fail(context, host: hostText, port: port, reason: "`\(hostText)` is not a host name or address",
                        reply: .generalFailure)
        }
        timer?.cancel()
        connect(context, UpstreamRequest(via: .socks5, hostText: hostText, target: target, port: port))
    }

    private func connect(_ context: ChannelHandlerContext, _ request: UpstreamRequest) {
        state = .connecting
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        services.upstream.open(request, on: context.eventLoop).assumeIsolated().whenSuccess { [self] outcome in
            let context = loopBound.value
            let decision = outcome.decision(for: request)
            guard case .connected(let upstream, _, _) = outcome else {
                let reply: Reply
                switch outcome {
                case .denied: reply = .notAllowed
                case .resolutionFailed: reply = .hostUnreachable
                case .connectFailed(.refused, _, _): reply = .connectionRefused
                default: reply = .generalFailure
                }
                state = .done
                services.log.record(decision)
                return answerAndClose(context, Self.reply(reply, bound: nil, allocator: context.channel.allocator))
            }
            guard context.channel.isActive else {
                upstream.close(promise: nil)
                return
            }
            state = .done
            services.log.record(decision)
            let reply = context.writeAndFlush(wrapOutboundOut(Self.reply(.succeeded, bound: upstream.localAddress,
                                                                         allocator: context.channel.allocator)))
            let starter = TunnelStarter(services: services, upstream: upstream, early: buffer, clientEnded: false,
                                        reply: reply)
            buffer = nil
            starter.takeOver(from: context)
        }
    }

    private func fail(_ context: ChannelHandlerContext, host: String? = nil, port: UInt16 = 0, reason: String,
                      reply: Reply?) {
        timer?.cancel()
        state = .done
        services.log.record(Decision(.error, via: .socks5, host: host, port: port, reason: reason))
        answerAndClose(context, reply.map { Self.reply($0, bound: nil, allocator: context.channel.allocator) })
    }

    /// VER REP RSV ATYP BND.ADDR BND.PORT; 0.0.0.0:0 when there is no bound address.
    static func reply(_ reply: Reply, bound: SocketAddress?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 22)
        buffer.writeBytes([5, reply.rawValue, 0])
        switch bound {
        case .v4(let address)?:
            buffer.writeInteger(UInt8(1))
            withUnsafeBytes(of: address.address.sin_addr) { buffer.writeBytes($0) }
        case .v6(let address)?:
            buffer.writeInteger(UInt8(4))
            withUnsafeBytes(of: address.address.sin6_addr) { buffer.writeBytes($0) }
        default:
            buffer.writeBytes([1, 0, 0, 0, 0])
        }
        buffer.writeInteger(UInt16(bound?.port ?? 0))
        return buffer
    }
}
