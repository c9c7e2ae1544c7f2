import NIOCore

/// One side of a relayed connection. Two of these, one in each channel's pipeline (both on
/// the same event loop), copy bytes between the client and the upstream:
///
/// - Backpressure: a side reads only while the other side is writable; a read asked for
///   (by autoRead) while it is not waits for the other side's writability to come back.
/// - Half-close: a FIN on one side shuts the other side's output once its queued bytes
///   are written; a channel closes when it has seen its peer's FIN and its own output is
///   done. When either channel closes, the other closes too.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var sawEndOfInput = false
    fileprivate var outputDone = false
    /// Whether this side's end of input shuts the partner's output.
    private var forwardsEndOfInput = true

    /// Called on the client's side by the HTTP front end once the one request is complete:
    /// nothing more goes upstream, so the upstream closes at its own FIN, and a client's FIN
    /// after this is not forwarded (some servers abort a response when they see one).
    func requestEnded() {
        forwardsEndOfInput = false
        partner?.outputDone = true
    }

    /// The peer's FIN came before the relay started (NIO reads everything there is when it
    /// sees a FIN, even with autoRead off): the front end kept those bytes as `early`, and
    /// this ends the partner's output after them.
    func inputEndedBeforeStart() {
        guard !sawEndOfInput else { return }
        sawEndOfInput = true
        if forwardsEndOfInput { partner?.partnerInputEnded() }
        closeIfFinished()
    }

    /// As `inputEndedBeforeStart`, for the partner's (the upstream's) peer.
    func partnerInputEndedBeforeStart() {
        partner?.inputEndedBeforeStart()
    }

    private init() {}

    /// The client's and the upstream's handler, joined.
    static func pair() -> (client: RelayHandler, upstream: RelayHandler) {
        let client = RelayHandler()
        let upstream = RelayHandler()
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    // MARK: - Partner calls

    private func partnerWrite(_ data: ByteBuffer) {
        guard let context else { return }
        context.write(wrapOutboundOut(data), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    private func partnerInputEnded() {
        shutOutput()
    }

    /// The partner's channel closed. After an orderly end (it had seen its FIN and written
    /// everything) this side writes what is queued, then closes; otherwise (reset, error,
    /// timeout) it closes at once.
    private func partnerClosed(orderly: Bool) {
        guard let context else { return }
        guard orderly, !outputDone else {
            context.close(promise: nil)
            return
        }
        closeAfterOutput = true
        shutOutput()
    }

    private var outputClosing = false
    private var closeAfterOutput = false

    /// Shuts the output once the queued writes are out (NIO's `close(mode: .output)` waits
    /// for them; a full close would drop them).
    private func shutOutput() {
        guard !outputClosing, let context else { return }
        outputClosing = true
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { [self] _ in
            outputDone = true
            closeIfFinished()
            guard closeAfterOutput, !sawEndOfInput, let context = self.context else { return }
            // The partner is gone: wait (reading and dropping) for this peer's FIN, briefly,
            // since closing with unread input sends a reset that can destroy the last bytes.
            let channel = context.channel
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    private var closingInOrder = false

    private func closeIfFinished() {
        guard sawEndOfInput && outputDone, let context else { return }
        closingInOrder = true
        context.close(promise: nil)
    }

    // MARK: - Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closeAfterOutput else { return }
        partner?.partnerWrite(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func read(context: ChannelHandlerContext) {
        if closeAfterOutput || partner?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            guard !sawEndOfInput else { return }
            sawEndOfInput = true
            if forwardsEndOfInput { partner?.partnerInputEnded() }
            closeIfFinished()
        } else if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClosed(orderly: closingInOrder)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Starts relaying between an accepted client and a connected upstream (both on one event
/// loop): relay handlers at the end of both pipelines, the idle timer on the client (every
/// byte either way passes the client channel), the lifetime limit, then reading.
/// Bytes a front end already read past its handshake go out in `early`.
@discardableResult
func startRelay(client: Channel, upstream: Channel, idleTimeout: TimeAmount, maxDuration: TimeAmount,
                early: ByteBuffer? = nil) -> RelayHandler {
    client.eventLoop.assertInEventLoop()
    let (clientSide, upstreamSide) = RelayHandler.pair()
    guard client.isActive, upstream.isActive else {
        client.close(promise: nil)
        upstream.close(promise: nil)
        return clientSide
    }
    do {
        try client.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout), position: .first)
        try client.pipeline.syncOperations.addHandler(clientSide)
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)
    } catch {
        client.close(promise: nil)
        upstream.close(promise: nil)
        return clientSide
    }
    let lifetime = client.eventLoop.scheduleTask(in: maxDuration) {
        client.close(promise: nil)
        upstream.close(promise: nil)
    }
    client.closeFuture.whenComplete { _ in lifetime.cancel() }
    if let early, early.readableBytes > 0 { upstream.writeAndFlush(early, promise: nil) }
    // With autoRead on, NIO asks for the next read through the pipeline after each read
    // completes, and `RelayHandler.read` holds it while the other side is not writable.
    // Reads of up to 1 MiB (NIO's default stops at 64 KiB): fewer system calls per byte
    // relayed; the buffer shrinks again on connections that carry little.
    let allocator = AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 * 1024, maximum: 1 << 20)
    _ = client.setOption(.recvAllocator, value: allocator)
    _ = upstream.setOption(.recvAllocator, value: allocator)
    _ = client.setOption(.autoRead, value: true)
    _ = upstream.setOption(.autoRead, value: true)
    return clientSide
}
