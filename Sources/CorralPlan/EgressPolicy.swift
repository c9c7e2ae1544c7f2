import CorralProfile

/// The egress proxy's decision rules, pure so that they are tested without sockets and the
/// plan, `corral explain` and the proxy agree.
///
/// A request names a host (a DNS name or an address literal) and a port:
/// 1. `decide` finds the first allow entry whose host pattern and port range match. A name
///    matches only name and `*.domain` entries; an address literal only address and network
///    entries (asking for 203.0.113.7 never matches `api.example.com`).
/// 2. The proxy resolves a name itself, then `admits` each address: special addresses
///    (loopback, private, link-local and cloud metadata, …; see `AddressClass`) only when the
///    matched entry names addresses itself. The address that passed is the one connected to.
public struct EgressPolicy: Sendable, Hashable {
    public let entries: [EgressEntry]

    public init(entries: [EgressEntry]) {
        self.entries = entries
    }

    /// What a request asked for.
    public enum Target: Sendable, Hashable, CustomStringConvertible {
        case name(String)
        case address(IPAddress)

        /// Reads a requested host: an address literal (IPv6 with or without brackets) or a
        /// valid DNS name; nil for anything else (which is refused as malformed).
        public init?(_ text: String) {
            var host = text
            if host.hasPrefix("["), host.hasSuffix("]") {
                host = String(host.dropFirst().dropLast())
                guard let address = IPAddress(host), address.isV6 else { return nil }
                self = .address(address.mappedV4 ?? address)
                return
            }
            if let address = IPAddress(host) {
                self = .address(address.mappedV4 ?? address)
            } else if let name = EgressSyntax.hostName(host) {
                self = .name(name)
            } else {
                return nil
            }
        }

        public var description: String {
            switch self {
            case .name(let name): name
            case .address(let address): address.description
            }
        }
    }

    public enum Decision: Sendable, Hashable {
        case allowed(EgressEntry)
        /// Why, in one line an agent can read.
        case denied(String)
    }

    public func decide(_ target: Target, port: UInt16) -> Decision {
        var hostMatched = false
        for entry in entries where Self.matches(entry.host, target) {
            hostMatched = true
            if entry.ports.contains(port) { return .allowed(entry) }
        }
        if hostMatched { return .denied("port \(port) of \(target) is not in network.allow") }
        return .denied(Self.unlistedHostReason(target.description))
    }

    /// The reason of a denial because no entry names the host at all (not merely its port):
    /// what the supervisor's `new-host` rule reads back from the proxy's decision lines.
    public static func unlistedHostReason(_ host: String) -> String { "\(host) is not in network.allow" }

    /// Whether `reason` is that denial for `host` as the client wrote it (any case, brackets).
    public static func isUnlistedHost(_ host: String, reason: String) -> Bool {
        Target(host).map { reason == unlistedHostReason($0.description) } ?? false
    }

    /// Whether `address` (a resolved or literal address) may be connected to for `entry`.
    /// Nil when it may; otherwise the reason.
    public func refusal(of address: IPAddress, for entry: EgressEntry) -> String? {
        let address = address.mappedV4 ?? address
        switch entry.host {
        case .address(let named):
            return named == address ? nil : "\(address) is not \(named)"
        case .network(let network):
            return network.contains(address) ? nil : "\(address) is outside \(network)"
        case .name, .subdomains:
            guard let kind = AddressClass(address) else { return nil }
            return "\(address) is a \(kind.rawValue) address; allow it by address to reach it"
        }
    }

    static func matches(_ pattern: HostPattern, _ target: Target) -> Bool {
        switch (pattern, target) {
        case (.name(let name), .name(let asked)):
            return name == asked
        case (.subdomains(let suffix), .name(let asked)):
            return asked.hasSuffix("." + suffix)
        case (.address(let address), .address(let asked)):
            return address == asked
        case (.network(let network), .address(let asked)):
            return network.contains(asked)
        default:
            return false
        }
    }
}

/// Addresses the proxy refuses unless an entry names them by address: what an allowed name
/// must never be made to reach (DNS rebinding, SSRF into the host's own network).
public enum AddressClass: String, Sendable, Hashable {
    case loopback
    case `private`
    case linkLocal = "link-local"
    case metadata = "cloud metadata"
    case sharedCarrier = "carrier-grade NAT"
    case unspecified
    case multicast
    case reserved

    /// The class of a special address, or nil for an ordinary (global) one. Documentation
    /// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) count as
    /// ordinary: they are routed nowhere, and tests use them for "remote" hosts.
    public init?(_ address: IPAddress) {
        switch address.mappedV4 ?? address {
        case .v4(let value):
            guard let kind = Self.classify(v4: value) else { return nil }
            self = kind
        case .v6(let high, let low):
            if high == 0 && low == 0 { self = .unspecified; return }
            if high == 0 && low == 1 { self = .loopback; return }
            if high == 0 && low >> 32 == 0 { self = .reserved; return }  // IPv4-compatible (deprecated)
            // Forms that carry an IPv4 address a relay or translator would reach: NAT64
            // (64:ff9b::/96) and 6to4 (2002::/16).
            if high == 0x0064_FF9B_0000_0000 && low >> 32 == 0 {
                if let kind = Self.classify(v4: UInt32(truncatingIfNeeded: low)) { self = kind; return }
                return nil
            }
            if high >> 48 == 0x2002 {
                if let kind = Self.classify(v4: UInt32(truncatingIfNeeded: high >> 16)) { self = kind; return }
                return nil
            }
            if high == 0xFD00_0EC2_0000_0000 && low == 0x254 { self = .metadata; return }  // AWS IPv6 IMDS
            if high >> 57 == 0x7E { self = .private; return }          // fc00::/7 unique local
            if high >> 54 == 0x3FA { self = .linkLocal; return }       // fe80::/10
            if high >> 54 == 0x3FB { self = .private; return }         // fec0::/10 site-local (deprecated)
            if high >> 56 == 0xFF { self = .multicast; return }        // ff00::/8
            if high >> 32 == 0x0100_0000 && high & 0xFFFF_FFFF == 0 { self = .reserved; return }  // 100::/64 discard
            return nil
        }
    }

    static func classify(v4 value: UInt32) -> AddressClass? {
        func within(_ base: UInt32, _ bits: Int) -> Bool { value & (UInt32.max << (32 - bits)) == base }
        if value == 0xA9FE_A9FE { return .metadata }                   // 169.254.169.254
        if within(0x0000_0000, 8) { return .unspecified }              // 0.0.0.0/8
        if within(0x7F00_0000, 8) { return .loopback }                 // 127.0.0.0/8
        if within(0x0A00_0000, 8) || within(0xAC10_0000, 12) || within(0xC0A8_0000, 16) { return .private }
        if within(0xA9FE_0000, 16) { return .linkLocal }               // 169.254.0.0/16
        if within(0x6440_0000, 10) { return .sharedCarrier }           // 100.64.0.0/10
        if within(0xC000_0000, 24) { return .reserved }                // 192.0.0.0/24 (IETF; Oracle/Alibaba metadata at .192.0.0.192)
        if within(0xC612_0000, 15) { return .reserved }                // 198.18.0.0/15 benchmarking
        if within(0xE000_0000, 4) { return .multicast }                // 224.0.0.0/4
        if within(0xF000_0000, 4) { return .reserved }                 // 240.0.0.0/4 and broadcast
        return nil
    }
}
