/// The commit journal: what a commit will do, written and made durable before the first
/// change to a real folder, and the mark of its point of no return.
///
/// The format is text with length-prefixed strings (netstrings: `5:a/b.c`), so any byte in a
/// file name — a newline, a space, a control character — is unambiguous, and a person can
/// still read the file:
///
///     corral-journal 1
///     staging 27:.corral-commit-0123456789ab
///     layer 9:/src/proj 26:/state/runs/r1/layers/0/upper
///     op file 0 9:src/a.txt 0 0644 - - 1714000000000000000 1714000000000000000 0:
///     op remove 0 7:old.txt -1 0 - - 0 0 0:
///     end 2 <sha256 of every byte above this line>
///     commit
///
/// An `op` line is: kind, layer index, path (relative to the layer), staged copy number, mode
/// (octal), owner uid and gid (`-` when owners are not kept), access and modification time
/// (ns), symlink target. The file is written whole under a temporary name and renamed into
/// place (a journal is complete or absent); `commit` is appended, and flushed, when every
/// staged copy exists: before it, recovery rolls back; after it, recovery rolls forward.
struct Journal: Sendable, Hashable {
    /// The name of the staging folder in each layer's real folder.
    var stagingName: PathBytes
    var layers: [WriteLayer]
    var operations: [CommitOperation]
    /// The point of no return was passed.
    var committed = false

    static let commitMark = Array("commit\n".utf8)
    private static let magic = Array("corral-journal 1\n".utf8)

    func encoded() -> [UInt8] {
        var out = Self.magic
        func netstring(_ bytes: [UInt8]) { out += Array("\(bytes.count):".utf8) + bytes }
        func text(_ value: String) { out += Array(value.utf8) }
        text("staging ")
        netstring(stagingName)
        text("\n")
        for layer in layers {
            text("layer ")
            netstring(Array(layer.real.utf8))
            text(" ")
            netstring(Array(layer.upper.utf8))
            text("\n")
        }
        for op in operations {
            let owner = op.owner.map { "\($0.uid) \($0.gid)" } ?? "- -"
            text("op \(op.kind.rawValue) \(op.layer) ")
            netstring(op.path)
            text(" \(op.staged) \(String(op.mode, radix: 8)) \(owner) \(op.accessTime) \(op.modifyTime) ")
            netstring(op.target)
            text("\n")
        }
        let digest = sha256Hex(out)
        text("end \(operations.count) \(digest)\n")
        return out
    }

    /// - Throws: `CorralError` naming `path` for anything but a complete journal written by
    ///   `encoded()` (with or without the commit mark).
    static func decode(_ bytes: [UInt8], path: String) throws(CorralError) -> Journal {
        func bad(_ what: String) -> CorralError {
            CorralError(.supervisionFailed, operation: "read the commit journal", path: path,
                        message: "not a complete Corral journal (\(what))",
                        hint: "the journal is written whole and renamed into place, so this is damage from outside "
                            + "Corral; compare the real folders with `corral diff` before removing it")
        }
        var cursor = Cursor(bytes: bytes)
        guard cursor.literal(magic) else { throw bad("header") }
        guard cursor.literal("staging "), let staging = cursor.netstring(), cursor.literal("\n"),
              staging.first == 0x2E, !staging.contains(PathBytes.slash)
        else { throw bad("staging line") }
        var journal = Journal(stagingName: staging, layers: [], operations: [])
        while cursor.literal("layer ") {
            guard let real = cursor.netstring().flatMap({ String(validating: $0, as: UTF8.self) }), cursor.literal(" "),
                  let upper = cursor.netstring().flatMap({ String(validating: $0, as: UTF8.self) }), cursor.literal("\n")
            else { throw bad("layer line") }
            journal.layers.append(WriteLayer(real: real, upper: upper))
        }
        while cursor.literal("op ") {
            guard let kind = cursor.token().flatMap({ CommitOperation.Kind(rawValue: $0) }), cursor.literal(" "),
                  let layer = cursor.integer(), journal.layers.indices.contains(Int(layer)), cursor.literal(" "),
                  let path = cursor.netstring(), cursor.literal(" "),
                  let staged = cursor.integer(), cursor.literal(" "),
                  let mode = cursor.token().flatMap({ UInt32($0, radix: 8) }), cursor.literal(" "),
                  let uid = cursor.token(), cursor.literal(" "), let gid = cursor.token(), cursor.literal(" "),
                  let accessTime = cursor.integer(), cursor.literal(" "),
                  let modifyTime = cursor.integer(), cursor.literal(" "),
                  let target = cursor.netstring(), cursor.literal("\n")
            else { throw bad("operation \(journal.operations.count + 1)") }
            // A path must stay a relative path without `.`/`..` components (it is opened with
            // RESOLVE_BENEATH anyway).
            let components = path.split(separator: PathBytes.slash, omittingEmptySubsequences: false)
            guard !path.isEmpty, !components.contains(where: { $0.isEmpty || $0 == [0x2E] || $0 == [0x2E, 0x2E] })
            else { throw bad("operation \(journal.operations.count + 1): path") }
            var owner: CommitOperation.Owner?
            if uid != "-" || gid != "-" {
                guard let u = UInt32(uid), let g = UInt32(gid) else { throw bad("operation \(journal.operations.count + 1): owner") }
                owner = .init(uid: u, gid: g)
            }
            journal.operations.append(CommitOperation(kind: kind, layer: Int(layer), path: path, staged: Int(staged),
                                                      mode: mode, owner: owner, accessTime: accessTime,
                                                      modifyTime: modifyTime, target: target))
        }
        let bodyEnd = cursor.offset
        guard cursor.literal("end "), let count = cursor.integer(), count == journal.operations.count,
              cursor.literal(" "), let digest = cursor.token(), cursor.literal("\n")
        else { throw bad("end line") }
        guard digest == sha256Hex(Array(bytes[..<bodyEnd])) else { throw bad("checksum") }
        // What follows is the commit mark, or a torn append of it (no mark: never acted on).
        let rest = Array(bytes[cursor.offset...])
        journal.committed = rest == commitMark
        guard journal.committed || commitMark.starts(with: rest) else { throw bad("after the end line") }
        return journal
    }
}

/// A reader of the journal's and the baseline's text formats.
struct Cursor {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    mutating func literal(_ expected: String) -> Bool { literal(Array(expected.utf8)) }

    mutating func literal(_ expected: [UInt8]) -> Bool {
        guard bytes.count - offset >= expected.count, bytes[offset..<(offset + expected.count)].elementsEqual(expected)
        else { return false }
        offset += expected.count
        return true
    }

    /// Up to the next space or newline (at least one byte).
    mutating func token() -> String? {
        let start = offset
        while offset < bytes.count, bytes[offset] != 0x20, bytes[offset] != 0x0A { offset += 1 }
        guard offset > start else { return nil }
        return String(validating: bytes[start..<offset], as: UTF8.self)
    }

    mutating func integer() -> Int64? { token().flatMap { Int64($0) } }

    /// `<decimal length>:<bytes>`.
    mutating func netstring() -> [UInt8]? {
        let start = offset
        while offset < bytes.count, (0x30...0x39).contains(bytes[offset]), offset - start < 10 { offset += 1 }
        guard offset > start, offset < bytes.count, bytes[offset] == 0x3A,
              let length = Int(String(decoding: bytes[start..<offset], as: UTF8.self)),
              bytes.count - (offset + 1) >= length
        else { return nil }
        let value = Array(bytes[(offset + 1)..<(offset + 1 + length)])
        offset += 1 + length
        return value
    }
}
