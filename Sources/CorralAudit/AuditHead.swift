import CorralSystem

/// The log's anchor, `LOG.head`: the last event's seq and hash, signed. A hash chain alone
/// cannot tell a log whose last lines were cut off from a log that simply ended there; the
/// head, replaced (write, then rename) under the log's lock after every append, can.
///
/// One line: `{"v":1,"seq":12,"hash":"…","key":"…","sig":"…"}` and a newline; the signature
/// covers `AuditFormat.headSignedMessage(seq:hash:)`.
struct AuditHead: Sendable, Equatable {
    var seq: UInt64
    var hash: String
    var key: String
    var signature: String

    static func path(log: String) -> String { log + ".head" }

    static func signed(seq: UInt64, hash: String, by key: AuditSigningKey) throws(CorralError) -> AuditHead {
        let message = AuditFormat.headSignedMessage(seq: seq, hash: JSONWriter.bytes(fromHex: hash) ?? [])
        return AuditHead(seq: seq, hash: hash, key: key.identity, signature: try key.sign(message))
    }

    var encoded: [UInt8] {
        Array("{\"v\":\(AuditFormat.version),\"seq\":\(seq),\"hash\":\"\(hash)\",\"key\":\"\(key)\",\"sig\":\"\(signature)\"}\n".utf8)
    }

    /// Reads a head file; the reason when it is not one.
    static func parse(_ bytes: [UInt8]) -> Result<AuditHead, HeadError> {
        guard bytes.last == 0x0A else { return .failure(HeadError("it does not end with a newline")) }
        let value: JSONValue
        do { value = try JSONReader.parse(Array(bytes.dropLast())).0 } catch { return .failure(HeadError("\(error)")) }
        guard case .object(let members) = value, members.map(\.key) == ["v", "seq", "hash", "key", "sig"] else {
            return .failure(HeadError("members must be v, seq, hash, key, sig"))
        }
        guard value["v"] == .number(String(AuditFormat.version)),
              let seq = AuditFormat.sequenceNumber(value["seq"]),
              let hash = AuditFormat.lowercaseHex(value["hash"], length: 64),
              let key = AuditFormat.lowercaseHex(value["key"], length: AuditKey.identityLength),
              let signature = AuditFormat.lowercaseHex(value["sig"], length: 128) else {
            return .failure(HeadError("a member is not of the form the writer emits"))
        }
        let head = AuditHead(seq: seq, hash: hash, key: key, signature: signature)
        guard head.encoded == bytes else { return .failure(HeadError("it is not written as the writer emits it")) }
        return .success(head)
    }

    func isSigned(by publicKey: [UInt8]) -> Bool {
        guard let hashBytes = JSONWriter.bytes(fromHex: hash) else { return false }
        return AuditKey.isValid(signature: signature, of: AuditFormat.headSignedMessage(seq: seq, hash: hashBytes),
                                publicKey: publicKey)
    }

    struct HeadError: Error, Sendable, Equatable {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
