import CorralSystem
import FoundationEssentials

/// The bytes of one log line, written and read back. See the module's documentation
/// (CorralAudit.docc) for the format and why the hash covers the line's own bytes.
enum AuditFormat {
    static let version = 1
    /// `prev` of the first event in a log.
    static let zeroHash = String(repeating: "0", count: 64)
    /// The members of a line, in the one order the writer emits and the reader accepts.
    static let unsignedMembers = ["v", "seq", "time", "run", "type", "prev", "payload", "hash"]
    static let signedMembers = ["v", "seq", "time", "run", "type", "prev", "payload", "key", "hash", "sig"]

    // MARK: - Writing

    /// The hashed part of a line: everything before `,"hash":`.
    static func hashedPart(seq: UInt64, time: String, run: String, type: String, prev: String,
                           payload: [UInt8], key: String?) -> [UInt8] {
        var out = Array("{\"v\":\(version),\"seq\":\(seq),\"time\":".utf8)
        out += JSONWriter.string(time)
        out += Array(",\"run\":".utf8) + JSONWriter.string(run)
        out += Array(",\"type\":".utf8) + JSONWriter.string(type)
        out += Array(",\"prev\":\"\(prev)\",\"payload\":".utf8) + payload
        if let key { out += Array(",\"key\":\"\(key)\"".utf8) }
        return out
    }

    /// The whole line, newline included.
    static func line(hashedPart: [UInt8], hash: String, signature: String?) -> [UInt8] {
        hashedPart + closing(hash: hash, signature: signature) + [0x0A]
    }

    /// What follows the hashed part: the only bytes of a line the hash does not cover, so the
    /// reader accepts exactly these and nothing else.
    static func closing(hash: String, signature: String?) -> [UInt8] {
        Array((",\"hash\":\"\(hash)\"" + (signature.map { ",\"sig\":\"\($0)\"" } ?? "") + "}").utf8)
    }

    /// SHA-256 through CorralSystem's C digest: swift-crypto's generic `HashFunction` path made
    /// every launch look up protocol conformances at run time (~0.1 ms each).
    static func sha256(_ bytes: [UInt8]) -> [UInt8] { CorralSystem.sha256(bytes) }

    /// What an event's Ed25519 signature signs: a context string (so a signature made for
    /// something else with the same key can never pass as an event's), a zero byte, and the
    /// event's 32-byte hash, which covers `prev` and so every event before it.
    static func eventSignedMessage(hash: [UInt8]) -> [UInt8] {
        Array("corral-audit-v1 event".utf8) + [0] + hash
    }

    /// What the head's signature signs: context, zero byte, the last event's seq as 8 bytes
    /// big-endian, and its hash.
    static func headSignedMessage(seq: UInt64, hash: [UInt8]) -> [UInt8] {
        Array("corral-audit-v1 head".utf8) + [0] + (0..<8).map { UInt8(truncatingIfNeeded: seq >> (56 - 8 * $0)) } + hash
    }

    // MARK: - Field checks shared by lines and the head

    /// A seq: decimal digits without a leading zero, at least 1.
    static func sequenceNumber(_ value: JSONValue?) -> UInt64? {
        guard case .number(let text) = value, !text.hasPrefix("0"), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let seq = UInt64(text), seq > 0 else { return nil }
        return seq
    }

    /// Lowercase hex of exactly `length` characters.
    static func lowercaseHex(_ value: JSONValue?, length: Int) -> String? {
        guard case .string(let text) = value, text.utf8.count == length,
              text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return text
    }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, as `HostEnvironment.rfc3339Now()` writes it.
    static func isTimestamp(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        let pattern = Array("dddd-dd-ddTdd:dd:dd.dddddddddZ".utf8)
        guard bytes.count == pattern.count else { return false }
        return zip(bytes, pattern).allSatisfy { byte, expected in
            expected == UInt8(ascii: "d") ? (0x30...0x39).contains(byte) : byte == expected
        }
    }
}

/// One line of the log, read back.
struct AuditRecord: Sendable {
    var seq: UInt64
    var time: String
    var run: String
    var type: String
    var prev: String
    var payload: JSONValue
    /// The signing key's identity, on signed events.
    var key: String?
    var hash: String
    var signature: String?
    /// The hashed part is `line[..<hashedEnd]`.
    var hashedEnd: Int

    enum Malformed: Error, Sendable, Equatable {
        case json(JSONError)
        case field(String)
    }

    /// Reads a line (without its newline), checking the layout the writer emits: the
    /// members in order, each of its type and form, and the closing bytes exactly.
    static func parse(_ line: [UInt8]) throws(Malformed) -> AuditRecord {
        let value: JSONValue
        do { value = try JSONReader.parse(line).0 } catch { throw .json(error) }
        guard case .object(let members) = value else { throw .field("the line is not a JSON object") }
        let names = members.map(\.key)
        let signed = names == AuditFormat.signedMembers
        guard signed || names == AuditFormat.unsignedMembers else {
            throw .field("members must be \(AuditFormat.unsignedMembers.joined(separator: ", ")) "
                         + "(key before hash and sig after it when signed); found \(names.joined(separator: ", "))")
        }
        guard value["v"] == .number(String(AuditFormat.version)) else {
            throw .field("version \(Self.brief(value["v"])) is not supported (this Corral reads version \(AuditFormat.version))")
        }
        guard let seq = AuditFormat.sequenceNumber(value["seq"]) else { throw .field("seq is not a positive integer") }
        guard case .string(let time) = value["time"], AuditFormat.isTimestamp(time) else {
            throw .field("time is not an RFC 3339 UTC timestamp with nanoseconds")
        }
        guard case .string(let run) = value["run"] else { throw .field("run is not a string") }
        guard case .string(let type) = value["type"] else { throw .field("type is not a string") }
        guard let prev = AuditFormat.lowercaseHex(value["prev"], length: 64) else { throw .field("prev is not 64 lowercase hex digits") }
        guard let payload = value["payload"], case .object = payload else { throw .field("payload is not a JSON object") }
        guard let hash = AuditFormat.lowercaseHex(value["hash"], length: 64) else { throw .field("hash is not 64 lowercase hex digits") }
        var key: String?
        var signature: String?
        if signed {
            guard let id = AuditFormat.lowercaseHex(value["key"], length: AuditKey.identityLength) else {
                throw .field("key is not \(AuditKey.identityLength) lowercase hex digits")
            }
            guard let sig = AuditFormat.lowercaseHex(value["sig"], length: 128) else { throw .field("sig is not 128 lowercase hex digits") }
            key = id
            signature = sig
        }
        let hashedEnd = members[names.firstIndex(of: "hash")!].keyStart - 1
        guard hashedEnd > 0, line[hashedEnd...].elementsEqual(AuditFormat.closing(hash: hash, signature: signature)) else {
            throw .field("hash and sig must end the line as the writer emits them (no spaces, nothing after)")
        }
        return AuditRecord(seq: seq, time: time, run: run, type: type, prev: prev, payload: payload, key: key,
                           hash: hash, signature: signature, hashedEnd: hashedEnd)
    }

    static func brief(_ value: JSONValue?) -> String {
        switch value {
        case .number(let text)?: return text
        case .string(let text)?: return "\"\(text.prefix(20))\""
        case nil: return "(missing)"
        default: return "(not a number)"
        }
    }
}
