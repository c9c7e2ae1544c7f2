#if canImport(Glibc)
import Glibc
#endif
import CCorralLaunch
import NIOCore

/// Takes an established tunnel (CONNECT, SOCKS5 or forward: the upstream connected, the
/// decision recorded) from its front end to the relay, in order:
///
/// 1. every byte already read from the client (past the CONNECT head or the SOCKS5
///    request, or sent before the upstream was there) is written upstream, every byte
///    already read from the upstream is written to the client, and the reply (200, SOCKS5
///    success) too, each until NIO has handed it to the kernel;
/// 2. both sockets leave NIO for a `SpliceWorker` (`ProxyServices.splice`), which relays
///    them with splice(2): no byte is copied through user space;
/// 3. or, when that cannot be done (splicing off, no descriptor left for the pipes), the
///    NIO relay (`startRelay`) takes over in place.
///
/// The front end adds this handler at the end of the client's pipeline (it adds its
/// partner, `UpstreamHold`, to the upstream's), removes itself (and the HTTP decoder, whose
/// leftover bytes then pass through here), and calls `begin`. Until the hand-over, bytes
/// and FINs that NIO reads are collected here: NIO watches an active channel for a FIN
/// even with autoRead off, and at one reads everything there is.
final class TunnelStarter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let services: ProxyServices
    private let upstream: Channel
    private var toUpstream: ByteBuffer?
    private var toClient: ByteBuffer?
    private var reply: EventLoopFuture<Void>?
    private var clientEnded: Bool
    private var upstreamEnded = false
    private var context: ChannelHandlerContext?
    private var hold: UpstreamHold?
    private var begun = false
    private var waiting = false
    private var done = false
    private var timer: Scheduled<Void>?

    init(services: ProxyServices, upstream: Channel, early: ByteBuffer?, clientEnded: Bool,
         reply: EventLoopFuture<Void>?) {
        self.services = services
        self.upstream = upstream
        self.toUpstream = early
        self.clientEnded = clientEnded
        self.reply = reply
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let hold = UpstreamHold(starter: self)
        do {
            try upstream.pipeline.syncOperations.addHandler(hold)
            self.hold = hold
        } catch {
            abandon()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Takes the place of the handshake handler at `context` (forwards, SOCKS5) and begins
    /// the hand-over; when the pipeline refuses the starter, both channels are closed.
    func takeOver(from context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(self)
        } catch {
            context.close(promise: nil)
            upstream.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        begin()
    }

    func begin() {
        guard let context, !begun, !done else { return }
        begun = true
        // Nothing moves until the hand-over is done: a peer that reads nothing (neither
        // the reply nor the early bytes) holds the connection no longer than the idle
        // timeout, as it would in the relay.
        let channel = context.channel, upstream = self.upstream
        timer = context.eventLoop.scheduleTask(in: services.configuration.idleTimeout) {
            channel.close(promise: nil)
            upstream.close(promise: nil)
        }
        step()
    }

    // MARK: - Channel events, the client's here and the upstream's from `UpstreamHold`

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if toUpstream == nil { toUpstream = bytes } else { toUpstream!.writeBuffer(&bytes) }
        if begun && !waiting { step() }
    }

    fileprivate func upstreamRead(_ data: ByteBuffer) {
        var bytes = data
        if toClient == nil { toClient = bytes } else { toClient!.writeBuffer(&bytes) }
        if begun && !waiting { step() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            clientEnded = true  // the socket keeps its end-of-file: a splice reads it again
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    fileprivate func upstreamInputEnded() {
        upstreamEnded = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { abandon() }
        context.fireChannelInactive()
    }

    fileprivate func upstreamInactive() {
        if !done { abandon() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        abandon()
    }

    // MARK: - The hand-over

    private func step() {
        guard let context, !done else { return }
        guard context.channel.isActive, upstream.isActive else { return abandon() }
        if let bytes = toUpstream, bytes.readableBytes > 0 {
            toUpstream = nil
            wait(for: upstream.writeAndFlush(bytes))
        } else if let bytes = toClient, bytes.readableBytes > 0 {
            toClient = nil
            wait(for: context.channel.writeAndFlush(bytes))
        } else if let reply {
            self.reply = nil
            wait(for: reply)
        } else {
            done = true
            timer?.cancel()
            if !services.splice(client: context.channel, upstream: upstream) { relayInNIO(context) }
        }
    }

    private func wait(for write: EventLoopFuture<Void>) {
        waiting = true
        write.assumeIsolated().whenComplete { [self] result in
            waiting = false
            guard case .success = result else { return abandon() }
            step()
        }
    }

    private func abandon() {
        done = true
        timer?.cancel()
        context?.close(promise: nil)
        upstream.close(promise: nil)
    }

    private func relayInNIO(_ context: ChannelHandlerContext) {
        let channel = context.channel
        if let hold { upstream.pipeline.syncOperations.removeHandler(hold, promise: nil) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        let relay = startRelay(client: channel, upstream: upstream, idleTimeout: services.configuration.idleTimeout,
                               maxDuration: services.configuration.maxDuration)
        if clientEnded { relay.inputEndedBeforeStart() }
        if upstreamEnded { relay.partnerInputEndedBeforeStart() }
    }
}

/// `TunnelStarter`'s eyes on the upstream's channel until the hand-over (same event loop).
final class UpstreamHold: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private weak var starter: TunnelStarter?

    init(starter: TunnelStarter) {
        self.starter = starter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        starter?.upstreamRead(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { starter?.upstreamInputEnded() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        starter?.upstreamInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

extension ProxyServices {
    /// Moves an established tunnel out of NIO: descriptors of its own for both sockets,
    /// both NIO channels closed (which closes only NIO's descriptors: no FIN, no reset),
    /// a pipe each way, and the tunnel to a splice worker. The client's connection keeps
    /// its place under `maxConnections` until the tunnel ends. Returns false, with both
    /// channels untouched, when splicing is off, `spliceMaxTunnels` are spliced already,
    /// or a descriptor or pipe cannot be had.
    func splice(client: Channel, upstream: Channel) -> Bool {
        guard let splicer, splicer.reserveTunnel() else { return false }
        guard let clientFD = ChannelDescriptor.duplicate(client) else {
            splicer.releaseTunnel()
            return false
        }
        guard let upstreamFD = ChannelDescriptor.duplicate(upstream) else {
            close(clientFD)
            splicer.releaseTunnel()
            return false
        }
        guard let tunnel = SpliceTunnel.make(client: clientFD, upstream: upstreamFD, budget: splicer.pipeBudget,
                                             idleTimeout: configuration.idleTimeout,
                                             maxDuration: configuration.maxDuration,
                                             onEnd: { [self] in
                                                 splicer.releaseTunnel()
                                                 releaseTunnelSlot()
                                             }) else {
            close(clientFD)
            close(upstreamFD)
            splicer.releaseTunnel()
            return false
        }
        holdTunnelSlot()
        // Synchronous on the loop: NIO removes its descriptors from its epoll set and closes
        // them before the worker sees the sockets, so NIO can never read from them again.
        client.close(promise: nil)
        upstream.close(promise: nil)
        splicer.relay(tunnel)
        return true
    }
}

/// A descriptor of one's own for a NIO socket channel's socket.
///
/// NIO has no API that hands out a channel's descriptor. Its description names it
/// (`SocketChannel { BaseSocket { fd=12 }, … }`): that number is only a candidate, which
/// the kernel confirms. The socket's cookie (SO_COOKIE, unique among all sockets of this
/// boot, across network namespaces), read through NIO's public socket-option API from the
/// channel's own socket, must equal the candidate's. Should NIO ever describe its channels
/// otherwise, nothing is confused: the tunnel stays with the NIO relay (and the tests that
/// count spliced tunnels fail). No /proc (which the proxy's Landlock rule forbids) and no
/// scan of the descriptor table.
enum ChannelDescriptor {
    /// A close-on-exec duplicate of `channel`'s socket descriptor, or nil. On the channel's
    /// event loop (so NIO cannot close it meanwhile).
    static func duplicate(_ channel: Channel) -> CInt? {
        channel.eventLoop.preconditionInEventLoop()
        guard let cookie = cookie(of: channel), let candidate = candidate(in: String(describing: channel)) else {
            return nil
        }
        var found: UInt64 = 0
        guard corral_socket_cookie(candidate, &found) == 0, found == cookie else { return nil }
        let copy = corral_dup_cloexec(candidate)
        return copy >= 0 ? copy : nil
    }

    /// The socket's cookie, through NIO: on the loop the future is complete at once.
    private static func cookie(of channel: Channel) -> UInt64? {
        guard let provider = channel as? SocketOptionProvider else { return nil }
        var cookie: UInt64?
        let future: EventLoopFuture<UInt64> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                                                             name: corral_SO_COOKIE)
        future.assumeIsolated().whenSuccess { cookie = $0 }
        return cookie
    }

    /// The number after the first `fd=` in `description`.
    static func candidate(in description: String) -> CInt? {
        guard let range = description.firstRange(of: "fd=") else { return nil }
        let digits = description[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
        return CInt(digits)
    }
}
