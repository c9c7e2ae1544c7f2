import CorralSystem
import Foundation
import Testing
@testable import CorralAudit

/// A state folder of its own per test, removed afterwards.
final class Scratch: Sendable {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.path + "/corral-audit-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var state: String { root + "/state" }
    var log: String { StateDirectory.auditLog(state: state) }
    var keys: String { StateDirectory.keyFolder(state: state) }
    var head: String { log + ".head" }

    func openLog(secrets: [String] = []) throws -> AuditLog {
        try AuditLog(path: log, keyFolder: keys, redacting: secrets)
    }

    /// The log's lines, newlines included.
    func lines() throws -> [[UInt8]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log)))
        var result: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in bytes {
            current.append(byte)
            if byte == 0x0A {
                result.append(current)
                current = []
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    func write(lines: [[UInt8]]) throws {
        try Data(lines.flatMap { $0 }).write(to: URL(fileURLWithPath: log))
    }

    func verify(key: [UInt8]? = nil) throws -> AuditVerification {
        try AuditVerifier.verify(log: log, publicKey: key)
    }

    func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }
}

/// The events of one run: start, two denials, a signed end.
func runEvents(_ run: String) -> [AuditLog.Entry] {
    [
        AuditLog.Entry(type: "run.start", run: run, payload: Array(#"{"goal":"build","agent":"test"}"#.utf8)),
        AuditLog.Entry(type: "denial", run: run, payload: Array(#"{"syscall":"connect","errno":"EPERM"}"#.utf8)),
        AuditLog.Entry(type: "denial", run: run, payload: Array(#"{"path":"/etc/shadow","errno":"EACCES"}"#.utf8)),
        AuditLog.Entry(type: "run.end", run: run, payload: Array(#"{"exit":0,"wall":1.25}"#.utf8), sign: true),
    ]
}

/// A log of three runs, 12 lines; lines 4, 8 and 12 are signed.
func threeRunLog(_ scratch: Scratch) throws -> AuditLog {
    let log = try scratch.openLog()
    for run in ["r-1", "r-2", "r-3"] { try log.append(runEvents(run)) }
    return log
}

/// `line` (newline included) re-encoded as a forger without the key would: new fields,
/// a freshly computed hash, the signature kept as it was.
func forge(_ line: [UInt8], seq: UInt64? = nil, prev: String? = nil, key: String? = nil) throws -> [UInt8] {
    let record = try AuditRecord.parse(Array(line.dropLast()))
    let start = try #require(line.firstRange(of: Array(#""payload":"#.utf8))).upperBound
    let end = record.key != nil ? try #require(line.lastRange(of: Array(#","key":""#.utf8))).lowerBound : record.hashedEnd
    let hashed = AuditFormat.hashedPart(seq: seq ?? record.seq, time: record.time, run: record.run, type: record.type,
                                        prev: prev ?? record.prev, payload: Array(line[start..<end]), key: key ?? record.key)
    return AuditFormat.line(hashedPart: hashed, hash: JSONWriter.hex(AuditFormat.sha256(hashed)), signature: record.signature)
}

/// The `hash` of a line.
func hash(of line: [UInt8]) throws -> String {
    try AuditRecord.parse(Array(line.dropLast())).hash
}

extension Array where Element == UInt8 {
    func lastRange(of needle: [UInt8]) -> Range<Int>? {
        guard needle.count <= count else { return nil }
        for start in stride(from: count - needle.count, through: 0, by: -1) where self[start..<start + needle.count].elementsEqual(needle) {
            return start..<start + needle.count
        }
        return nil
    }
}
