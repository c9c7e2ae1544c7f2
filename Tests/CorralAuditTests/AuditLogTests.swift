import CorralSystem
import Crypto
import Foundation
import Testing
@testable import CorralAudit

/// Writing the log: the line format, permissions, the key, redaction, concurrent appenders
/// and recovery from a writer that died mid-write.
struct AuditLogTests {
    // MARK: - Format

    /// The first line, byte for byte but for the time and hash, and the hash checked with
    /// Corral's own SHA-256 (CCorralLaunch), independent of swift-crypto.
    @Test func lineFormat() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog()
        try log.append([AuditLog.Entry(type: "run.start", run: "r-1", payload: Array(#"{ "goal" : "build" }"#.utf8))])
        let line = String(decoding: try #require(try scratch.lines().first), as: UTF8.self)
        let record = try AuditRecord.parse(Array(line.utf8.dropLast()))
        let zero = String(repeating: "0", count: 64)
        let hashed = #"{"v":1,"seq":1,"time":"\#(record.time)","run":"r-1","type":"run.start","prev":"\#(zero)","payload":{"goal":"build"}"#
        #expect(line == hashed + #","hash":"\#(sha256Hex(Array(hashed.utf8)))"}"# + "\n")
    }

    @Test func signedLineCarriesKeyAndVerifiableSignature() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog()
        try log.append(runEvents("r-1"))
        let record = try AuditRecord.parse(Array(try scratch.lines()[3].dropLast()))
        #expect(record.key == log.keyIdentity)
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: log.publicKey)
        let message = Array("corral-audit-v1 event".utf8) + [0] + (JSONWriter.bytes(fromHex: record.hash) ?? [])
        let signature = try #require(record.signature)
        #expect(publicKey.isValidSignature(JSONWriter.bytes(fromHex: signature) ?? [], for: message))
    }

    @Test func chainContinuesAcrossInstancesAndRuns() throws {
        let scratch = try Scratch()
        try scratch.openLog().append(runEvents("r-1"))
        let second = try scratch.openLog()
        let position = try second.append(runEvents("r-2"))
        #expect(position?.seq == 8)
        #expect(try scratch.verify(key: second.publicKey)
                == .valid(.init(events: 8, runs: 2, signatures: 2, uncheckedSignatures: 0)))
    }

    // MARK: - Files and key

    @Test func ownerOnlyFiles() throws {
        let scratch = try Scratch()
        try scratch.openLog().append(runEvents("r-1"))
        #expect(try scratch.mode(scratch.state) == 0o700)
        #expect(try scratch.mode(scratch.keys) == 0o700)
        #expect(try scratch.mode(scratch.log) == 0o600)
        #expect(try scratch.mode(scratch.head) == 0o600)
        #expect(try scratch.mode(AuditKey.privateKeyPath(folder: scratch.keys)) == 0o600)
        #expect(try scratch.mode(AuditKey.publicKeyPath(folder: scratch.keys)) == 0o644)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.keys).filter { $0.contains(".tmp-") }
        #expect(leftovers == [])
    }

    @Test func keyIsReusedAndPublished() throws {
        let scratch = try Scratch()
        let first = try scratch.openLog()
        let second = try scratch.openLog()
        #expect(first.publicKey == second.publicKey)
        #expect(try AuditKey.readPublicKey(path: AuditKey.publicKeyPath(folder: scratch.keys)) == first.publicKey)
    }

    /// Opening a log with a key reads and checks the key file but derives the Ed25519 key
    /// only when it is first used: an edited public key file is put right then.
    @Test func anEditedPublicKeyFileIsPutRightWhenTheKeyIsDerived() throws {
        let scratch = try Scratch()
        let first = try scratch.openLog()
        let real = first.publicKey
        let path = AuditKey.publicKeyPath(folder: scratch.keys)
        try Data((String(repeating: "ab", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let second = try scratch.openLog()
        #expect(try AuditKey.readPublicKey(path: path) != real, "not derived yet: the file is as found")
        try second.prepareKey()
        #expect(try AuditKey.readPublicKey(path: path) == real)
        #expect(second.publicKey == real)
    }

    /// A private key file that holds no key refuses the log before anything is written.
    @Test func aDamagedPrivateKeyRefusesTheLog() throws {
        let scratch = try Scratch()
        _ = try scratch.openLog()
        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: AuditKey.privateKeyPath(folder: scratch.keys)))
        #expect {
            _ = try scratch.openLog()
        } throws: { error in
            "\(error)".contains("not an Ed25519 private key")
        }
    }

    /// Twenty first uses at once agree on one key.
    @Test func concurrentFirstUseMakesOneKey() throws {
        let scratch = try Scratch()
        let keys = Collected<[UInt8]>()
        let threads = (0..<20).map { _ in
            HostEnvironment.startJoinableThread {
                let log = try? AuditLog(path: scratch.log, keyFolder: scratch.keys)
                keys.add(log?.publicKey ?? [])
            }
        }
        threads.forEach(HostEnvironment.join)
        #expect(keys.all.count == 20)
        #expect(Set(keys.all).count == 1)
        #expect(keys.all.first?.count == 32)
    }

    // MARK: - Redaction

    @Test func secretsNeverReachTheLog() throws {
        let scratch = try Scratch()
        let secrets = ["hunter2-secret", #"pa"ss\word"#, "1234567", "abc"]
        let log = try scratch.openLog(secrets: secrets)
        let payload = #"""
            {"env":"TOKEN=hunter2-secret","escaped":"hunter2\u002dsecret","quoted":"x pa\"ss\\word y",
             "pin":1234567,"nested":{"list":["<hunter2-secret>"]},"short":"abc","hunter2-secret":true}
            """#
        try log.append([AuditLog.Entry(type: "run.start", run: "run-hunter2-secret", payload: Array(payload.utf8))])
        let text = String(decoding: try scratch.lines()[0], as: UTF8.self)
        for forbidden in ["hunter2", #"pa\"ss"#, "1234567"] {
            #expect(!text.contains(forbidden), "\(forbidden) leaked: \(text)")
        }
        let record = try AuditRecord.parse(Array(text.utf8.dropLast()))
        #expect(record.run == "run-[redacted]")
        #expect(record.payload["env"] == .string("TOKEN=[redacted]"))
        #expect(record.payload["escaped"] == .string("[redacted]"))
        #expect(record.payload["quoted"] == .string("x [redacted] y"))
        #expect(record.payload["pin"] == .string("[redacted]"))
        #expect(record.payload["nested"]?["list"] == .array([.string("<[redacted]>")]))
        #expect(record.payload["short"] == .string("abc"))
        #expect(record.payload["[redacted]"] == .bool(true))
        #expect(try scratch.verify(key: log.publicKey) == .valid(.init(events: 1, runs: 1, signatures: 0, uncheckedSignatures: 0)))
    }

    /// A payload its writer vouches is compact (`Entry.compact`, a trailing newline allowed) is
    /// stored as it is when it holds no secret, and redacted like any other when it does.
    @Test func compactPayloadsAreStoredAsTheyAreUnlessTheyHoldASecret() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog(secrets: ["hunter2-secret"])
        let plain = #"{"call":{"path":"/etc/hostname","flags":0},"goal":"g","seq":1}"#
        let secret = #"{"call":{"path":"/tmp/hunter2-secret"},"seq":2}"#
        // The secret spelt with an escape: its bytes differ, its decoded string does not.
        let escaped = #"{"call":{"path":"/tmp/hunter2\u002dsecret"},"seq":3}"#
        try log.append([
            AuditLog.Entry(type: "syscall", run: "r-1", payload: Array((plain + "\n").utf8), compact: true),
            AuditLog.Entry(type: "syscall", run: "r-1", payload: Array((secret + "\n").utf8), compact: true),
            AuditLog.Entry(type: "syscall", run: "r-1", payload: Array((escaped + "\n").utf8), compact: true),
        ])
        let lines = try scratch.lines().map { String(decoding: $0, as: UTF8.self) }
        #expect(lines.count == 3)
        #expect(!lines[2].contains("hunter2"), "\(lines[2])")
        #expect(lines[0].contains(#""payload":\#(plain),"#), "\(lines[0])")
        #expect(!lines[1].contains("hunter2"), "\(lines[1])")
        #expect(try AuditRecord.parse(Array(lines[1].utf8.dropLast())).payload["call"]?["path"] == .string("/tmp/[redacted]"))
        #expect(try scratch.verify(key: log.publicKey) == .valid(.init(events: 3, runs: 1, signatures: 0, uncheckedSignatures: 0)))
    }

    // MARK: - Concurrency

    /// Twenty instances (separate open file descriptions, so `flock` contends) on twenty
    /// threads, each appending five runs in three batches: one unbroken chain.
    @Test func twentyConcurrentAppenders() throws {
        let scratch = try Scratch()
        let failures = Collected<String>()
        let threads = (0..<20).map { writer in
            HostEnvironment.startJoinableThread {
                do {
                    let log = try AuditLog(path: scratch.log, keyFolder: scratch.keys)
                    for run in 0..<5 {
                        let events = runEvents("w\(writer)-r\(run)")
                        try log.append([events[0]])
                        try log.append([events[1], events[2]])
                        try log.append([events[3]])
                    }
                } catch {
                    failures.add("\(error)")
                }
            }
        }
        threads.forEach(HostEnvironment.join)
        #expect(failures.all.isEmpty)
        let key = try AuditKey.readPublicKey(path: AuditKey.publicKeyPath(folder: scratch.keys))
        #expect(try scratch.verify(key: key) == .valid(.init(events: 400, runs: 100, signatures: 100, uncheckedSignatures: 0)))
        // Each run's own events stay in order.
        var types: [String: [String]] = [:]
        for line in try scratch.lines() {
            let record = try AuditRecord.parse(Array(line.dropLast()))
            types[record.run, default: []].append(record.type)
        }
        #expect(types.count == 100)
        #expect(types.values.allSatisfy { $0 == ["run.start", "denial", "denial", "run.end"] })
    }

    // MARK: - Damage

    /// A writer that died mid-write left part of a line; the next append removes it (it was
    /// never in the chain: the head names the line before) and records that it did.
    @Test func incompleteLineFromADeadWriterIsRemovedAndRecorded() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog()
        try log.append(Array(runEvents("r-1").prefix(2)))
        let handle = try #require(FileHandle(forWritingAtPath: scratch.log))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"v":1,"seq":3,"time":"2026"#.utf8))
        handle.closeFile()
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 3, problem: .incompleteLine))
        try log.append([runEvents("r-1")[3]])
        let records = try scratch.lines().map { try AuditRecord.parse(Array($0.dropLast())) }
        #expect(records.map(\.type) == ["run.start", "denial", "audit.incomplete-line-removed", "run.end"])
        #expect(records[2].payload["discardedBytes"] == .number("27"))
        #expect(try scratch.verify(key: log.publicKey) == .valid(.init(events: 4, runs: 1, signatures: 1, uncheckedSignatures: 0)))
    }

    /// A writer killed during a write of several pages: some of its lines complete (after the
    /// head), then part of one. The complete ones stay (they chain), the part goes.
    @Test func deadWriterWithCompleteAndPartialLines() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog()
        try log.append(Array(runEvents("r-1").prefix(2)))
        var lines = try scratch.lines()
        lines.append(try forge(lines[1], seq: 3, prev: try hash(of: lines[1])))
        lines.append(Array(#"{"v":1,"seq":4,"#.utf8))
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 4, problem: .incompleteLine))
        try log.append([runEvents("r-1")[3]])
        let records = try scratch.lines().map { try AuditRecord.parse(Array($0.dropLast())) }
        #expect(records.map(\.type) == ["run.start", "denial", "denial", "audit.incomplete-line-removed", "run.end"])
        #expect(try scratch.verify(key: log.publicKey) == .valid(.init(events: 5, runs: 1, signatures: 1, uncheckedSignatures: 0)))
    }

    /// A log whose last lines were removed is not extended (a new head would vouch for it).
    @Test func truncatedLogIsNotExtended() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog()
        try log.append(runEvents("r-1"))
        try scratch.write(lines: Array(try scratch.lines().prefix(3)))
        let error = try #require(throws: CorralError.self) { try log.append(runEvents("r-2")) }
        #expect(error.message == "its head records event 4 but the log ends at 3")
        #expect(try scratch.lines().count == 3)
    }

    /// A payload that is not a JSON object is a programmer error.
    @Test func payloadMustBeAnObject() async throws {
        await #expect(processExitsWith: .failure) {
            let scratch = try Scratch()
            try scratch.openLog().append([AuditLog.Entry(type: "x", run: "r", payload: Array("[1]".utf8))])
        }
    }
}

/// Results gathered from threads.
final class Collected<Value: Sendable>: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var values: [Value] = []
    func add(_ value: Value) { lock.withLock { values.append(value) } }
    var all: [Value] { lock.withLock { values } }
}
