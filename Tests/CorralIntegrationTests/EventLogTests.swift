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
        let calls = 5000, emitted = 200
        let queued = DispatchGroup()
        DispatchQueue.global().async(group: queued) {
            for index in 0..<calls { log.enqueue(.syscall) { $0.pid = Int32(index) } }
        }
        for index in 0..<emitted {
            log.emit(.limit) { $0.detail = "\(index)" }
            if index % 7 == 0 { log.drain() }
        }
        queued.wait()
        log.drain()

        let events = try Self.written(path)
        #expect(events.map(\.seq) == Array(1...(calls + emitted)))
        #expect(events.filter { $0.type == .syscall }.map(\.pid) == (0..<calls).map { Int32($0) })
        #expect(events.filter { $0.type == .limit }.map(\.detail) == (0..<emitted).map { "\($0)" })
        #expect(observed.withLock { $0 } == Array(1...(calls + emitted)))
        // Each event's time is the moment it was numbered, so times follow numbers.
        #expect(events.map(\.time) == events.map(\.time).sorted())
    }

    /// A queued event is not written until something drains the queue; an emit writes
    /// everything queued before itself.
    @Test func anEmitWritesWhatWasQueuedBeforeIt() throws {
        let (path, descriptor) = try Self.temporaryFile()
        defer { close(descriptor); unlink(path) }
        let log = EventLog(descriptor: descriptor, observer: nil, goal: "t", audit: nil)
        log.enqueue(.syscall) { $0.syscall = "openat" }
        log.enqueue(.syscall) { $0.syscall = "close" }
        #expect(try Self.written(path).isEmpty)
        log.emit(.exit)
        #expect(try Self.written(path).map(\.type) == [.syscall, .syscall, .exit])
        #expect(try Self.written(path).map(\.syscall) == ["openat", "close", nil])
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
