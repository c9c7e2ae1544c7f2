import NIOConcurrencyHelpers
import NIOCore

/// What every front end shares: the configuration, the way upstream, the decision log,
/// the splice workers (nil: tunnels stay with the NIO relay) and the count of open client
/// connections.
final class ProxyServices: Sendable {
    let configuration: EgressConfiguration
    let upstream: Upstream
    let log: DecisionLog
    let splicer: Splicer?
    private struct Clients {
        var admitted = 0
        var channels: [ObjectIdentifier: Channel] = [:]
    }

    private let clients = NIOLockedValueBox(Clients())

    init(configuration: EgressConfiguration, upstream: Upstream, log: DecisionLog, splicer: Splicer?) {
        self.configuration = configuration
        self.upstream = upstream
        self.log = log
        self.splicer = splicer
    }

    /// Counts a new client connection in; false (and not counted) past the cap. Every
    /// accepted channel is remembered until it closes, so that `closeAll` can end it.
    func admit(_ channel: Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let admitted = clients.withLockedValue { clients in
            clients.channels[key] = channel
            guard clients.admitted < configuration.maxConnections else { return false }
            clients.admitted += 1
            return true
        }
        channel.closeFuture.whenComplete { [self] _ in
            clients.withLockedValue { clients in
                clients.channels[key] = nil
                if admitted { clients.admitted -= 1 }
            }
        }
        return admitted
    }

    var openConnections: Int { clients.withLockedValue { $0.admitted } }

    /// A client connection whose tunnel leaves NIO for a splice worker keeps its place:
    /// taken here before its channel closes, given back by `releaseTunnelSlot` when the
    /// tunnel ends.
    func holdTunnelSlot() {
        clients.withLockedValue { $0.admitted += 1 }
    }

    func releaseTunnelSlot() {
        clients.withLockedValue { $0.admitted -= 1 }
    }

    /// Closes every client connection (their relays close the upstream side), then every
    /// spliced tunnel, and ends the splice workers.
    func closeAll(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let channels = clients.withLockedValue { Array($0.channels.values) }
        return EventLoopFuture.andAllComplete(channels.map { $0.close() }, on: eventLoop).map { [splicer] in
            splicer?.stop()
        }
    }
}

/// Ends a refused client connection without losing the answer: the answer is written, the
/// output shut (FIN after the answer), and what the client still sends is read and
/// discarded until its FIN or `linger` (closing with unread input would send a reset,
/// which can destroy the answer before the client reads it).
func answerAndClose(_ context: ChannelHandlerContext, _ answer: ByteBuffer?, linger: TimeAmount = .seconds(2)) {
    let channel = context.channel
    if let answer { context.write(NIOAny(answer), promise: nil) }
    context.flush()
    context.close(mode: .output, promise: nil)
    let timer = context.eventLoop.scheduleTask(in: linger) { channel.close(promise: nil) }
    channel.closeFuture.whenComplete { _ in timer.cancel() }
    _ = channel.setOption(.autoRead, value: true)
}

/// Installed instead of a front end on a connection past `--max-connections`.
final class OverCapacityHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let answer: [UInt8]

    init(answer: [UInt8]) {
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        answerAndClose(context, context.channel.allocator.buffer(bytes: answer))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
