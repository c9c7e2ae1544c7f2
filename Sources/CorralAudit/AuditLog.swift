import CorralSystem
import Synchronization

/// The tamper-evident audit log: JSON lines, each chained to the one before by SHA-256, run
/// ends signed with Ed25519, the end anchored by a signed head file. Many processes may
/// append to one log at once; each batch is one locked write.
///
/// The format, what is hashed and signed, and what verification can and cannot detect are
/// described in the module's documentation (CorralAudit.docc).
public final class AuditLog: Sendable {
    /// One event to append.
    public struct Entry: Sendable, Equatable {
        /// What happened: `run.start`, `denial`, `run.end`, …
        public var type: String
        /// The run it belongs to.
        public var run: String
        /// A JSON object the caller encoded (compact or not; whitespace outside strings is
        /// removed). Anything else is a programmer error and traps.
        public var payload: [UInt8]
        /// Sign this event (run ends): its signature covers the whole log up to it.
        public var sign: Bool
        /// The payload is one compact JSON object from Corral's own encoders (a trailing
        /// newline allowed): without secrets to redact, it is taken as it is instead of being
        /// parsed again (a watched call's entry, thousands a second).
        public var compact: Bool

        public init(type: String, run: String, payload: [UInt8], sign: Bool = false, compact: Bool = false) {
            self.type = type
            self.run = run
            self.payload = payload
            self.sign = sign
            self.compact = compact
        }
    }

    /// The last event of a log: where the next one chains from.
    public struct Position: Sendable, Equatable {
        public var seq: UInt64
        /// Lowercase hex SHA-256 of the event's hashed part.
        public var hash: String
    }

    public let path: String
    public let headPath: String
    private let file: LockedFile
    /// Rewritten in place under the log's lock: a rename over it would cost a millisecond or
    /// more on ext4, whose replace-via-rename heuristic (auto_da_alloc) starts writeback of
    /// the new file on every rename.
    private let headFile: LockedFile
    private let key: AuditSigningKey
    private let redactor: Redactor
    private let durable: Bool
    /// flock locks belong to the open file description, which this instance's threads share:
    /// they take turns here first.
    private let turn = Mutex<Void>(())

    /// Opens (creating when missing) the log at `path`, its folder 0700 and the file 0600,
    /// and loads the signing key from `keyFolder` (created on first use).
    ///
    /// - Parameters:
    ///   - secrets: values that must never appear in the log (`env.secrets`); each
    ///     occurrence in a payload, run id or type is replaced by `[redacted]` before hashing.
    ///     Values shorter than 4 bytes are ignored.
    ///   - durable: flush the events to disk before the head names them, and the head after
    ///     (`fdatasync` twice: 0.4–1 ms an append here, against about 0.05 ms without).
    ///     Without it a machine crash (not a process crash) can leave a head that names
    ///     events the disk never got, which `verify` cannot tell from a cut log and which
    ///     stops further appends until the log is moved aside.
    /// - Throws: `CorralError` when the folder, log or key cannot be created or read.
    public init(path: String, keyFolder: String, redacting secrets: [String] = [],
                durable: Bool = false) throws(CorralError) {
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        do { try StateFiles.createFolders(folder.isEmpty ? "/" : folder, mode: 0o700) } catch {
            throw CorralError(.setupFailed, operation: "create audit log folder", path: folder, errno: error)
        }
        do { file = try LockedFile.openForAppending(path, mode: 0o600) } catch {
            throw CorralError(.setupFailed, operation: "open audit log", path: path, errno: error,
                              hint: error == .tooManySymbolicLinkLevels ? "the audit log path is a symlink; name the file itself" : nil)
        }
        self.path = path
        self.headPath = AuditHead.path(log: path)
        do { headFile = try LockedFile.openForUpdating(headPath, mode: 0o600) } catch {
            throw CorralError(.setupFailed, operation: "open audit log head", path: headPath, errno: error)
        }
        self.key = try AuditSigningKey.loadOrCreate(folder: keyFolder)
        self.redactor = Redactor(secrets)
        self.durable = durable
    }

    /// Derives the signing key now, rather than at the first signature (see `AuditSigningKey`).
    /// - Throws: when the key folder's public key file was wrong and could not be rewritten.
    public func prepareKey() throws(CorralError) {
        try key.prepareAndPublish()
    }

    /// The public half of the signing key (32 bytes), and its identity as written in signed events.
    public var publicKey: [UInt8] { key.publicKey }
    public var keyIdentity: String { key.identity }

    /// Appends `events` as one write under the log's exclusive lock, chained after the last
    /// event in the file (whoever wrote it), then replaces the signed head.
    ///
    /// - Returns: the last event written.
    /// - Throws: `CorralError` when the log cannot be read or written, or when its end does
    ///   not match its head (lines were removed or rewritten): a damaged log is not extended,
    ///   since a new signature would vouch for the damage.
    @discardableResult
    public func append(_ events: [Entry]) throws(CorralError) -> Position? {
        guard !events.isEmpty else { return nil }
        let payloads = events.map { event in
            guard let payload = redactor.prepare(payload: event.payload, compact: event.compact) else {
                preconditionFailure("audit event \(event.type): the payload is not a JSON object")
            }
            return payload
        }
        return try turn.withLock { _ throws(CorralError) -> Position in try lockAndAppend(events, payloads: payloads) }
    }

    // MARK: - Under the lock

    private func lockAndAppend(_ events: [Entry], payloads: [[UInt8]]) throws(CorralError) -> Position {
        do { try file.lock(.exclusive) } catch {
            throw CorralError(.supervisionFailed, operation: "lock audit log", path: path, errno: error)
        }
        defer { file.unlock() }
        return try appendLocked(events, payloads: payloads)
    }

    private func appendLocked(_ events: [Entry], payloads: [[UInt8]]) throws(CorralError) -> Position {
        let tail = try readTail()
        let head = try readHead()
        try checkEnd(tail, head: head)
        var position = tail.last ?? Position(seq: 0, hash: AuditFormat.zeroHash)
        var bytes: [UInt8] = []
        if tail.fragment > 0 {
            // A writer died in the middle of its write (the head still names the line
            // before): those bytes were never part of the chain. Cut them, and say so.
            do { try file.truncate(to: tail.end) } catch {
                throw CorralError(.supervisionFailed, operation: "cut the incomplete last line of audit log", path: path, errno: error)
            }
            let note = Array("{\"discardedBytes\":\(tail.fragment)}".utf8)
            bytes += try encode(Entry(type: "audit.incomplete-line-removed", run: events[0].run, payload: note),
                                payload: note, after: &position)
        }
        for (event, payload) in zip(events, payloads) {
            bytes += try encode(event, payload: payload, after: &position)
        }
        do {
            try file.append(bytes)
            if durable { try file.synchronizeData() }
        } catch {
            // A short write (a full disk) leaves part of the batch: take it back, so the log
            // ends where the head says it does.
            try? file.truncate(to: tail.end)
            throw CorralError(.supervisionFailed, operation: "append to audit log", path: path, errno: error,
                              hint: error == .noSpace ? "free space where the audit log lives" : nil)
        }
        try writeHead(AuditHead.signed(seq: position.seq, hash: position.hash, by: key), replacing: head)
        return position
    }

    private func encode(_ event: Entry, payload: [UInt8], after position: inout Position) throws(CorralError) -> [UInt8] {
        let seq = position.seq + 1
        let hashed = AuditFormat.hashedPart(seq: seq, time: HostEnvironment.rfc3339Now(), run: redactor.redact(event.run),
                                            type: redactor.redact(event.type), prev: position.hash, payload: payload,
                                            key: event.sign ? key.identity : nil)
        let digest = AuditFormat.sha256(hashed)
        let hash = JSONWriter.hex(digest)
        let signature = event.sign ? try key.sign(AuditFormat.eventSignedMessage(hash: digest)) : nil
        position = Position(seq: seq, hash: hash)
        return AuditFormat.line(hashedPart: hashed, hash: hash, signature: signature)
    }

    /// The last complete line's seq and hash, read backwards from the end (never the whole
    /// file), and how many bytes follow it without a newline.
    private struct Tail {
        var last: Position?
        /// Offset just past the last complete line's newline.
        var end: Int
        var fragment: Int
    }

    private func readTail() throws(CorralError) -> Tail {
        let size: Int
        do { size = try file.size() } catch {
            throw CorralError(.supervisionFailed, operation: "stat audit log", path: path, errno: error)
        }
        var window = 4096
        while true {
            let start = max(0, size - window)
            let bytes: [UInt8]
            do { bytes = try file.read(at: start, count: size - start) } catch {
                throw CorralError(.supervisionFailed, operation: "read audit log", path: path, errno: error)
            }
            guard let lastNewline = bytes.lastIndex(of: 0x0A) else {
                if start == 0 { return Tail(last: nil, end: 0, fragment: size) }
                window *= 4
                continue
            }
            let lineStart = bytes[..<lastNewline].lastIndex(of: 0x0A).map { $0 + 1 }
            if lineStart == nil && start > 0 {
                window *= 4
                continue
            }
            let line = Array(bytes[(lineStart ?? 0)..<lastNewline])
            guard let record = try? AuditRecord.parse(line) else {
                throw damaged("its last complete line is not an audit event")
            }
            return Tail(last: Position(seq: record.seq, hash: record.hash), end: start + lastNewline + 1,
                        fragment: size - (start + lastNewline + 1))
        }
    }

    /// The head; nil while the log has none (an empty head file: no event yet).
    private func readHead() throws(CorralError) -> AuditHead? {
        let bytes: [UInt8]
        do { bytes = try headFile.readAll() } catch {
            throw CorralError(.supervisionFailed, operation: "read audit log head", path: headPath, errno: error)
        }
        if bytes.isEmpty { return nil }
        switch AuditHead.parse(bytes) {
        case .success(let head): return head
        case .failure(let error): throw damaged("its head file \(headPath) is unreadable: \(error.reason)")
        }
    }

    /// Overwrites the head in place: one `pwrite` of a few hundred bytes at offset 0, never
    /// shorter than the head before (seq only grows), so readers holding the lock see the old
    /// head or the new one.
    private func writeHead(_ head: AuditHead, replacing old: AuditHead?) throws(CorralError) {
        let bytes = head.encoded
        do {
            try headFile.write(bytes, at: 0)
            if let old, old.encoded.count > bytes.count { try headFile.truncate(to: bytes.count) }
            if durable { try headFile.synchronizeData() }
        } catch {
            throw CorralError(.supervisionFailed, operation: "write audit log head", path: headPath, errno: error)
        }
    }

    /// The head may lag the log by the lines of a writer that died between its two writes
    /// (or during a write of several pages: then an incomplete line follows them, never
    /// covered by a head); it must never be ahead of the last complete line, nor name another
    /// hash for the same seq.
    private func checkEnd(_ tail: Tail, head: AuditHead?) throws(CorralError) {
        let lastSeq = tail.last?.seq ?? 0
        guard let head else {
            if lastSeq > 0 { throw damaged("it has events but no head file \(headPath)") }
            return
        }
        if head.seq > lastSeq {
            throw damaged("its head records event \(head.seq) but the log ends at \(lastSeq)")
        }
        if head.seq == lastSeq && head.hash != tail.last?.hash {
            throw damaged("its last event does not have the hash its head records")
        }
    }

    private func damaged(_ message: String) -> CorralError {
        CorralError(.supervisionFailed, operation: "append to audit log", path: path, message: message,
                    hint: "run `corral audit verify \(path)`; to start a new log, move this one and its .head aside")
    }
}
