/// The text forms of network entries, shared by the manifest parser and the proxy (which
/// reads the hosts an agent asks for with the same rules).
public enum EgressSyntax {
    /// Why an entry's text was refused, with a hint.
    public struct Problem: Error, Sendable, Equatable {
        public var message: String
        public var hint: String
    }

    /// Parses `host:port`, `host:low-high` or `host:*` (any port), where host is a DNS name,
    /// `*.domain`, an IPv4 address or network, or a bracketed IPv6 address or network.
    public static func entry(_ text: String) -> Result<EgressEntry, Problem> {
        guard let (hostText, portText) = splitHostPort(text) else {
            return .failure(Problem(message: "`\(text)` names no port",
                                    hint: "write host:port, such as api.example.com:443, or host:8000-8100"))
        }
        let host: HostPattern
        switch hostPattern(hostText) {
        case .success(let pattern): host = pattern
        case .failure(let problem): return .failure(problem)
        }
        guard let ports = portRange(portText) else {
            return .failure(Problem(message: "`\(portText)` in `\(text)` is not a port or port range",
                                    hint: "write a port from 1 to 65535, a range such as 8000-8100, or * for any port"))
        }
        return .success(EgressEntry(host: host, ports: ports, text: text))
    }

    /// A host pattern on its own (as in a forward's `to`).
    public static func hostPattern(_ text: String) -> Result<HostPattern, Problem> {
        if text == "*" || text.hasPrefix("*:") {
            return .failure(Problem(message: "`*` allows every host",
                                    hint: "name the hosts the goal needs; use mode: host for an unconfined network"))
        }
        if text.hasPrefix("["), text.hasSuffix("]") {
            let inner = String(text.dropFirst().dropLast())
            if let address = IPAddress(inner), address.isV6 { return .success(.address(address)) }
            if let network = IPNetwork(inner), network.base.isV6 { return .success(.network(network)) }
            return .failure(Problem(message: "`\(text)` is not an IPv6 address or network",
                                    hint: "write [2001:db8::1] or [2001:db8::/32]"))
        }
        if let address = IPAddress(text) {
            if address.isV6 {
                return .failure(Problem(message: "IPv6 address `\(text)` needs brackets",
                                        hint: "write [\(text)]:PORT"))
            }
            return .success(.address(address))
        }
        if text.contains("/") {
            guard let network = IPNetwork(text), !network.base.isV6 else {
                return .failure(Problem(message: "`\(text)` is not a network in CIDR form",
                                        hint: "write the first address and the prefix length, such as 10.0.0.0/8"))
            }
            return .success(.network(network))
        }
        if text.hasPrefix("*.") {
            guard let suffix = hostName(String(text.dropFirst(2))) else {
                return .failure(Problem(message: "`\(text)` is not a valid wildcard domain",
                                        hint: "write *.example.com"))
            }
            if isPublicSuffix(suffix) {
                return .failure(Problem(message: "`\(text)` matches every site under the public suffix `\(suffix)`",
                                        hint: "name the organisation's own domain, such as *.example.\(suffix)"))
            }
            return .success(.subdomains(of: suffix))
        }
        if text.contains("*") {
            return .failure(Problem(message: "`\(text)`: a wildcard may only be the whole first label",
                                    hint: "write *.example.com"))
        }
        guard let name = hostName(text) else {
            return .failure(Problem(message: "`\(text)` is not a valid host name",
                                    hint: "use letters, digits, - and . (punycode for international names)"))
        }
        return .success(.name(name))
    }

    /// Splits `host:port` at the last colon outside brackets. Nil without a port.
    public static func splitHostPort(_ text: String) -> (host: String, port: String)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":"), after.count > 1 else { return nil }
            return (String(text[...close]), String(after.dropFirst()))
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = text[..<colon]
        guard !host.isEmpty, !host.contains(":") else { return nil }
        let port = text[text.index(after: colon)...]
        guard !port.isEmpty else { return nil }
        return (String(host), String(port))
    }

    /// `443`, `8000-8100`, `*`.
    public static func portRange(_ text: String) -> ClosedRange<UInt16>? {
        if text == "*" { return 1...65535 }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        var numbers: [UInt16] = []
        for part in parts {
            guard (1...5).contains(part.count), part.allSatisfy({ ("0"..."9").contains($0) }),
                  let value = UInt16(part), value >= 1 else { return nil }
            numbers.append(value)
        }
        guard numbers[0] <= numbers[numbers.count - 1] else { return nil }
        return numbers[0]...numbers[numbers.count - 1]
    }

    /// One port, 1–65535.
    public static func port(_ text: some StringProtocol) -> UInt16? {
        guard (1...5).contains(text.count), text.allSatisfy({ ("0"..."9").contains($0) }),
              let value = UInt16(text), value >= 1 else { return nil }
        return value
    }

    /// A DNS name in canonical form (lower case, no trailing dot), or nil when it is not one:
    /// 1–253 characters of labels of 1–63 letters, digits, `-` and `_`, not starting or
    /// ending with `-`, the last label starting with a letter (a top-level domain; this also
    /// keeps out the forms libc reads as numbers, such as `127.1` or `0x7f000001`). Only ASCII: international names must arrive as punycode, so two
    /// spellings of one name cannot match differently.
    public static func hostName(_ text: String) -> String? {
        var name = text
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        var result = ""
        result.reserveCapacity(name.utf8.count)
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return nil }
            for byte in label.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "-"), UInt8(ascii: "_"):
                    break
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    break
                default:
                    return nil
                }
            }
            if !result.isEmpty { result += "." }
            result += label.lowercased()
        }
        guard let last = result.split(separator: ".").last?.first, ("a"..."z").contains(last) else { return nil }
        return result
    }

    /// Whether `domain` is a public suffix (a name under which unrelated parties register):
    /// every single label (`com`, `io`, `internal`), and the common multi-label suffixes of
    /// the Public Suffix List's ICANN and private sections. A curated subset: a wildcard on
    /// a suffix missing here is accepted.
    public static func isPublicSuffix(_ domain: String) -> Bool {
        if !domain.contains(".") { return true }
        if multiLabelSuffixes.contains(domain) { return true }
        // Country second levels: co.uk, com.au, org.br, ac.jp, gov.in …
        let labels = domain.split(separator: ".")
        if labels.count == 2, labels[1].count == 2,
           ["co", "com", "net", "org", "ac", "edu", "gov", "gob", "go", "or", "ne", "mil", "nic", "ltd", "plc",
            "sch", "info", "biz", "nom", "gen", "firm", "web", "me", "res"].contains(String(labels[0])) {
            return true
        }
        return false
    }

    static let multiLabelSuffixes: Set<String> = [
        "amazonaws.com", "s3.amazonaws.com", "compute.amazonaws.com", "elb.amazonaws.com",
        "cloudfront.net", "appspot.com", "googleapis.com", "storage.googleapis.com", "web.app", "firebaseapp.com",
        "run.app", "cloudfunctions.net", "azurewebsites.net", "blob.core.windows.net", "cloudapp.net",
        "azureedge.net", "trafficmanager.net", "github.io", "githubusercontent.com", "gitlab.io", "herokuapp.com",
        "netlify.app", "vercel.app", "pages.dev", "workers.dev", "fly.dev", "onrender.com", "repl.co",
        "glitch.me", "ngrok.io", "ngrok-free.app", "blogspot.com", "wordpress.com", "tumblr.com",
        "myshopify.com", "digitaloceanspaces.com", "r2.dev", "readthedocs.io", "pythonanywhere.com",
        "duckdns.org", "no-ip.org", "dyndns.org", "ddns.net", "nip.io", "sslip.io", "localhost.run",
        "co.com", "eu.org", "us.com", "uk.com", "cn.com", "de.com", "jpn.com",
    ]
}
