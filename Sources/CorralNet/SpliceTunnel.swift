#if canImport(Glibc)
import Glibc
#endif
import CCorralLaunch
import NIOCore
import Synchronization

/// One direction of a spliced tunnel: bytes from `source` go into a pipe with splice(2)
/// (socket → pipe) and on to `sink` (pipe → socket). No byte passes through user space;
/// the kernel hands on references to the pages that hold the data where it can.
///
/// Kernel behaviour this relies on (splice(2), tcp_splice_read, splice_to_pipe):
/// - From a socket, `-EAGAIN` means either "no data" or "the pipe has no free slot". A
///   pipe's capacity counts slots (pages), and a socket's data can fill a slot with a few
///   bytes, so the pipe may be full well below `capacity` bytes. The flow tells the two
///   apart by what it left in the pipe: with the pipe empty, `-EAGAIN` means the socket is
///   drained; otherwise the pipe is emptied into the sink first and the read retried.
/// - From a socket, 0 means its peer's FIN, and only once every byte before it has been
///   read; it stays so (the socket's RCV_SHUTDOWN state), so a FIN that NIO saw before
///   the hand-over is seen again here.
/// - Into a socket, `-EAGAIN` means its send buffer is full: the flow waits for the
///   sink's EPOLLOUT edge (the failed send set SOCK_NOSPACE, which makes the kernel report
///   the space once it frees).
/// - `-EPIPE` or `-ECONNRESET` (a reset, or a peer gone) ends the whole tunnel.
///
/// A pump stops after `limit` bytes have entered the pipe, even with more waiting: a stream
/// whose source always has data and whose sink always has room would otherwise keep its
/// worker's thread for good (see `SpliceWorker`). No new edge comes for what it left, so the
/// worker pumps it again on its next turn (`stoppedAtLimit`).
///
/// Pipes start at the kernel's default size (16 pages). A flow that fills its pipe in one
/// splice carries more than the pipe holds: its pipe grows (`PipeBudget.target`) while the
/// proxy's budget lasts, which means fewer splices and wake-ups per byte.
struct SpliceFlow {
    let source: CInt
    let sink: CInt
    /// The pipe's read and write ends.
    let pipe: (read: CInt, write: CInt)
    /// The pipe's size in bytes (F_GETPIPE_SZ).
    private(set) var capacity: Int
    private let budget: PipeBudget?
    /// Pipe bytes beyond the default, held from `budget` until the tunnel closes.
    private(set) var reserved = 0
    /// False once the pipe has grown, or the kernel refused (EPERM: past the user's
    /// pipe-user-pages-soft or pipe-max-size).
    private var mayGrow = true
    /// Bytes in the pipe, spliced in and not yet out.
    private(set) var buffered = 0
    /// The source's FIN has been read.
    private(set) var sourceEnded = false
    /// Everything up to the source's FIN is in the sink, and the sink's output is shut.
    private(set) var isFinished = false
    /// The last pump stopped at its limit, not because the source was drained or the sink
    /// full: there may be more to move, and edge-triggered epoll will not say so.
    private(set) var stoppedAtLimit = false

    init(source: CInt, sink: CInt, pipe: (read: CInt, write: CInt), capacity: Int, budget: PipeBudget?) {
        self.source = source
        self.sink = sink
        self.pipe = pipe
        self.capacity = capacity
        self.budget = budget
    }

    /// Moves what can move now, until the source is drained, the sink is full or `limit`
    /// bytes have entered the pipe, and passes the FIN on once the pipe is empty behind it.
    /// Returns the bytes that entered the pipe or left it (any of them counts as activity),
    /// or the errno that ends the tunnel.
    mutating func pump(limit: Int = .max) -> Result<Int, SpliceFailure> {
        var moved = 0
        var taken = 0
        stoppedAtLimit = false
        while !isFinished {
            if taken >= limit {
                stoppedAtLimit = true
                break
            }
            var progressed = false
            if !sourceEnded && buffered < capacity {
                let request = capacity - buffered
                let n = corral_splice(source, pipe.write, request)
                if n > 0 {
                    buffered += n
                    moved += n
                    taken += n
                    progressed = true
                    if n == request && mayGrow { grow() }
                } else if n == 0 {
                    sourceEnded = true
                    progressed = true
                } else if n == -Int(EAGAIN) {
                    if buffered == 0 { break }  // the source is drained: wait for EPOLLIN
                } else {
                    return .failure(SpliceFailure(errno: CInt(-n), operation: "splice from a socket"))
                }
            }
            if buffered > 0 {
                let n = corral_splice(pipe.read, sink, buffered)
                if n > 0 {
                    buffered -= n
                    moved += n
                    progressed = true
                } else if n == -Int(EAGAIN) {
                    break  // the sink is full: wait for EPOLLOUT
                } else {
                    return .failure(SpliceFailure(errno: n == 0 ? EPIPE : CInt(-n), operation: "splice to a socket"))
                }
            }
            if sourceEnded && buffered == 0 {
                let rc = corral_shutdown_output(sink)
                // ENOTCONN: the sink's peer is gone already; the tunnel ends all the same.
                guard rc == 0 || rc == -ENOTCONN else {
                    return .failure(SpliceFailure(errno: -rc, operation: "shutdown"))
                }
                isFinished = true
            }
            if !progressed { break }
        }
        return .success(moved)
    }

    private mutating func grow() {
        guard let budget, budget.target > capacity else {
            mayGrow = false
            return
        }
        let extra = budget.target - capacity
        guard budget.reserve(extra) else { return }  // maybe later, once others gave back
        let size = Int(corral_pipe_resize(pipe.write, CInt(budget.target)))
        mayGrow = false
        guard size > capacity else { return budget.release(extra) }
        budget.release(extra - (size - capacity))  // the kernel may round up or down
        reserved += size - capacity
        capacity = size
    }

    /// Gives the grown part of the pipe back to the budget (the tunnel is closing).
    mutating func releaseReserve() {
        budget?.release(reserved)
        reserved = 0
    }
}

/// How much pipe capacity beyond the kernel's default all spliced tunnels of the proxy may
/// hold at once. Pipe pages count against the user's pipe-user-pages-soft (16,384 pages by
/// default, for every process of that user without CAP_SYS_RESOURCE); past it, the kernel
/// gives new pipes two pages. A busy tunnel's pipe grows to `target` bytes; the budget
/// keeps the proxy well below that limit, and bounds the memory that data in flight can
/// pin to the `total` it is given plus the default pipes.
final class PipeBudget: Sendable {
    let target: Int
    private let remaining: Atomic<Int>

    init(target: Int, total: Int) {
        self.target = target
        self.remaining = Atomic(total)
    }

    func reserve(_ bytes: Int) -> Bool {
        var current = remaining.load(ordering: .relaxed)
        while current >= bytes {
            let (exchanged, original) = remaining.compareExchange(expected: current, desired: current - bytes,
                                                                  ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives `bytes` back (negative: takes them, when the kernel rounded a size up).
    func release(_ bytes: Int) {
        remaining.add(bytes, ordering: .relaxed)
    }

    var available: Int { remaining.load(ordering: .relaxed) }
}

/// Why a spliced tunnel ended early (a reset, a peer gone): for tests and debugging; the
/// tunnel is closed either way, as the NIO relay closes both channels on an error. Also
/// why the splice workers could not start.
struct SpliceFailure: Error, Equatable, CustomStringConvertible {
    var errno: CInt
    var operation: String

    var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

/// An established tunnel relayed by splice(2): the client's and the upstream's sockets
/// (descriptors of its own, see `TunnelStarter`), a pipe each way, and the limits of a
/// relayed connection.
final class SpliceTunnel: @unchecked Sendable {
    // @unchecked: made on an event loop and handed (through a Mutex) to one `SpliceWorker`,
    // whose thread alone uses it from then on.
    let client: CInt
    let upstream: CInt
    private(set) var toUpstream: SpliceFlow
    private(set) var toClient: SpliceFlow
    /// When a byte last moved either way (or the tunnel started).
    private(set) var lastActivity: NIODeadline
    /// The connection's maximum lifetime ends here.
    let deadline: NIODeadline
    let idleTimeout: TimeAmount
    private var onEnd: (@Sendable () -> Void)?

    /// Makes the pipes. Returns nil when a pipe cannot be made (EMFILE, ENFILE): the caller
    /// keeps the sockets and relays through NIO instead. The tunnel owns `client` and
    /// `upstream` only once made.
    static func make(client: CInt, upstream: CInt, budget: PipeBudget?, idleTimeout: TimeAmount,
                     maxDuration: TimeAmount, onEnd: @escaping @Sendable () -> Void) -> SpliceTunnel? {
        var up: [CInt] = [-1, -1], down: [CInt] = [-1, -1]
        let upCapacity = corral_splice_pipe(&up)
        guard upCapacity > 0 else { return nil }
        let downCapacity = corral_splice_pipe(&down)
        guard downCapacity > 0 else {
            Glibc.close(up[0])
            Glibc.close(up[1])
            return nil
        }
        let now = NIODeadline.now()
        return SpliceTunnel(
            client: client, upstream: upstream,
            toUpstream: SpliceFlow(source: client, sink: upstream, pipe: (up[0], up[1]), capacity: Int(upCapacity),
                                   budget: budget),
            toClient: SpliceFlow(source: upstream, sink: client, pipe: (down[0], down[1]),
                                 capacity: Int(downCapacity), budget: budget),
            start: now, deadline: now + maxDuration, idleTimeout: idleTimeout, onEnd: onEnd)
    }

    private init(client: CInt, upstream: CInt, toUpstream: SpliceFlow, toClient: SpliceFlow, start: NIODeadline,
                 deadline: NIODeadline, idleTimeout: TimeAmount, onEnd: @escaping @Sendable () -> Void) {
        self.client = client
        self.upstream = upstream
        self.toUpstream = toUpstream
        self.toClient = toClient
        self.lastActivity = start
        self.deadline = deadline
        self.idleTimeout = idleTimeout
        self.onEnd = onEnd
    }

    /// Both directions have passed their FIN on: the tunnel is done.
    var isFinished: Bool { toUpstream.isFinished && toClient.isFinished }

    /// Why the tunnel ended early (set by `pump`), for tests and debugging; nil after an
    /// orderly end or a timeout.
    private(set) var failure: SpliceFailure?

    /// A direction stopped at its per-turn limit with more, maybe, to move: the worker
    /// pumps the tunnel again on its next turn without waiting for an event.
    var needsAnotherTurn: Bool { toUpstream.stoppedAtLimit || toClient.stoppedAtLimit }

    /// When the idle timeout or the lifetime ends the tunnel, whichever comes first.
    var expiry: NIODeadline { min(lastActivity + idleTimeout, deadline) }

    /// Bytes each direction may take in from its source in one `pump`: enough that a busy
    /// tunnel pays one more epoll_wait per MiB at most, small enough that the other
    /// tunnels of its worker and the timers wait for no more than two such moves of page
    /// references.
    static let turnLimit = 1 << 20

    /// Pumps both directions (an event on either socket can unblock either: readable
    /// input, or room for output), each up to `limit` bytes. `clientEvents` and
    /// `upstreamEvents` are the epoll bits reported for each socket (0 when none was,
    /// as on the worker's extra turns). Returns false when the tunnel has ended, by FINs both
    /// ways or by a failure; the caller then closes it.
    ///
    /// The event bits matter once a direction has ended: its flow never touches its source
    /// again, so a reset there would go unnoticed until the idle timeout (a client that
    /// sent its request and its FIN, then died while the upstream was still silent).
    /// - EPOLLERR: the socket has a pending error (a reset, or the kernel gave up
    ///   retransmitting). The connection is over; the tunnel ends at once.
    /// - EPOLLHUP: both directions of the socket are shut (RCV_SHUTDOWN and
    ///   SEND_SHUTDOWN) or it is closed. Its output is shut by the tunnel only once the
    ///   other direction has finished, which makes the tunnel finished too; so a hang-up
    ///   on an unfinished tunnel, once the socket's input has been read to its end, means
    ///   nothing can be sent to that peer any more. Before its input is read to the end,
    ///   the pump goes on: bytes that came before the end are still delivered.
    /// - EPOLLRDHUP alone is the peer's FIN: a half-close, which the flows pass on; it
    ///   ends nothing.
    func pump(now: NIODeadline, clientEvents: UInt32 = 0, upstreamEvents: UInt32 = 0,
              limit: Int = SpliceTunnel.turnLimit) -> Bool {
        if let error = Self.pendingError(client, clientEvents, side: "client")
            ?? Self.pendingError(upstream, upstreamEvents, side: "upstream") {
            failure = error
            return false
        }
        let up: Int, down: Int
        switch toUpstream.pump(limit: limit) {
        case .success(let moved): up = moved
        case .failure(let error):
            failure = error
            return false
        }
        switch toClient.pump(limit: limit) {
        case .success(let moved): down = moved
        case .failure(let error):
            failure = error
            return false
        }
        if up + down > 0 { lastActivity = now }
        guard !isFinished else { return false }
        if Self.hungUp(clientEvents, after: toUpstream) || Self.hungUp(upstreamEvents, after: toClient) {
            failure = SpliceFailure(errno: EPIPE, operation: "hang-up")
            return false
        }
        return true
    }

    private static func pendingError(_ socket: CInt, _ events: UInt32, side: String) -> SpliceFailure? {
        guard events & UInt32(CORRAL_ERROR.rawValue) != 0 else { return nil }
        // 0: the error was read already (a failed splice returns and clears it); the
        // connection is broken all the same.
        let error = corral_socket_error(socket)
        return SpliceFailure(errno: error > 0 ? error : error < 0 ? -error : ECONNRESET,
                             operation: "error on the \(side)'s socket")
    }

    /// A hang-up on the socket that `flow` reads, with its input read to the end and the
    /// pipe behind it empty.
    private static func hungUp(_ events: UInt32, after flow: SpliceFlow) -> Bool {
        events & UInt32(CORRAL_HANGUP.rawValue) != 0 && flow.sourceEnded && flow.buffered == 0
    }

    /// Closes both sockets and both pipes, and reports the end once. A socket closed with
    /// unread input sends a reset, as when the NIO relay closes a channel. After a failure
    /// (a reset or hang-up on one side), both sockets are closed with a reset: the abort is
    /// passed on, so the other peer (an upstream waiting on a long poll) learns at once
    /// instead of at its next write; a FIN would read as an orderly end.
    func close() {
        if failure != nil {
            _ = corral_reset_on_close(client)
            _ = corral_reset_on_close(upstream)
        }
        for fd in [client, upstream, toUpstream.pipe.read, toUpstream.pipe.write, toClient.pipe.read,
                   toClient.pipe.write] {
            _ = Glibc.close(fd)
        }
        toUpstream.releaseReserve()
        toClient.releaseReserve()
        onEnd?()
        onEnd = nil
    }
}
