import CorralSystem

/// What verifying a log found: every event in order and authentic, or the first bad line
/// (1-based) and why. A bad log is a result, not an error.
public enum AuditVerification: Sendable, Equatable {
    case valid(Summary)
    case invalid(line: Int, problem: Problem)

    public struct Summary: Sendable, Equatable {
        public var events: Int
        /// Distinct run ids.
        public var runs: Int
        /// Signed events whose signature was checked against the key.
        public var signatures: Int
        /// Signed events left unchecked because no key was given (the head's signature is
        /// then unchecked too; its seq and hash are still compared).
        public var uncheckedSignatures: Int
    }

    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// Not JSON at all (an edited quote or brace, binary junk).
        case badJSON(String)
        /// JSON, but not an event as the writer emits it.
        case badField(String)
        /// The line does not end with a newline: the tail was cut, or a writer died mid-write.
        case incompleteLine
        /// A removed, reordered or inserted line.
        case sequenceGap(expected: UInt64, found: UInt64)
        /// `prev` is not the hash of the line before.
        case previousHashMismatch
        /// The line's bytes do not hash to its `hash`: edited.
        case hashMismatch
        case badSignature
        /// Signed with a key other than the one given.
        case unknownKey(String)
        /// Events exist but `LOG.head` does not.
        case headMissing
        case headUnreadable(String)
        case headBadSignature
        /// The head records more events than the log has: lines removed from the end.
        case eventsMissing(head: UInt64, last: UInt64)
        /// The head records the same seq with another hash: the end was rewritten.
        case headMismatch
        /// Events after the head's: added after the last signed head (or a writer died
        /// between writing its events and its head; any later append covers them).
        case notCoveredByHead(head: UInt64)

        public var description: String {
            switch self {
            case .badJSON(let detail): return "bad JSON: \(detail)"
            case .badField(let detail): return "not an audit event: \(detail)"
            case .incompleteLine: return "truncated: the last line is incomplete (no newline)"
            case .sequenceGap(let expected, let found):
                return "seq \(found) where \(expected) was expected (a line removed, reordered or inserted)"
            case .previousHashMismatch: return "prev does not match the hash of the line before"
            case .hashMismatch: return "hash mismatch: the line was changed after it was written"
            case .badSignature: return "bad signature"
            case .unknownKey(let id): return "signed by unknown key \(id)"
            case .headMissing: return "the head file is missing, so the log's end cannot be confirmed"
            case .headUnreadable(let detail): return "the head file is damaged: \(detail)"
            case .headBadSignature: return "the head file's signature is bad"
            case .eventsMissing(let head, let last):
                return "truncated: the head records \(head) events but the log ends at seq \(last)"
            case .headMismatch: return "the last event's hash differs from the one its head records"
            case .notCoveredByHead(let head):
                return "events after seq \(head) are not covered by the signed head (added later, or the writer died)"
            }
        }
    }
}

/// Checks a whole log: layout, the seq run, the hash chain, every signature, and the end
/// against the signed head.
public enum AuditVerifier {
    /// - Parameter publicKey: the 32-byte Ed25519 public key that must have signed every
    ///   signed event and the head; nil checks the chain only (signatures counted as unchecked).
    /// - Returns: `.valid` or the first bad line and why (a result, not an error).
    /// - Throws: `CorralError` when the log cannot be read.
    public static func verify(log: String, publicKey: [UInt8]?) throws(CorralError) -> AuditVerification {
        let (bytes, headBytes) = try readLocked(log: log)
        let keyIdentity = publicKey.map(AuditKey.identity(of:))
        var summary = AuditVerification.Summary(events: 0, runs: 0, signatures: 0, uncheckedSignatures: 0)
        var runs = Set<String>()
        var expectedSeq: UInt64 = 1
        var previous = AuditFormat.zeroHash
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            guard let newline = bytes[start...].firstIndex(of: 0x0A) else {
                return .invalid(line: lineNumber, problem: .incompleteLine)
            }
            let line = Array(bytes[start..<newline])
            start = newline + 1
            let record: AuditRecord
            do { record = try AuditRecord.parse(line) } catch {
                switch error {
                case .json(let detail): return .invalid(line: lineNumber, problem: .badJSON(detail.description))
                case .field(let detail): return .invalid(line: lineNumber, problem: .badField(detail))
                }
            }
            guard record.seq == expectedSeq else {
                return .invalid(line: lineNumber, problem: .sequenceGap(expected: expectedSeq, found: record.seq))
            }
            guard record.prev == previous else { return .invalid(line: lineNumber, problem: .previousHashMismatch) }
            let digest = AuditFormat.sha256(Array(line[..<record.hashedEnd]))
            guard JSONWriter.hex(digest) == record.hash else { return .invalid(line: lineNumber, problem: .hashMismatch) }
            if let key = record.key, let signature = record.signature {
                if let publicKey, let keyIdentity {
                    guard key == keyIdentity else { return .invalid(line: lineNumber, problem: .unknownKey(key)) }
                    guard AuditKey.isValid(signature: signature, of: AuditFormat.eventSignedMessage(hash: digest),
                                           publicKey: publicKey) else {
                        return .invalid(line: lineNumber, problem: .badSignature)
                    }
                    summary.signatures += 1
                } else {
                    summary.uncheckedSignatures += 1
                }
            }
            runs.insert(record.run)
            summary.events += 1
            expectedSeq += 1
            previous = record.hash
        }
        summary.runs = runs.count
        if let problem = checkHead(headBytes, lastSeq: expectedSeq - 1, lastHash: previous, publicKey: publicKey) {
            // Missing events are reported at the first line that should be there; the head's
            // other problems at the last line it fails to confirm.
            switch problem {
            case .notCoveredByHead(let head): return .invalid(line: Int(head) + 1, problem: problem)
            case .headMismatch: return .invalid(line: lineNumber, problem: problem)
            default: return .invalid(line: lineNumber + 1, problem: problem)
            }
        }
        return .valid(summary)
    }

    private static func checkHead(_ headBytes: [UInt8]?, lastSeq: UInt64, lastHash: String,
                                  publicKey: [UInt8]?) -> AuditVerification.Problem? {
        // An empty head file: the log was opened but nothing appended yet.
        guard let headBytes, !headBytes.isEmpty else { return lastSeq == 0 ? nil : .headMissing }
        let head: AuditHead
        switch AuditHead.parse(headBytes) {
        case .success(let parsed): head = parsed
        case .failure(let error): return .headUnreadable(error.reason)
        }
        if let publicKey {
            guard head.key == AuditKey.identity(of: publicKey) else { return .unknownKey(head.key) }
            guard head.isSigned(by: publicKey) else { return .headBadSignature }
        }
        if head.seq > lastSeq { return .eventsMissing(head: head.seq, last: lastSeq) }
        if head.seq < lastSeq { return .notCoveredByHead(head: head.seq) }
        if head.hash != lastHash { return .headMismatch }
        return nil
    }

    /// The log and its head, read under a shared lock so no appender is half-way through.
    private static func readLocked(log: String) throws(CorralError) -> ([UInt8], [UInt8]?) {
        let file: LockedFile
        do { file = try LockedFile.openForReading(log) } catch {
            throw CorralError(.setupFailed, operation: "open audit log", path: log, errno: error)
        }
        do { try file.lock(.shared) } catch {
            throw CorralError(.setupFailed, operation: "lock audit log", path: log, errno: error)
        }
        defer { file.unlock() }
        let bytes: [UInt8]
        do { bytes = try file.readAll() } catch {
            throw CorralError(.setupFailed, operation: "read audit log", path: log, errno: error)
        }
        let headPath = AuditHead.path(log: log)
        do {
            return (bytes, try HostEnvironment.readFile(headPath))
        } catch .noSuchFileOrDirectory {
            return (bytes, nil)
        } catch {
            throw CorralError(.setupFailed, operation: "read audit log head", path: headPath, errno: error)
        }
    }
}
