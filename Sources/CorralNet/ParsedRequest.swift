import CorralPlan
import CorralProfile
import NIOHTTP1

/// An HTTP proxy request read from its head: `CONNECT host:port` (authority-form) or an
/// absolute-form `http://host[:port]/path` request.
struct ParsedRequest {
    var head: HTTPRequestHead
    var isConnect: Bool
    /// The host as written (brackets kept for IPv6), the target the policy reads, the port.
    var hostText: String
    var target: EgressPolicy.Target
    var port: UInt16
    /// Absolute-form: the origin-form target sent upstream.
    var path: String = ""
    /// Absolute-form: the URL's authority, sent as Host.
    var authority: String = ""

    var via: Decision.Via { isConnect ? .httpConnect : .http }

    struct Problem: Error {
        var via: Decision.Via
        var host: String?
        var port: UInt16 = 0
        var reason: String
    }

    static func parse(_ head: HTTPRequestHead) -> Result<ParsedRequest, Problem> {
        if head.method == .CONNECT {
            guard let (hostText, portText) = EgressSyntax.splitHostPort(head.uri) else {
                return .failure(Problem(via: .httpConnect, host: head.uri, reason: "CONNECT needs host:port"))
            }
            guard let port = EgressSyntax.port(portText) else {
                return .failure(Problem(via: .httpConnect, host: hostText, reason: "`\(portText)` is not a port"))
            }
            guard let target = EgressPolicy.Target(hostText) else {
                return .failure(Problem(via: .httpConnect, host: hostText, port: port,
                                        reason: "`\(hostText)` is not a host name or address"))
            }
            return .success(ParsedRequest(head: head, isConnect: true, hostText: hostText, target: target, port: port))
        }
        let uri = head.uri
        let lowered = uri.lowercased()
        if lowered.hasPrefix("https://") {
            return .failure(Problem(via: .http, reason: "https:// URLs go through CONNECT, not absolute-form"))
        }
        guard lowered.hasPrefix("http://") else {
            return .failure(Problem(via: .http, reason: "the proxy takes CONNECT or absolute-form http:// requests"))
        }
        let rest = uri.dropFirst("http://".count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        var path = String(rest[authorityEnd...])
        if let fragment = path.firstIndex(of: "#") { path = String(path[..<fragment]) }
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        guard !authority.contains("@") else {
            return .failure(Problem(via: .http, reason: "user information in a URL is not accepted"))
        }
        let hostText: String
        var port: UInt16 = 80
        if let (host, portText) = EgressSyntax.splitHostPort(authority) {
            guard let value = EgressSyntax.port(portText) else {
                return .failure(Problem(via: .http, host: host, reason: "`\(portText)` is not a port"))
            }
            hostText = host
            port = value
        } else {
            hostText = authority
        }
        guard let target = EgressPolicy.Target(hostText) else {
            return .failure(Problem(via: .http, host: hostText, port: port,
                                    reason: "`\(hostText)` is not a host name or address"))
        }
        if let encoding = head.headers.first(name: "transfer-encoding"), encoding.lowercased() != "chunked"
            || head.headers[canonicalForm: "transfer-encoding"].count != 1 {
            return .failure(Problem(via: .http, host: hostText, port: port,
                                    reason: "only Transfer-Encoding: chunked is accepted"))
        }
        return .success(ParsedRequest(head: head, isConnect: false, hostText: hostText, target: target, port: port,
                                      path: path, authority: authority))
    }

    /// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
        "te", "trailer", "upgrade", "host",
    ]

    /// The head sent upstream: origin-form, hop-by-hop headers and the ones `Connection`
    /// lists removed, Host from the URL (RFC 9112 §3.2.2: a proxy replaces a received Host
    /// with the absolute-form's authority, so the host the policy decided is the host the
    /// server sees), `Connection: close`, and the body framing the proxy writes.
    func upstreamHead(chunked: Bool) -> String {
        var dropped = Self.hopByHop
        for value in head.headers[canonicalForm: "connection"] { dropped.insert(value.lowercased()) }
        if chunked {
            dropped.insert("transfer-encoding")
            dropped.insert("content-length")
        }
        var text = "\(head.method.rawValue) \(path) HTTP/\(head.version.major).\(head.version.minor)\r\n"
        text += "Host: \(authority)\r\n"
        for (name, value) in head.headers where !dropped.contains(name.lowercased()) {
            text += "\(name): \(value)\r\n"
        }
        if chunked { text += "Transfer-Encoding: chunked\r\n" }
        text += "Connection: close\r\n\r\n"
        return text
    }
}
