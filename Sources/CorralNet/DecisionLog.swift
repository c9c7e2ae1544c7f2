#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore

/// The control channel to the supervisor: decision lines out, end-of-file in.
///
/// The proxy never waits for the supervisor: lines queue in NIO's write buffer up to
/// `limit` bytes; past that they are counted and dropped, and once the queue has drained
/// one `dropped\t<count>` line says how many were lost.
final class DecisionLog: Sendable {
    private struct State {
        var queued = 0
        var dropped = 0
        var channel: Channel?
    }

    private let state = NIOLockedValueBox(State())
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func attach(_ channel: Channel) {
        state.withLockedValue { $0.channel = channel }
    }

    func record(_ decision: Decision) {
        write(decision.line, countsAsDecision: true)
    }

    private func write(_ line: String, countsAsDecision: Bool) {
        let size = line.utf8.count
        let channel: Channel? = state.withLockedValue { state in
            guard let channel = state.channel else { return nil }
            if state.queued + size > limit {
                if countsAsDecision { state.dropped += 1 }
                return nil
            }
            state.queued += size
            return channel
        }
        guard let channel else { return }
        let buffer = channel.allocator.buffer(string: line)
        channel.writeAndFlush(buffer).whenComplete { [self] _ in
            let dropped: Int = state.withLockedValue { state in
                state.queued -= size
                guard state.dropped > 0, state.queued == 0 else { return 0 }
                defer { state.dropped = 0 }
                return state.dropped
            }
            if dropped > 0 { write(Decision.droppedLine(dropped), countsAsDecision: false) }
        }
    }
}

/// Discards what the supervisor sends; its end-of-file (or any error) closes the channel,
/// which stops the proxy — or, with `exitProcessAtEnd`, flushes the queued decision lines
/// and ends the process at once (at most a second later, flushed or not).
final class ControlHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let exitProcessAtEnd: Bool

    init(exitProcessAtEnd: Bool) {
        self.exitProcessAtEnd = exitProcessAtEnd
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, exitProcessAtEnd {
            end(context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if exitProcessAtEnd { _exit(0) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if exitProcessAtEnd { _exit(0) }
        context.close(promise: nil)
    }

    /// Writes are flushed in order: once an empty write after them completes, every line
    /// queued before has reached the socket.
    private func end(_ context: ChannelHandlerContext) {
        context.eventLoop.scheduleTask(in: .seconds(1)) { _exit(0) }
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in _exit(0) }
    }
}
