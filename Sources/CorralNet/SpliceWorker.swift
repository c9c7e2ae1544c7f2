#if canImport(Glibc)
import Glibc
#endif
import CCorralLaunch
import NIOCore
import Synchronization

/// The threads that relay established tunnels with splice(2), outside NIO: NIO has no way
/// to watch a descriptor it does not own, so each worker runs an epoll loop of its own.
/// A tunnel goes to the workers in turn and stays with its worker until it ends.
///
/// Plain threads (pthread), not Dispatch or Swift concurrency: Dispatch's Linux thread
/// pool reads /proc, which corral-egress's Landlock rule forbids (see corral-egress's
/// main.swift). The threads are created by `start`, after the process hardening, and
/// inherit it and the blocked signal mask.
final class Splicer: Sendable {
    private let workers: [SpliceWorker]
    let pipeBudget: PipeBudget
    /// Tunnels spliced at once, at most; the next ones stay with the NIO relay.
    let maxTunnels: Int
    private let live = Atomic<Int>(0)
    private let started = Atomic<Int>(0)

    private init(workers: [SpliceWorker], pipeBudget: PipeBudget, maxTunnels: Int) {
        self.workers = workers
        self.pipeBudget = pipeBudget
        self.maxTunnels = maxTunnels
    }

    /// Starts `threads` workers.
    ///
    /// - Throws: `SpliceFailure` when an epoll or eventfd descriptor or a thread cannot be
    ///   made; the workers already started are stopped.
    static func start(threads: Int, pipeBudget: PipeBudget, maxTunnels: Int) throws(SpliceFailure) -> Splicer {
        var workers: [SpliceWorker] = []
        for _ in 0..<max(1, threads) {
            do {
                workers.append(try SpliceWorker.start())
            } catch {
                for worker in workers { worker.stop() }
                throw error
            }
        }
        return Splicer(workers: workers, pipeBudget: pipeBudget, maxTunnels: maxTunnels)
    }

    /// Takes one of the `maxTunnels` places; false when none is left. Each tunnel's two
    /// pipes count against the user's pipe-user-pages-soft (see `PipeBudget`): the cap
    /// keeps a sandbox that opens many tunnels from pushing the proxy's user past it.
    func reserveTunnel() -> Bool {
        var current = live.load(ordering: .relaxed)
        while current < maxTunnels {
            let (exchanged, original) = live.compareExchange(expected: current, desired: current + 1,
                                                             ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func releaseTunnel() {
        live.subtract(1, ordering: .relaxed)
    }

    /// Hands a tunnel to the next worker, which owns it from now on.
    func relay(_ tunnel: SpliceTunnel) {
        // The tunnels started so far pick the worker: in turn, without a lock of its own.
        let index = started.add(1, ordering: .relaxed).oldValue % workers.count
        workers[index].add(tunnel)
    }

    /// Tunnels handed to the workers so far.
    var tunnelsStarted: Int { started.load(ordering: .relaxed) }

    /// Closes every tunnel and ends the threads (waits for them).
    func stop() {
        for worker in workers { worker.stop() }
    }
}

/// One relaying thread: an edge-triggered epoll set holding both sockets of each of its
/// tunnels, and an eventfd through which other threads hand it tunnels or stop it.
///
/// Edge-triggered (EPOLLET): a socket is reported once per change of state (data arrived,
/// room in the send buffer, FIN, error), so the worker must move all it can on each report
/// (or come back unprompted, see Fairness) and never wait on a socket it has not drained
/// or filled; `SpliceFlow.pump` does that. Each report pumps both directions of the
/// tunnel: either socket's event can unblock either direction (reports of both sockets in
/// one turn make one pump).
///
/// Each socket has a token of its own (the tunnel's number, doubled, plus 1 for the
/// upstream), so that the event bits reach the tunnel with the socket they are about: an
/// error or hang-up ends the tunnel even on a direction that is done (see
/// `SpliceTunnel.pump`).
///
/// Fairness: a pump takes at most `SpliceTunnel.turnLimit` bytes each way. A stream whose
/// source always has data and whose sink always has room would otherwise never leave its
/// pump, and the other tunnels of the worker, the timers (its own lifetime included) and
/// `stop` would wait for good. A tunnel that stopped at the limit gets no new edge for
/// the bytes it left, so it goes on the `ready` list, pumped on every turn until a pump
/// ends short of the limit; while the list is not empty, epoll_wait does not block.
///
/// Timers: instead of one per tunnel, the loop keeps the earliest expiry (idle or
/// lifetime) of all its tunnels as the epoll timeout, checks it on every turn (busy or
/// not), and rescans the tunnels when it passes; expiries only move later, so nothing is
/// missed.
final class SpliceWorker: @unchecked Sendable {
    // @unchecked: `inbox` and `joined` are behind Mutexes; `tunnels`, `ready`, `due`,
    // `nextID` and `nextCheck` are used by the worker's thread alone, and `epoll`, `wake`
    // and `thread` are set before it starts and only read after.
    private struct Inbox {
        var tunnels: [SpliceTunnel] = []
        var stopping = false
    }

    private let inbox = Mutex(Inbox())
    /// Held by `stop` across the join: a second `stop` waits for the first one's join.
    /// Never taken by the worker's thread.
    private let joined = Mutex(false)
    private let epoll: CInt
    private let wake: CInt
    private var thread = pthread_t()
    private var tunnels: [UInt64: SpliceTunnel] = [:]
    /// The tunnels whose last pump stopped at the limit: pumped again on the next turn.
    private var ready: Set<UInt64> = []
    /// This turn's tunnels to pump and the event bits of their client and upstream
    /// sockets (kept to reuse its storage).
    private var due: [UInt64: (client: UInt32, upstream: UInt32)] = [:]
    /// Token 0 is the eventfd; tunnels count from 1, their sockets' tokens from 2.
    private var nextID: UInt64 = 1
    private var nextCheck = NIODeadline.distantFuture

    private init(epoll: CInt, wake: CInt) {
        self.epoll = epoll
        self.wake = wake
    }

    static func start() throws(SpliceFailure) -> SpliceWorker {
        let epoll = corral_epoll_create()
        guard epoll >= 0 else { throw SpliceFailure(errno: -epoll, operation: "epoll_create1") }
        let wake = corral_eventfd_cloexec()
        guard wake >= 0 else {
            close(epoll)
            throw SpliceFailure(errno: -wake, operation: "eventfd")
        }
        let rc = corral_epoll_add(epoll, wake, UInt32(CORRAL_READABLE.rawValue), 0, 0)
        let worker = SpliceWorker(epoll: epoll, wake: wake)
        guard rc == 0 else {
            worker.closeDescriptors()
            throw SpliceFailure(errno: -rc, operation: "epoll_ctl")
        }
        let context = Unmanaged.passRetained(worker).toOpaque()
        let created = pthread_create(&worker.thread, nil, { raw in
            let worker = Unmanaged<SpliceWorker>.fromOpaque(raw!).takeRetainedValue()
            worker.run()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<SpliceWorker>.fromOpaque(context).release()
            worker.closeDescriptors()
            throw SpliceFailure(errno: created, operation: "pthread_create")
        }
        return worker
    }

    /// Queues a tunnel for this worker and wakes it. After `stop`, the tunnel is closed.
    func add(_ tunnel: SpliceTunnel) {
        let accepted = inbox.withLock { inbox in
            guard !inbox.stopping else { return false }
            inbox.tunnels.append(tunnel)
            // Under the lock: `stop` closes the eventfd once it has seen `stopping`, and a
            // write after that could reach whatever descriptor took its number.
            _ = corral_eventfd_signal(wake)
            return true
        }
        guard accepted else { return tunnel.close() }
    }

    /// Closes every tunnel of this worker and waits for its thread to end. Any number of
    /// calls, from any threads: each returns once the thread has ended and the
    /// descriptors are closed.
    func stop() {
        joined.withLock { joined in
            guard !joined else { return }
            inbox.withLock { inbox in
                inbox.stopping = true
                _ = corral_eventfd_signal(wake)
            }
            pthread_join(thread, nil)
            closeDescriptors()
            joined = true
        }
    }

    private func closeDescriptors() {
        close(epoll)
        close(wake)
    }

    // MARK: - The worker's thread

    private func run() {
        var tokens = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        while true {
            let timeout = ready.isEmpty ? waitMilliseconds() : 0
            let count = corral_epoll_wait(epoll, &tokens, &events, 64, timeout)
            // The only failures are EBADF, EFAULT and EINVAL: programmer errors.
            precondition(count >= 0, "epoll_wait: errno \(-count)")
            let now = NIODeadline.now()
            due.removeAll(keepingCapacity: true)
            for id in ready { due[id] = (0, 0) }
            ready.removeAll(keepingCapacity: true)
            for index in 0..<Int(count) {
                let token = tokens[index]
                if token == 0 {
                    guard takeInbox(now: now) else { return endAll() }
                } else {
                    var bits = due[token >> 1] ?? (0, 0)
                    if token & 1 == 0 { bits.client |= events[index] } else { bits.upstream |= events[index] }
                    due[token >> 1] = bits
                }
            }
            for (id, bits) in due {
                guard let tunnel = tunnels[id] else { continue }
                if !tunnel.pump(now: now, clientEvents: bits.client, upstreamEvents: bits.upstream) {
                    end(id)
                } else if tunnel.needsAnotherTurn {
                    ready.insert(id)
                }
            }
            if now >= nextCheck { sweep(now: now) }
        }
    }

    /// The epoll timeout: until the earliest expiry, in whole milliseconds rounded up
    /// (rounding down would wake the loop early and spin until the expiry); -1 for none.
    private func waitMilliseconds() -> CInt {
        guard !tunnels.isEmpty, nextCheck != .distantFuture else { return -1 }
        let nanoseconds = (nextCheck - .now()).nanoseconds
        guard nanoseconds > 0 else { return 0 }
        return CInt(min((nanoseconds + 999_999) / 1_000_000, Int64(CInt.max)))
    }

    /// Registers the tunnels handed over since the last wake and pumps each once (bytes
    /// may be waiting already). Returns false when the worker is to stop.
    private func takeInbox(now: NIODeadline) -> Bool {
        corral_eventfd_drain(wake)
        let (arrived, stopping) = inbox.withLock { inbox in
            defer { inbox.tunnels = [] }
            return (inbox.tunnels, inbox.stopping)
        }
        guard !stopping else {
            for tunnel in arrived { tunnel.close() }
            return false
        }
        let interest = UInt32(CORRAL_READABLE.rawValue | CORRAL_WRITABLE.rawValue | CORRAL_PEER_SHUT.rawValue)
        for tunnel in arrived {
            let id = nextID
            nextID += 1
            tunnels[id] = tunnel
            // EPOLLERR and EPOLLHUP are always reported. ENOMEM or ENOSPC (past
            // max_user_watches) end the tunnel: it could not be watched. A socket that is
            // already in error or hung up is reported at once, on the next epoll_wait.
            guard corral_epoll_add(epoll, tunnel.client, interest, 1, id << 1) == 0,
                  corral_epoll_add(epoll, tunnel.upstream, interest, 1, id << 1 | 1) == 0,
                  tunnel.pump(now: now) else {
                end(id)
                continue
            }
            if tunnel.needsAnotherTurn { ready.insert(id) }
            nextCheck = min(nextCheck, tunnel.expiry)
        }
        return true
    }

    /// Closes a tunnel. Closing its descriptors removes them from the epoll set: they are
    /// the last descriptors of their sockets (an epoll registration lives as long as the
    /// open file, not the descriptor number, which is why NIO's own were closed first).
    private func end(_ id: UInt64) {
        ready.remove(id)
        tunnels.removeValue(forKey: id)?.close()
    }

    /// Ends the tunnels past their idle timeout or lifetime, and finds the next expiry.
    private func sweep(now: NIODeadline) {
        var next = NIODeadline.distantFuture
        var expired: [UInt64] = []
        for (id, tunnel) in tunnels {
            let expiry = tunnel.expiry
            if expiry <= now { expired.append(id) } else { next = min(next, expiry) }
        }
        for id in expired { end(id) }
        nextCheck = next
    }

    private func endAll() {
        for tunnel in tunnels.values { tunnel.close() }
        tunnels = [:]
        ready = []
    }
}
