import CorralProfile

/// What the supervisor's egress proxy serves for a run (`network.mode` allowlist or
/// loopback): the listening sockets the sandbox's init creates on 127.0.0.1 inside the
/// run's network namespace, and the policy requests through them are decided by.
public struct EgressPlan: Sendable, Hashable {
    public enum Role: Sendable, Hashable, CustomStringConvertible {
        case httpProxy
        case socksProxy
        /// Every connection goes to one fixed target (a `forward` entry, or a host loopback
        /// port in mode loopback).
        case forward(host: HostPattern, port: UInt16)

        public var description: String {
            switch self {
            case .httpProxy: "http-proxy"
            case .socksProxy: "socks5-proxy"
            case .forward(let host, let port): "forward to \(host):\(port)"
            }
        }
    }

    public struct Listener: Sendable, Hashable {
        public var port: UInt16
        public var role: Role
    }

    /// In the order init creates them (and hands them over).
    public var listeners: [Listener]
    /// The manifest's allow entries and each forward's target.
    public var policy: EgressPolicy
    public var settings: ProxySettings

    /// The address the listeners are bound to inside the sandbox.
    public static let listenAddress = "127.0.0.1"

    /// The plan for `network`, or nil when the mode needs no proxy (none, host).
    public static func of(_ network: NetworkSpec) -> EgressPlan? {
        switch network.mode {
        case .none, .host:
            return nil
        case .allowlist:
            let listeners = [Listener(port: network.proxy.httpPort, role: .httpProxy),
                             Listener(port: network.proxy.socksPort, role: .socksProxy)]
                + network.forward.map { Listener(port: $0.listen, role: .forward(host: $0.host, port: $0.port)) }
            return EgressPlan(listeners: listeners, policy: EgressPolicy(entries: network.allow + network.forward.map(\.entry)),
                              settings: network.proxy)
        case .loopback:
            let loopback = IPAddress.v4(0x7F00_0001)
            let listeners = network.ports.map { Listener(port: $0, role: .forward(host: .address(loopback), port: $0)) }
            let entries = network.ports.map {
                EgressEntry(host: .address(loopback), ports: $0...$0, text: "127.0.0.1:\($0)")
            }
            return EgressPlan(listeners: listeners, policy: EgressPolicy(entries: entries), settings: network.proxy)
        }
    }

    /// The variables that point the command's tools at the proxy (allowlist only): the
    /// common upper- and lower-case forms (curl reads only lower-case http_proxy), npm's own.
    public var proxyEnvironment: [(name: String, value: String)] {
        guard let http = listeners.first(where: { $0.role == .httpProxy }),
              let socks = listeners.first(where: { $0.role == .socksProxy }) else { return [] }
        let httpURL = "http://\(Self.listenAddress):\(http.port)"
        let socksURL = "socks5h://\(Self.listenAddress):\(socks.port)"
        let noProxy = "localhost,127.0.0.1,::1"
        var result: [(name: String, value: String)] = []
        for (name, value) in [("HTTP_PROXY", httpURL), ("HTTPS_PROXY", httpURL), ("ALL_PROXY", socksURL),
                              ("NO_PROXY", noProxy)] {
            result.append((name, value))
            result.append((name.lowercased(), value))
        }
        result.append(("npm_config_proxy", httpURL))
        result.append(("npm_config_https_proxy", httpURL))
        return result
    }
}
