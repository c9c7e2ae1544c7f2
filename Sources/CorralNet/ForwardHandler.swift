import NIOCore

/// A forward listener's front end: every connection goes to the forward's fixed target,
/// resolved and checked like a proxy request (its implied entry stands in for the allow
/// list); on any failure the client's connection is closed.
final class ForwardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let services: ProxyServices
    private let forward: EgressConfiguration.Forward
    /// What the client sent before the upstream was connected: NIO reads it all when the
    /// client half-closes early (a client that sends a request and shuts its output).
    private var early: ByteBuffer?
    private var clientEnded = false
    /// More early bytes than this closes the connection (the upstream is not there yet).
    static let earlyLimit = 1 << 20

    init(services: ProxyServices, forward: EgressConfiguration.Forward) {
        self.services = services
        self.forward = forward
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        let request = UpstreamRequest(via: .forward, hostText: forward.host.description, target: forward.target,
                                      port: forward.port, presetEntry: forward.entry)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        services.upstream.open(request, on: context.eventLoop).assumeIsolated().whenSuccess { [self] outcome in
            let context = loopBound.value
            services.log.record(outcome.decision(for: request))
            guard case .connected(let upstream, _, _) = outcome, context.channel.isActive else {
                if case .connected(let upstream, _, _) = outcome { upstream.close(promise: nil) }
                return answerAndClose(context, nil)
            }
            let starter = TunnelStarter(services: services, upstream: upstream, early: early,
                                        clientEnded: clientEnded, reply: nil)
            early = nil
            starter.takeOver(from: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only at an early FIN (autoRead is off until the relay starts): kept for upstream.
        var bytes = unwrapInboundIn(data)
        if early == nil { early = bytes } else { early!.writeBuffer(&bytes) }
        if early!.readableBytes > Self.earlyLimit { context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            clientEnded = true  // passed on to the upstream once connected
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
