#if canImport(Glibc)
import Glibc
#endif
@testable import CorralNet
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// One `SpliceWorker` driven directly, with tunnels between unix socketpairs: the kernel
/// delivers a unix stream socket's bytes to its peer inside the send, with no softirq or
/// window in between, so what a tunnel can move at any moment is exact.
@Suite struct SpliceWorkerTests {
    /// A non-blocking unix stream socketpair.
    static func pair() throws -> (CInt, CInt) {
        var fds: [CInt] = [-1, -1]
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue)
        try #require(socketpair(AF_UNIX, type, 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    static func tunnel(client: CInt, upstream: CInt, maxDuration: TimeAmount,
                       onEnd: @escaping @Sendable () -> Void = {}) throws -> SpliceTunnel {
        try #require(SpliceTunnel.make(client: client, upstream: upstream, budget: nil, idleTimeout: .seconds(60),
                                       maxDuration: maxDuration, onEnd: onEnd))
    }

    /// A tunnel that is never idle: its client and upstream are the two ends of one
    /// socketpair, so what it sends upstream it reads back from the client, at once, and
    /// its sinks always have room (each pump reads back what it wrote). 16 KiB go round
    /// for good. `ended` becomes true when the tunnel ends.
    static func busyTunnel(maxDuration: TimeAmount, ended: NIOLockedValueBox<Bool>) throws -> SpliceTunnel {
        let (a, b) = try pair()
        let seed = [UInt8](repeating: 0x5A, count: 16 << 10)
        try #require(send(b, seed, seed.count, 0) == seed.count)  // into a's input
        return try tunnel(client: a, upstream: b, maxDuration: maxDuration) { ended.withLockedValue { $0 = true } }
    }

    /// Whether `condition` holds within `limit`.
    static func within(_ limit: Duration, _ condition: () -> Bool) -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if condition() { return true }
            usleep(5_000)
        }
        return condition()
    }

    static func queued(_ fd: CInt) -> Int {
        var count: CInt = 0
        return ioctl(fd, UInt(FIONREAD), &count) == 0 ? Int(count) : -1
    }

    /// Two tunnels that always have bytes to move share a worker with a quiet one: the
    /// quiet one's bytes still go through, the busy one with a short lifetime still ends
    /// at it, and `stop` (which waits for the thread) returns. Without the per-turn limit
    /// the first busy tunnel's pump never returns.
    @Test func busyTunnelsDoNotStarveTheWorker() throws {
        let worker = try SpliceWorker.start()
        let longEnded = NIOLockedValueBox(false), shortEnded = NIOLockedValueBox(false)
        worker.add(try Self.busyTunnel(maxDuration: .seconds(60), ended: longEnded))
        worker.add(try Self.busyTunnel(maxDuration: .milliseconds(300), ended: shortEnded))
        let (client, clientPeer) = try Self.pair()
        let (upstream, upstreamPeer) = try Self.pair()
        defer {
            close(clientPeer)
            close(upstreamPeer)
        }
        let start = ContinuousClock.now
        worker.add(try Self.tunnel(client: client, upstream: upstream, maxDuration: .seconds(60)))
        #expect(send(clientPeer, "ping", 4, 0) == 4)
        #expect(Self.within(.seconds(2)) { Self.queued(upstreamPeer) == 4 }, "the quiet tunnel starved")
        #expect(Self.within(.seconds(3)) { shortEnded.withLockedValue { $0 } }, "the lifetime did not end it")
        #expect(ContinuousClock.now - start >= .milliseconds(250))
        #expect(!longEnded.withLockedValue { $0 })
        guard shortEnded.withLockedValue({ $0 }) else {
            // The worker's thread is stuck in a pump: `stop` would never return.
            Issue.record("the worker's thread is stuck; left running")
            return
        }
        let stopping = ContinuousClock.now
        worker.stop()
        #expect(ContinuousClock.now - stopping < .seconds(2))
        #expect(longEnded.withLockedValue { $0 })
    }

    /// More than a turn's worth waits in the source and the sink has room for all of it:
    /// the pump stops at the limit, and no new edge comes (nothing more arrives, nothing is
    /// read from the sink), so the worker must come back to the tunnel on its own.
    @Test func tunnelStoppedAtTheLimitIsPumpedAgainWithoutAnEvent() throws {
        let size = 3 * SpliceTunnel.turnLimit + 12345
        let (client, clientPeer) = try Self.pair()
        let (upstream, upstreamPeer) = try Self.pair()
        defer {
            close(clientPeer)
            close(upstreamPeer)
        }
        // Room for everything in each socket's peer (unix stream sockets count a peer's
        // queue against the sender's send buffer); root may pass wmem_max.
        var room: CInt = 16 << 20
        for fd in [clientPeer, upstream] {
            try #require(setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &room, socklen_t(MemoryLayout<CInt>.size)) == 0)
        }
        let bytes = [UInt8](repeating: 0xA5, count: size)
        var sent = 0
        while sent < size {
            let n = bytes[sent...].withUnsafeBytes { send(clientPeer, $0.baseAddress, $0.count, 0) }
            try #require(n > 0, "errno \(errno)")
            sent += n
        }
        let worker = try SpliceWorker.start()
        defer { worker.stop() }
        worker.add(try Self.tunnel(client: client, upstream: upstream, maxDuration: .seconds(60)))
        #expect(Self.within(.seconds(3)) { Self.queued(upstreamPeer) == size },
                "\(Self.queued(upstreamPeer)) of \(size) bytes arrived")
    }

    /// A second `stop` while the first is joining the thread returns only once the thread
    /// has ended (here: once the tunnel's end, reported on that thread, is done).
    @Test func concurrentStopsBothWaitForTheThread() throws {
        let worker = try SpliceWorker.start()
        let ended = NIOLockedValueBox(false)
        let (client, upstream) = try Self.pair()
        worker.add(try Self.tunnel(client: client, upstream: upstream, maxDuration: .seconds(60)) {
            usleep(500_000)
            ended.withLockedValue { $0 = true }
        })
        let firstSaw = NIOLockedValueBox<Bool?>(nil)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(StopCall(worker: worker, saw: firstSaw, ended: ended)).toOpaque()
        try #require(pthread_create(&thread, nil, { raw in
            let call = Unmanaged<StopCall>.fromOpaque(raw!).takeRetainedValue()
            call.worker.stop()
            call.saw.withLockedValue { $0 = call.ended.withLockedValue { $0 } }
            return nil
        }, box) == 0)
        usleep(100_000)  // the first stop is joining
        worker.stop()
        #expect(ended.withLockedValue { $0 }, "the second stop returned before the thread ended")
        pthread_join(thread, nil)
        #expect(firstSaw.withLockedValue { $0 } == true)
    }
}

private final class StopCall {
    let worker: SpliceWorker
    let saw: NIOLockedValueBox<Bool?>
    let ended: NIOLockedValueBox<Bool>

    init(worker: SpliceWorker, saw: NIOLockedValueBox<Bool?>, ended: NIOLockedValueBox<Bool>) {
        self.worker = worker
        self.saw = saw
        self.ended = ended
    }
}
