/// One decision of the proxy, written to the supervisor as one line:
///
///     DECISION \t VIA \t HOST \t PORT \t ADDRESS \t ENTRY \t REASON \n
///
/// Fields are sanitised (`Decision.escape`); an absent or empty field is `-`, an absent port `0`.
public struct Decision: Sendable, Hashable {
    public enum Outcome: String, Sendable, Hashable {
        /// Connected upstream.
        case allow
        /// Refused by the policy.
        case deny
        /// Allowed, but resolution or connect failed or timed out.
        case fail
        /// Malformed or hostile input, or a limit: bad request, head too large, handshake
        /// timeout, too many connections.
        case error
    }

    public enum Via: String, Sendable, Hashable {
        case httpConnect = "http-connect"
        case http
        case socks5
        case forward
    }

    public var outcome: Outcome
    public var via: Via
    public var host: String?
    public var port: UInt16
    public var address: String?
    public var entry: String?
    public var reason: String?

    public init(_ outcome: Outcome, via: Via, host: String? = nil, port: UInt16 = 0, address: String? = nil,
                entry: String? = nil, reason: String? = nil) {
        self.outcome = outcome
        self.via = via
        self.host = host
        self.port = port
        self.address = address
        self.entry = entry
        self.reason = reason
    }

    /// The line, with its newline.
    public var line: String {
        var text = outcome.rawValue
        for field in [via.rawValue, host, String(port), address, entry, reason] {
            text += "\t"
            if let field, !field.isEmpty { text += Self.escape(field) } else { text += "-" }
        }
        return text + "\n"
    }

    /// The `dropped` line for `count` lines lost to a slow reader.
    static func droppedLine(_ count: Int) -> String { "dropped\t\(count)\n" }

    /// `field` with every byte below 0x20, 0x7F, every non-ASCII byte and `%` written as
    /// `%XX` (upper-case hex). The hosts come from the sandbox: this keeps a field on its
    /// line and out of a terminal's control sequences. Spaces stay.
    public static func escape(_ field: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(field.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in field.utf8 {
            if byte < 0x20 || byte >= 0x7F || byte == UInt8(ascii: "%") {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
