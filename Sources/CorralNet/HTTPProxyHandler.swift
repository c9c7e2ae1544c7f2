import CorralPlan
import NIOCore
import NIOHTTP1

/// Counts the bytes of a request head before NIO's HTTP decoder sees them, and stops a head
/// larger than the limit (431): llhttp's own limit is far larger. The head ends at the first
/// empty line (CRLF CRLF, or LF LF, which the decoder also accepts); after it, bytes pass.
///
/// It also keeps a copy of the bytes after the head (up to `keptLimit`) until the front end
/// knows what they are: for a CONNECT they are the tunnel's first bytes. The decoder holds
/// them too, but drops them when the client's FIN came first (llhttp's decodeLast forwards
/// left-over bytes only without an end-of-file), which a client that sends and shuts its
/// output at once does.
final class HeadLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Fired (as a user event) once the head has passed the limit; nothing more is passed.
    struct HeadTooLarge {}

    /// Bytes after the head kept at most; past them, `takeAfterHead` has nothing to give.
    static let keptLimit = 1 << 20

    private let limit: Int
    private var count = 0
    private var last: (UInt8, UInt8, UInt8) = (0, 0, 0)
    private var done = false
    private var overflowed = false
    private var keeping = true
    private var afterHead: ByteBuffer?
    private var keptTooMuch = false

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if overflowed { return }
        let buffer = unwrapInboundIn(data)
        if done {
            keep(buffer)
            return context.fireChannelRead(data)
        }
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        var consumed = 0
        for byte in buffer.readableBytesView {
            count += 1
            consumed += 1
            last = (last.1, last.2, byte)
            if byte == lf && (last.1 == lf || (last.1 == cr && last.0 == lf)) {
                done = true
                break
            }
            if count > limit { break }
        }
        if !done && count > limit {
            overflowed = true
            context.fireUserInboundEventTriggered(HeadTooLarge())
            return
        }
        if done, consumed < buffer.readableBytes,
           let rest = buffer.getSlice(at: buffer.readerIndex + consumed, length: buffer.readableBytes - consumed) {
            keep(rest)
        }
        context.fireChannelRead(data)
    }

    private func keep(_ bytes: ByteBuffer) {
        guard keeping else { return }
        guard (afterHead?.readableBytes ?? 0) + bytes.readableBytes <= Self.keptLimit else {
            keptTooMuch = true
            return stopKeeping()
        }
        var copy = bytes
        if afterHead == nil { afterHead = copy } else { afterHead!.writeBuffer(&copy) }
    }

    /// The request is not a tunnel (or was refused): nothing more is kept.
    func stopKeeping() {
        keeping = false
        afterHead = nil
    }

    /// The bytes after the head, for a tunnel; nil and false past `keptLimit`.
    func takeAfterHead() -> (bytes: ByteBuffer?, complete: Bool) {
        defer { stopKeeping() }
        return (afterHead, !keptTooMuch)
    }
}

/// The HTTP proxy front end: `CONNECT host:port` and absolute-form `http://` requests, one
/// request per client connection.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case head
        /// Deciding and connecting; parts that arrive meanwhile wait in `held`.
        case connecting
        /// Forwarding the request body of an absolute-form request.
        case forwarding(chunked: Bool)
        /// The request has ended (or was answered); everything else from the client is dropped.
        case done
    }

    private let services: ProxyServices
    private var state = State.head
    private var held: [HTTPServerRequestPart] = []
    private var headTimer: Scheduled<Void>?
    private var relay: RelayHandler?
    /// The client's FIN arrived while the upstream was being connected.
    private var clientEnded = false

    init(services: ProxyServices) {
        self.services = services
    }

    private var configuration: EgressConfiguration { services.configuration }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.handshakeTimeout) { [self] in
            guard case .head = state else { return }
            refuse(loopBound.value, .error, via: .http, status: .requestTimeout,
                   reason: "request head not complete within \(configuration.handshakeTimeout.seconds) s")
        }
        context.read()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .head:
            guard case .head(let head) = part else { return }
            headTimer?.cancel()
            begin(context, head)
        case .connecting:
            held.append(part)
        case .forwarding(let chunked):
            forward(context, part, chunked: chunked)
        case .done:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .head, .done: context.read()
        case .connecting, .forwarding: break
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HeadLimitHandler.HeadTooLarge {
            headTimer?.cancel()
            refuse(context, .error, via: .http, status: .requestHeaderFieldsTooLarge,
                   reason: "request head larger than \(configuration.maxHeadBytes) bytes")
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            // A client may shut its output once its request is sent (`printf … | nc -N`):
            // its answer still comes. Only a head cut short ends the connection here.
            switch state {
            case .head:
                headTimer?.cancel()
                state = .done
                context.close(promise: nil)
            case .connecting:
                clientEnded = true  // passed on once the upstream is there
            case .forwarding:
                context.fireUserInboundEventTriggered(event)
            case .done:
                if relay != nil { context.fireUserInboundEventTriggered(event) } else { context.close(promise: nil) }
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch state {
        case .head:
            headTimer?.cancel()
            refuse(context, .error, via: .http, status: .badRequest, reason: "malformed request: \(error)")
        case .connecting, .forwarding:
            context.close(promise: nil)
        case .done:
            break  // bytes after the request, or after a refusal: dropped
        }
    }

    // MARK: - The request

    private func begin(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let request: ParsedRequest
        switch ParsedRequest.parse(head) {
        case .success(let parsed): request = parsed
        case .failure(let problem):
            return refuse(context, .error, via: problem.via, host: problem.host, port: problem.port,
                          status: .badRequest, reason: problem.reason)
        }
        if !request.isConnect {
            (try? context.pipeline.syncOperations.handler(type: HeadLimitHandler.self))?.stopKeeping()
        }
        state = .connecting
        let upstreamRequest = UpstreamRequest(via: request.via, hostText: request.hostText, target: request.target,
                                              port: request.port)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        services.upstream.open(upstreamRequest, on: context.eventLoop).assumeIsolated().whenSuccess { [self] outcome in
            let context = loopBound.value
            let decision = outcome.decision(for: upstreamRequest)
            guard case .connected(let upstream, _, _) = outcome else {
                state = .done
                let status: HTTPResponseStatus
                switch outcome {
                case .denied: status = .forbidden
                case .connectFailed(.timedOut, _, _): status = .gatewayTimeout
                default: status = .badGateway
                }
                return refuse(context, decision, status: status)
            }
            guard context.channel.isActive else {
                upstream.close(promise: nil)
                return
            }
            services.log.record(decision)
            if request.isConnect {
                startTunnel(context, upstream)
            } else {
                startForwarding(context, upstream, request)
            }
        }
    }

    private func startTunnel(_ context: ChannelHandlerContext, _ upstream: Channel) {
        state = .done
        let channel = context.channel
        let pipeline = channel.pipeline.syncOperations
        // The bytes past the CONNECT head come from the head limit's copy; the decoder,
        // removed below, drops what it holds (its left-over strategy is `.dropBytes`).
        let limit = try? pipeline.handler(type: HeadLimitHandler.self)
        let (early, complete) = limit?.takeAfterHead() ?? (nil, true)
        guard complete else {
            // More than a megabyte sent before the 200 (and a FIN, or NIO would not have
            // read it): no tunnel needs that; the connection ends without a reply.
            channel.close(promise: nil)
            upstream.close(promise: nil)
            return
        }
        let reply = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(
            string: "HTTP/1.1 200 Connection Established\r\n\r\n")))
        let starter = TunnelStarter(services: services, upstream: upstream, early: early, clientEnded: clientEnded,
                                    reply: reply)
        do {
            try pipeline.addHandler(starter)
        } catch {
            channel.close(promise: nil)
            upstream.close(promise: nil)
            return
        }
        if let limit { pipeline.removeHandler(limit, promise: nil) }
        pipeline.removeHandler(context: context, promise: nil)
        if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            pipeline.removeHandler(decoder, promise: nil)
        }
        starter.begin()
    }

    private func startForwarding(_ context: ChannelHandlerContext, _ upstream: Channel, _ request: ParsedRequest) {
        let chunked = request.head.headers.contains(name: "transfer-encoding")
        relay = startRelay(client: context.channel, upstream: upstream, idleTimeout: configuration.idleTimeout,
                           maxDuration: configuration.maxDuration,
                           early: context.channel.allocator.buffer(string: request.upstreamHead(chunked: chunked)))
        state = .forwarding(chunked: chunked)
        let parts = held
        held = []
        for part in parts {
            guard case .forwarding = state else { break }
            forward(context, part, chunked: chunked)
        }
        context.fireChannelReadComplete()
        if clientEnded { relay?.inputEndedBeforeStart() }
    }

    /// One part of the request body, to the relay (which writes it upstream). After the
    /// request's end nothing more from the client goes anywhere: a pipelined second request
    /// could name another virtual host on the same address.
    private func forward(_ context: ChannelHandlerContext, _ part: HTTPServerRequestPart, chunked: Bool) {
        switch part {
        case .head:
            break
        case .body(let body):
            guard body.readableBytes > 0 else { return }
            if chunked {
                var framed = context.channel.allocator.buffer(capacity: body.readableBytes + 16)
                framed.writeString(String(body.readableBytes, radix: 16) + "\r\n")
                framed.writeImmutableBuffer(body)
                framed.writeString("\r\n")
                context.fireChannelRead(wrapInboundOut(framed))
            } else {
                context.fireChannelRead(wrapInboundOut(body))
            }
        case .end:
            if chunked { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(string: "0\r\n\r\n"))) }
            state = .done
            relay?.requestEnded()
        }
    }

    // MARK: - Refusals

    private func refuse(_ context: ChannelHandlerContext, _ outcome: Decision.Outcome, via: Decision.Via,
                        host: String? = nil, port: UInt16 = 0, status: HTTPResponseStatus, reason: String) {
        refuse(context, Decision(outcome, via: via, host: host, port: port, reason: reason), status: status)
    }

    /// Records the decision and answers with `status` and a one-line body the agent can read.
    private func refuse(_ context: ChannelHandlerContext, _ decision: Decision, status: HTTPResponseStatus) {
        state = .done
        (try? context.pipeline.syncOperations.handler(type: HeadLimitHandler.self))?.stopKeeping()
        services.log.record(decision)
        let body = "corral: \(Decision.escape(decision.reason ?? status.reasonPhrase))\n"
        let response = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + body
        answerAndClose(context, context.channel.allocator.buffer(string: response))
    }
}

extension TimeAmount {
    var seconds: Int64 { nanoseconds / 1_000_000_000 }
}
