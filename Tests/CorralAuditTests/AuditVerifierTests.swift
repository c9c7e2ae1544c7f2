import CorralSystem
import Foundation
import Testing
@testable import CorralAudit

/// Every kind of tampering, caught at the exact line with the exact reason. The log: three
/// runs of four events (lines 4, 8 and 12 are signed run ends).
struct AuditVerifierTests {
    @Test func intactLogPasses() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        let summary = AuditVerification.Summary(events: 12, runs: 3, signatures: 3, uncheckedSignatures: 0)
        #expect(try scratch.verify(key: log.publicKey) == .valid(summary))
        let unchecked = AuditVerification.Summary(events: 12, runs: 3, signatures: 0, uncheckedSignatures: 3)
        #expect(try scratch.verify() == .valid(unchecked))
    }

    @Test func editedByteInPayload() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        let text = String(decoding: lines[5], as: UTF8.self).replacingOccurrences(of: "EPERM", with: "EPERN")
        lines[5] = Array(text.utf8)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 6, problem: .hashMismatch))
    }

    /// Each byte of a signed line (its newline aside), changed on its own, is caught at that line.
    @Test func everyEditedByteIsCaughtAtItsLine() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        let original = try scratch.lines()
        var missed: [Int] = []
        for offset in 0..<(original[7].count - 1) {
            var lines = original
            lines[7][offset] ^= 0x01
            try scratch.write(lines: lines)
            guard case .invalid(let line, _) = try scratch.verify(key: log.publicKey), line == 8 else {
                missed.append(offset)
                continue
            }
        }
        #expect(missed == [])
    }

    @Test func removedLine() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.remove(at: 5)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 6, problem: .sequenceGap(expected: 6, found: 7)))
    }

    @Test func reorderedPair() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.swapAt(5, 6)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 6, problem: .sequenceGap(expected: 6, found: 7)))
    }

    @Test func insertedCopyOfALine() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.insert(lines[4], at: 5)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 6, problem: .sequenceGap(expected: 6, found: 5)))
    }

    /// A forged line that fits the chain (right seq, prev and hash) pushes the next one out of place.
    @Test func insertedForgedLine() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.insert(try forge(lines[5], seq: 6, prev: try hash(of: lines[4])), at: 5)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 7, problem: .sequenceGap(expected: 7, found: 6)))
    }

    /// A forger who renumbers and re-hashes everything after an inserted line is stopped by
    /// the next signed event: its signature covers the old hash.
    @Test func rewrittenChainFailsAtTheNextSignature() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.insert(lines[4], at: 5)
        for index in 5..<lines.count {
            lines[index] = try forge(lines[index], seq: UInt64(index + 1), prev: try hash(of: lines[index - 1]))
        }
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 9, problem: .badSignature))
    }

    @Test func truncatedInsideTheLastLine() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines[11].removeLast(10)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 12, problem: .incompleteLine))
    }

    /// Whole lines cut from the end leave a valid chain; the signed head still records them.
    @Test func truncatedWholeLines() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        try scratch.write(lines: Array(try scratch.lines().prefix(10)))
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 11, problem: .eventsMissing(head: 12, last: 10)))
    }

    @Test func removedHead() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        try FileManager.default.removeItem(atPath: scratch.head)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 13, problem: .headMissing))
    }

    /// Lines appended behind the head's back (chained, hashed, but not under a new head).
    @Test func appendedLineNotCoveredByHead() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines.append(try forge(lines[10], seq: 13, prev: try hash(of: lines[11])))
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 13, problem: .notCoveredByHead(head: 12)))
    }

    @Test func signatureByAnotherKeyIsAnUnknownKey() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        let other = try Scratch()
        let otherLog = try other.openLog()
        #expect(try scratch.verify(key: otherLog.publicKey)
                == .invalid(line: 4, problem: .unknownKey(log.keyIdentity)))
    }

    /// The other key's identity written into the line (hash recomputed): the signature fails.
    @Test func signatureClaimingAnotherKeyIsBad() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        let otherLog = try Scratch().openLog()
        var lines = try scratch.lines()
        lines[3] = try forge(lines[3], key: otherLog.keyIdentity)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: otherLog.publicKey) == .invalid(line: 4, problem: .badSignature))
    }

    @Test func notJSON() throws {
        let scratch = try Scratch()
        let log = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines[2] = Array("not json\n".utf8)
        try scratch.write(lines: lines)
        #expect(try scratch.verify(key: log.publicKey) == .invalid(line: 3, problem: .badJSON("invalid literal (expected null) at byte 1")))
    }

    @Test func missingLogIsAnError() throws {
        let scratch = try Scratch()
        #expect(throws: CorralError.self) { try scratch.verify() }
    }

    @Test func emptyLogIsValid() throws {
        let scratch = try Scratch()
        _ = try scratch.openLog()
        #expect(try scratch.verify() == .valid(.init(events: 0, runs: 0, signatures: 0, uncheckedSignatures: 0)))
    }
}
