#if canImport(Glibc)
import Glibc
#endif
import CCorralLaunch
@testable import CorralNet
import Testing

/// One `SpliceFlow` between two real TCP connections on loopback, pumped by hand (no worker
/// thread, no epoll): `source` and `sink` are the proxy's ends, non-blocking as NIO's are;
/// the test writes into `source`'s peer and reads from `sink`'s peer.
final class FlowBench {
    let sourcePeer: CInt, source: CInt, sink: CInt
    private(set) var sinkPeer: CInt
    let pipe: (read: CInt, write: CInt)
    var flow: SpliceFlow

    init(budget: PipeBudget?, sinkBuffer: CInt? = nil) throws {
        (sourcePeer, source) = try Self.connectedPair()
        (sink, sinkPeer) = try Self.connectedPair()
        for fd in [source, sink] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        for fd in [sourcePeer, sinkPeer] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        if var size = sinkBuffer {
            setsockopt(sink, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
            setsockopt(sinkPeer, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        var fds: [CInt] = [-1, -1]
        let capacity = corral_splice_pipe(&fds)
        try #require(capacity > 0)
        pipe = (fds[0], fds[1])
        flow = SpliceFlow(source: source, sink: sink, pipe: pipe, capacity: Int(capacity), budget: budget)
    }

    deinit {
        for fd in [sourcePeer, source, sink, sinkPeer, pipe.read, pipe.write] where fd >= 0 { close(fd) }
    }

    /// Closes the sink's peer with a reset (SO_LINGER 0).
    func resetSinkPeer() {
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(sinkPeer, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        close(sinkPeer)
        sinkPeer = -1
    }

    /// A connected TCP pair on 127.0.0.1: (the connecting end, the accepted end).
    static func connectedPair() throws -> (CInt, CInt) {
        let listener = try makeListener()
        defer { close(listener.fd) }
        let client = try TestClient(port: listener.port)
        let accepted = accept(listener.fd, nil, nil)
        try #require(accepted >= 0)
        return (dup(client.fd), accepted)  // the TestClient closes its own descriptor
    }

    /// Writes into the source's peer what fits now; returns the count.
    func feed(_ bytes: ArraySlice<UInt8>) -> Int {
        let n = bytes.withUnsafeBytes { send(sourcePeer, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return max(0, n)
    }

    /// Feeds `bytes` through the flow, pumping and draining, for at most `rounds` turns (a
    /// flow that stops moving fails its test instead of hanging it); returns what arrived.
    func carry(_ bytes: [UInt8], rounds: Int) -> [UInt8] {
        var fed = 0, received: [UInt8] = []
        for _ in 0..<rounds where received.count < bytes.count {
            fed += feed(bytes[fed...])
            _ = flow.pump()
            received += drain() ?? []
        }
        return received
    }

    /// Reads what the sink's peer has now; nil at end-of-file.
    func drain() -> [UInt8]? {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(sinkPeer, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                result += chunk[..<n]
            } else if n == 0 {
                return result.isEmpty ? nil : result
            } else {
                return result
            }
        }
    }
}

@Suite struct SpliceFlowTests {
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) } }

    /// A pipe filled in one splice grows to the budget's target, and the budget gets the
    /// bytes back when the flow releases them.
    @Test func fullPipeGrowsWithinTheBudgetAndGivesItBack() throws {
        let budget = PipeBudget(target: 1 << 20, total: 1 << 20)
        let bench = try FlowBench(budget: budget)
        let start = bench.flow.capacity
        try #require(start < 1 << 20)
        let bytes = Self.pattern(512 << 10)
        let received = bench.carry(bytes, rounds: 100_000)
        let same = received == bytes  // compared outside #expect: a failure would print megabytes
        #expect(received.count == bytes.count)
        #expect(same)
        #expect(bench.flow.capacity == 1 << 20)
        #expect(budget.available == start)  // 1 MiB minus what the pipe grew by
        bench.flow.releaseReserve()
        #expect(budget.available == 1 << 20)
    }

    /// With no budget left, the pipe keeps its size, and the flow still carries everything.
    @Test func exhaustedBudgetLeavesThePipeAsItIs() throws {
        let budget = PipeBudget(target: 1 << 20, total: 0)
        let bench = try FlowBench(budget: budget)
        let start = bench.flow.capacity
        let bytes = Self.pattern(300_000)
        let received = bench.carry(bytes, rounds: 10_000)
        let same = received == bytes  // compared outside #expect: a failure would print megabytes
        #expect(received.count == bytes.count)
        #expect(same)
        #expect(bench.flow.capacity == start)
        #expect(budget.available == 0)
    }

    /// One pump moves everything there is, through a pipe smaller than the data: it goes
    /// on after the pipe fills (an EAGAIN with bytes in the pipe is not a drained source).
    /// Edge-triggered epoll reports nothing more for bytes a pump left behind.
    @Test func onePumpMovesAllThereIs() throws {
        let bench = try FlowBench(budget: nil)
        let bytes = Self.pattern(200_000)
        #expect(bench.flow.capacity < bytes.count)
        var fed = 0
        for _ in 0..<100 where fed < bytes.count {
            fed += bench.feed(bytes[fed...])
        }
        try #require(fed == bytes.count)
        usleep(10_000)
        #expect(bench.flow.pump() == .success(2 * bytes.count))
        #expect(bench.flow.buffered == 0)
        usleep(10_000)
        let drained = bench.drain()
        let same = drained == bytes
        #expect(drained?.count == bytes.count)
        #expect(same)
    }

    /// The source's FIN reaches the sink after the last byte, once, and ends the flow.
    @Test func finFollowsTheLastByte() throws {
        let bench = try FlowBench(budget: nil)
        #expect(bench.feed(Array("last words".utf8)[...]) == 10)
        shutdown(bench.sourcePeer, CInt(SHUT_WR))
        usleep(10_000)
        #expect(bench.flow.pump() == .success(20))  // 10 into the pipe, 10 out of it
        #expect(bench.flow.isFinished)
        #expect(bench.drain() == Array("last words".utf8))
        #expect(bench.drain() == nil)  // end-of-file
    }

    /// A sink whose peer does not read fills up: the flow stops with bytes in its pipe
    /// (splice into the socket says EAGAIN) and resumes once the peer reads. Nothing is
    /// lost or repeated.
    @Test func fullSinkHoldsBytesInThePipeUntilThereIsRoom() throws {
        let bench = try FlowBench(budget: nil, sinkBuffer: 16 << 10)
        let bytes = Self.pattern(4 << 20)
        var fed = 0
        var sawFullSink = false
        while fed < bytes.count {
            fed += bench.feed(bytes[fed...])
            _ = bench.flow.pump()
            if bench.flow.buffered > 0 { sawFullSink = true }
            if sawFullSink { break }
        }
        #expect(sawFullSink)
        var received: [UInt8] = []
        for _ in 0..<100_000 where received.count < bytes.count {
            fed += bench.feed(bytes[fed...])
            _ = bench.flow.pump()
            received += bench.drain() ?? []
        }
        #expect(received.count == bytes.count)
        let same = received == bytes
        #expect(same)
    }

    /// A reset from the sink's peer ends the flow with the errno, not silently.
    @Test func resetSinkEndsTheFlowWithAnError() throws {
        let bench = try FlowBench(budget: nil)
        bench.resetSinkPeer()
        usleep(10_000)
        _ = bench.feed(Array("into the void".utf8)[...])
        usleep(10_000)
        var result = bench.flow.pump()
        if case .success = result { result = bench.flow.pump() }
        guard case .failure(let failure) = result else {
            Issue.record("pump after a reset: \(result)")
            return
        }
        #expect(failure.errno == EPIPE || failure.errno == ECONNRESET)
    }
}
