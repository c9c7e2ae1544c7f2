import CorralProfile
import CorralSystem
import Testing
@testable import Corral

/// The rules' arithmetic without a sandbox: what `rate(connect)` counts, and when
/// `new-host` fires.
@Suite struct MonitorEngineTests {
    static func engine(_ condition: MonitorCondition) -> MonitorEngine {
        var engine = MonitorEngine(rules: [MonitorRule(id: "r", condition: condition, action: .kill)],
                                   execAllowed: { _ in true }, writeAllowed: { _ in true })
        engine.egressPorts = [3128, 1080]
        return engine
    }

    static func connect(_ family: String, _ address: String? = nil, _ port: UInt16? = nil) -> MonitorEngine.Call {
        var target = SocketAddress(family: family)
        target.address = address
        target.port = port
        target.path = family == "unix" ? "/var/run/nscd/socket" : nil
        var call = MonitorEngine.Call(syscall: "connect", path: nil, writes: false)
        call.connectTarget = target
        return call
    }

    @Test func rateOfConnectCountsNetworkConnectsAndProxiedRequestsOnce() {
        var engine = Self.engine(.rate(syscall: "connect", count: 2, window: .seconds(10)))
        // Not counted: libc's nscd socket, and the proxy's own port (its request counts).
        #expect(engine.call(Self.connect("unix"), at: 0).isEmpty)
        #expect(engine.call(Self.connect("inet", "127.0.0.1", 3128), at: 0.1).isEmpty)
        // Counted: a request through the proxy, a direct inet and an inet6 connect.
        #expect(engine.network(host: "api.test", port: 443, unlisted: false, at: 0.2).isEmpty)
        #expect(engine.call(Self.connect("inet", "127.0.0.1", 8080), at: 0.3).isEmpty)
        let fired = engine.call(Self.connect("inet6", "::1", 443), at: 0.4)
        #expect(fired.map(\.detail) == ["3 connect calls within 10s"])
    }

    @Test func newHostFiresOnlyForAHostNoEntryNames() {
        var engine = Self.engine(.newHost)
        #expect(engine.network(host: "api.test", port: 8443, unlisted: false, at: 0).isEmpty)
        #expect(engine.network(host: "other.test", port: 443, unlisted: true, at: 1).map(\.detail)
                == ["request for other.test:443, which network.allow does not name"])
    }

    /// The watcher answers calls no rule looks at without building a `Call`.
    @Test func theJudgedSyscallsAreThoseTheRulesWatch() {
        #expect(Self.engine(.newHost).judgedSyscalls.isEmpty)
        #expect(Self.engine(.execOutsideAllowlist).judgedSyscalls == ["execve", "execveat"])
        #expect(Self.engine(.rate(syscall: "open", count: 1, window: .seconds(1))).judgedSyscalls == ["open", "openat", "creat"])
        #expect(Self.engine(.writeOutsideDeclared).judgedSyscalls == Set(MonitorCondition.writeSyscalls))
    }

    /// An open writes when one of its flag names says so, compared whole.
    @Test(arguments: [("O_RDONLY|O_CLOEXEC", false), ("O_WRONLY|O_CREAT|O_TRUNC", true), ("O_RDWR", true),
                      ("O_RDONLY|O_TRUNC", true), ("O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC", false),
                      ("O_RDONLY|O_CREAT", true), ("O_RDWR|O_TMPFILE", true), ("O_RDONLY|0x800000", false)])
    func anOpenWritesByItsFlags(_ flags: String, _ writes: Bool) {
        var call = WatchedCall(syscall: "openat", pid: 1, time: 0)
        call.path = "/tmp/x"
        call.flags = flags
        #expect(MonitorEngine.Call(call).writes == writes)
    }
}
