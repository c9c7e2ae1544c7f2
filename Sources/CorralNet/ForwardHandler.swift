import NIOCore

/// A forward listener's front end: every connection goes to the forward's fixed target,
/// resolved and checked like a proxy request (its implied entry stands in for the allow
/// list); on any failure the client's connection is closed.
final class ForwardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let services: ProxyServices
    private let forward: EgressConfiguration.Forward

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
            startRelay(client: context.channel, upstream: upstream, idleTimeout: services.configuration.idleTimeout,
                       maxDuration: services.configuration.maxDuration)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Nothing is read before the relay starts (autoRead is off until then).
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
