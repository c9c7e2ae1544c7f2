import CorralSystem
import Foundation
import Synchronization
import Testing
@testable import Corral

/// The event stream's one order: the syscall watcher queues its events (`enqueue`) while the
/// supervisor writes its own (`emit`) and drains the queue; every event is written once, in
/// the order of its number, and the observer sees them in that order.
@Suite struct EventLogTests {
    /// The lines written to a temporary file, decoded.
    static func written(_ path: String) throws -> [RunEvent] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(RunEvent.self, from: Data($0.utf8)) }
    }

    static func temporaryFile() throws -> (path: String, descriptor: Int32) {
        let path = NSTemporaryDirectory() + "corral-events-\(UUID().uuidString).jsonl"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
        return (path, descriptor)
    }

    @Test func queuedAndEmittedEventsKeepOneOrderAcrossThreads() throws {
        let (path, descriptor) = try Self.temporaryFile()
        defer { close(descriptor); unlink(path) }
        let observed = Mutex<[Int]>([])
        let log = EventLog(descriptor: descriptor, observer: { event in observed.withLock { $0.append(event.seq) } },
                           goal: "t", audit: nil)
        let calls = 5000, emitted = 200, ruled = calls / 100
        let queued = DispatchGroup()
        // The watcher's thread, as in a run: each call queued as the call alone, and now and
        // then a rule's event emitted there (which writes the queue on that thread).
        DispatchQueue.global().async(group: queued) {
            for index in 0..<calls {
                log.enqueueSyscall(WatchedCall(syscall: "openat", pid: Int32(index), time: 0))
                if index % 100 == 99 { log.emit(.rule) { $0.detail = "\(index / 100)" } }
            }
        }
        for index in 0..<emitted {
            log.emit(.limit) { $0.detail = "\(index)" }
            if index % 7 == 0 { log.drain() }
        }
        queued.wait()
        log.drain()

        let events = try Self.written(path)
        #expect(events.map(\.seq) == Array(1...(calls + emitted + ruled)))
        #expect(events.filter { $0.type == .syscall }.map(\.pid) == (0..<calls).map { Int32($0) })
        #expect(events.filter { $0.type == .syscall }.allSatisfy { $0.syscall == "openat" && $0.call?.pid == $0.pid })
        #expect(events.filter { $0.type == .limit }.map(\.detail) == (0..<emitted).map { "\($0)" })
        // A rule's event follows the calls queued before it on the same thread.
        let order = events.filter { $0.type != .limit }.map { $0.type == .rule ? -1 : Int($0.pid ?? 0) }
        for (position, value) in order.enumerated() where value == -1 {
            #expect(position % 101 == 100, "a rule event at \(position)")
        }
        #expect(observed.withLock { $0 } == Array(1...(calls + emitted + ruled)))
        // Each event's time is the moment it was numbered, so times follow numbers.
        #expect(events.map(\.time) == events.map(\.time).sorted())
    }

    /// A queued event is not written until something drains the queue; an emit writes
    /// everything queued before itself.
    @Test func anEmitWritesWhatWasQueuedBeforeIt() throws {
        let (path, descriptor) = try Self.temporaryFile()
        defer { close(descriptor); unlink(path) }
        let log = EventLog(descriptor: descriptor, observer: nil, goal: "t", audit: nil)
        log.enqueueSyscall(WatchedCall(syscall: "openat", pid: 2, time: 0))
        log.enqueue(.limit) { $0.limit = "events" }
        #expect(try Self.written(path).isEmpty)
        log.emit(.exit)
        #expect(try Self.written(path).map(\.type) == [.syscall, .limit, .exit])
        #expect(try Self.written(path).map(\.syscall) == ["openat", nil, nil])
        log.drain()
        #expect(try Self.written(path).count == 3)
    }

    // MARK: - The hand-written line of a syscall event

    static func syscallEvent(_ configure: (inout WatchedCall) -> Void) -> RunEvent {
        var call = WatchedCall(syscall: "openat", pid: 4242, time: 0.012_345_678)
        configure(&call)
        var event = RunEvent(seq: 17, time: "2026-12-06T03:01:26.000000001Z", type: .syscall, goal: "weekly-report")
        event.syscall = call.syscall
        event.pid = call.pid
        event.call = call
        return event
    }

    static let syscallEvents: [RunEvent] = [
        syscallEvent { $0.dirfd = -100; $0.path = "/etc/hostname"; $0.flags = "O_RDONLY|O_CLOEXEC" },
        syscallEvent { $0.path = "/tmp/x"; $0.mode = 0o644; $0.flags = "O_WRONLY|O_CREAT"; $0.decision = .deny(errno: 13) },
        syscallEvent { $0.decision = .deny(errno: 4000) },
        syscallEvent {
            $0.syscall = "execve"; $0.path = "/usr/bin/\"sh\"\\"; $0.argv = ["sh", "-c", "echo é\u{1}\n\t\u{7f}", ""]
            $0.truncated = true; $0.unreadable = "argv: EFAULT"; $0.time = 3.0
        },
        syscallEvent {
            $0.syscall = "connect"; $0.fd = 3; $0.time = 1e-07
            var address = SocketAddress(family: "inet6", address: "fe80::1", port: 443)
            address.scopeID = 2
            $0.address = address
        },
        syscallEvent { $0.syscall = "connect"; var a = SocketAddress(family: "unix"); a.abstractName = "x\u{0}y"; $0.address = a },
        syscallEvent { $0.syscall = "kill"; $0.target = -1; $0.signal = 9; $0.number = Int64.min; $0.family = "inet" },
    ]

    /// The same event as `JSONEncoder` writes it, decoded; and the same bytes.
    @Test(arguments: syscallEvents)
    func aSyscallLineIsTheEncodersLine(_ event: RunEvent) throws {
        let line = try #require(event.syscallLine())
        #expect(line.last == 0x0A)
        #expect(try JSONDecoder().decode(RunEvent.self, from: Data(line)) == event)
        #expect(String(decoding: line, as: UTF8.self) == String(decoding: event.jsonLine(), as: UTF8.self))
    }

    @Test func otherEventsTakeTheEncoder() {
        var event = Self.syscallEvents[0]
        event.detail = "x"
        #expect(event.syscallLine() == nil)
        #expect(RunEvent(seq: 1, time: "t", type: .exit, goal: "g").syscallLine() == nil)
    }
}
