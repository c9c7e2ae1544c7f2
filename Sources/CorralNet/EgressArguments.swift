import CorralPlan
import CorralProfile
import NIOCore

/// corral-egress's command line:
///
///     corral-egress --control-fd N [--http-fd FD] [--socks-fd FD] [--forward FD=HOST:PORT]...
///                   [--allow ENTRY]... [--idle-timeout SECONDS] [--max-duration SECONDS]
///                   [--max-connections N]
///
/// Hand-parsed rather than with swift-argument-parser: the supervisor is the only caller,
/// and the executable stays small.
public struct EgressArguments: Sendable {
    public var configuration: EgressConfiguration
    public var listeners: EgressListeners
    public var controlFD: CInt

    /// A bad argument, in one line.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public static func parse(_ arguments: [String]) -> Result<EgressArguments, Problem> {
        var control: CInt?
        var listeners = EgressListeners()
        var entries: [EgressEntry] = []
        var idle: Int64 = 300, duration: Int64 = 3600, maxConnections = 1024
        var index = 0
        func fail(_ message: String) -> Result<EgressArguments, Problem> { .failure(Problem(message: message)) }
        func descriptor(_ text: String) -> CInt? {
            guard let value = CInt(text), value >= 0 else { return nil }
            return value
        }
        while index < arguments.count {
            let option = arguments[index]
            guard index + 1 < arguments.count else { return fail("\(option) needs a value") }
            let value = arguments[index + 1]
            index += 2
            switch option {
            case "--control-fd":
                guard let fd = descriptor(value) else { return fail("--control-fd: `\(value)` is not a descriptor") }
                control = fd
            case "--http-fd":
                guard let fd = descriptor(value) else { return fail("--http-fd: `\(value)` is not a descriptor") }
                listeners.http = fd
            case "--socks-fd":
                guard let fd = descriptor(value) else { return fail("--socks-fd: `\(value)` is not a descriptor") }
                listeners.socks = fd
            case "--forward":
                guard let equals = value.firstIndex(of: "="), let fd = descriptor(String(value[..<equals])) else {
                    return fail("--forward: `\(value)` is not FD=HOST:PORT")
                }
                let target = String(value[value.index(after: equals)...])
                guard let (hostText, portText) = EgressSyntax.splitHostPort(target),
                      let port = EgressSyntax.port(portText) else {
                    return fail("--forward: `\(target)` is not HOST:PORT")
                }
                switch EgressSyntax.hostPattern(hostText) {
                case .success(let host):
                    switch host {
                    case .name, .address: listeners.forwards.append((fd, .init(host: host, port: port)))
                    case .subdomains, .network: return fail("--forward: `\(hostText)` must name one host")
                    }
                case .failure(let problem):
                    return fail("--forward: \(problem.message)")
                }
            case "--allow":
                switch EgressSyntax.entry(value) {
                case .success(let entry): entries.append(entry)
                case .failure(let problem): return fail("--allow: \(problem.message)")
                }
            case "--idle-timeout":
                guard let seconds = Int64(value), seconds > 0 else { return fail("--idle-timeout: `\(value)` is not a number of seconds") }
                idle = seconds
            case "--max-duration":
                guard let seconds = Int64(value), seconds > 0 else { return fail("--max-duration: `\(value)` is not a number of seconds") }
                duration = seconds
            case "--max-connections":
                guard let count = Int(value), count > 0 else { return fail("--max-connections: `\(value)` is not a positive number") }
                maxConnections = count
            default:
                return fail("unknown option `\(option)`")
            }
        }
        guard let control else { return fail("--control-fd is required") }
        var all = [control] + listeners.forwards.map(\.fd)
        if let http = listeners.http { all.append(http) }
        if let socks = listeners.socks { all.append(socks) }
        guard Set(all).count == all.count else { return fail("a descriptor is given twice") }
        var configuration = EgressConfiguration(policy: EgressPolicy(entries: entries))
        configuration.idleTimeout = .seconds(idle)
        configuration.maxDuration = .seconds(duration)
        configuration.maxConnections = maxConnections
        return .success(EgressArguments(configuration: configuration, listeners: listeners, controlFD: control))
    }
}

/// The listening sockets corral-egress serves, as inherited descriptors (bound, listening,
/// TCP on 127.0.0.1). The proxy takes ownership of each.
public struct EgressListeners: Sendable {
    public var http: CInt?
    public var socks: CInt?
    public var forwards: [(fd: CInt, target: EgressConfiguration.Forward)] = []

    public init(http: CInt? = nil, socks: CInt? = nil, forwards: [(fd: CInt, target: EgressConfiguration.Forward)] = []) {
        self.http = http
        self.socks = socks
        self.forwards = forwards
    }
}
