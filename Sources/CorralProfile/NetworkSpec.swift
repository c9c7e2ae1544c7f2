/// `network:` — what the run may reach.
///
/// - `none`: a network namespace with loopback only.
/// - `loopback`: the same, plus the host loopback `ports` listed, forwarded in (the
///   sandbox connects to 127.0.0.1:PORT inside; Corral connects to the host's).
/// - `allowlist`: the same namespace; the outside is reached only through Corral's egress
///   proxy (HTTP and SOCKS5 on loopback inside) and the `forward` entries, and only for the
///   `allow` entries.
/// - `host`: no network namespace at all (explicit; the report records it).
public struct NetworkSpec: Sendable, Hashable {
    public var mode: NetworkMode = .none
    /// `allowlist`: the `host:port` entries the proxy lets through.
    public var allow: [EgressEntry] = []
    /// `allowlist`: fixed TCP forwards for clients that cannot use a proxy.
    public var forward: [PortForward] = []
    /// `loopback`: host loopback ports reachable from inside, on the same port numbers.
    public var ports: [UInt16] = []
    public var proxy = ProxySettings()

    public init() {}
}

public enum NetworkMode: String, Sendable, Hashable, CaseIterable {
    case none, loopback, allowlist, host
}

/// `network.proxy:` — where the egress proxy listens inside the sandbox and how long a
/// connection may live.
public struct ProxySettings: Sendable, Hashable {
    public var httpPort: UInt16 = 3128
    public var socksPort: UInt16 = 1080
    /// A connection with no byte in either direction for this long is closed.
    public var idleTimeout: Duration = .seconds(300)
    /// No connection lives longer than this, busy or not.
    public var maxDuration: Duration = .seconds(3600)
    /// Connections open at once through the proxy and forwards; more are refused.
    public var maxConnections: Int = 1024

    public init() {}
}

/// One `allow` entry: a host pattern and a port range, e.g. `api.example.com:443`,
/// `*.pypi.org:443`, `10.0.0.0/8:5432`, `[2001:db8::1]:8000-8100`.
public struct EgressEntry: Sendable, Hashable, CustomStringConvertible {
    public var host: HostPattern
    public var ports: ClosedRange<UInt16>
    /// As written in the manifest, for events and reports.
    public var text: String
    public var location: ManifestLocation?

    public init(host: HostPattern, ports: ClosedRange<UInt16>, text: String, location: ManifestLocation? = nil) {
        self.host = host
        self.ports = ports
        self.text = text
        self.location = location
    }

    public var description: String { text }
}

/// Which hosts an entry names.
public enum HostPattern: Sendable, Hashable, CustomStringConvertible {
    /// One DNS name, lower case, without a trailing dot.
    case name(String)
    /// `*.example.com`: any name below `example.com` (not `example.com` itself), stored as
    /// "example.com".
    case subdomains(of: String)
    case address(IPAddress)
    case network(IPNetwork)

    public var description: String {
        switch self {
        case .name(let name): name
        case .subdomains(let suffix): "*." + suffix
        case .address(let address): address.isV6 ? "[\(address)]" : "\(address)"
        case .network(let network): network.base.isV6 ? "[\(network)]" : "\(network)"
        }
    }

    /// Whether the entry names addresses itself (so private ones are allowed by it).
    public var namesAddresses: Bool {
        switch self {
        case .address, .network: true
        case .name, .subdomains: false
        }
    }
}

/// `forward: [{ listen: 5432, to: db.internal:5432 }]` — connections to 127.0.0.1:`listen`
/// inside the sandbox are relayed to `host`:`port`, resolved and checked like a proxy
/// request.
public struct PortForward: Sendable, Hashable {
    public var listen: UInt16
    /// A name or an address (no wildcard, no range).
    public var host: HostPattern
    public var port: UInt16
    public var location: ManifestLocation?

    public init(listen: UInt16, host: HostPattern, port: UInt16, location: ManifestLocation? = nil) {
        self.listen = listen
        self.host = host
        self.port = port
        self.location = location
    }

    /// The allow entry a forward implies: exactly its target.
    public var entry: EgressEntry {
        EgressEntry(host: host, ports: port...port, text: "\(host):\(port)", location: location)
    }
}
