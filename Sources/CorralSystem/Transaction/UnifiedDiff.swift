import Glibc
import SystemPackage

/// Line diffs: Myers' O(ND) algorithm in its linear-space form (the middle snake, "An O(ND)
/// Difference Algorithm and Its Variations", 1986, section 4b), printed in the unified
/// format of GNU diff.
enum LineDiff {
    enum Edit: Equatable {
        case keep(old: Int, new: Int)
        case delete(old: Int)
        case insert(new: Int)
    }

    /// A shortest edit script turning `old` into `new` (elements compared by value).
    static func edits(_ old: [Int], _ new: [Int]) -> [Edit] {
        var result: [Edit] = []
        result.reserveCapacity(max(old.count, new.count))
        diff(old, 0, old.count, new, 0, new.count, into: &result)
        return result
    }

    private static func diff(_ a: [Int], _ aLow: Int, _ aHigh: Int, _ b: [Int], _ bLow: Int, _ bHigh: Int,
                             into result: inout [Edit]) {
        var aLow = aLow, bLow = bLow, aHigh = aHigh, bHigh = bHigh
        // Common prefix and suffix: cheap, and the usual shape of an edit.
        while aLow < aHigh, bLow < bHigh, a[aLow] == b[bLow] {
            result.append(.keep(old: aLow, new: bLow))
            aLow += 1
            bLow += 1
        }
        var suffix = 0
        while aHigh - suffix > aLow, bHigh - suffix > bLow, a[aHigh - suffix - 1] == b[bHigh - suffix - 1] { suffix += 1 }
        aHigh -= suffix
        bHigh -= suffix
        defer { for i in 0..<suffix { result.append(.keep(old: aHigh + i, new: bHigh + i)) } }
        if aLow == aHigh {
            for j in bLow..<bHigh { result.append(.insert(new: j)) }
            return
        }
        if bLow == bHigh {
            for i in aLow..<aHigh { result.append(.delete(old: i)) }
            return
        }
        guard let (x, y) = middleSnake(a, aLow, aHigh, b, bLow, bHigh) else {
            for i in aLow..<aHigh { result.append(.delete(old: i)) }
            for j in bLow..<bHigh { result.append(.insert(new: j)) }
            return
        }
        diff(a, aLow, x, b, bLow, y, into: &result)
        diff(a, x, aHigh, b, y, bHigh, into: &result)
    }

    /// A point on a shortest path that splits the problem in two, found by searching from
    /// both ends at once until the paths meet (after diff-match-patch's `diff_bisect`: the
    /// backward search runs on the reversed sequences, so its diagonal k is the forward
    /// diagonal `delta - k`). Both sequences are non-empty.
    private static func middleSnake(_ a: [Int], _ aLow: Int, _ aHigh: Int, _ b: [Int], _ bLow: Int,
                                    _ bHigh: Int) -> (Int, Int)? {
        let n = aHigh - aLow, m = bHigh - bLow
        let maxD = (n + m + 1) / 2
        let offset = maxD
        let size = 2 * maxD + 2
        var forward = [Int](repeating: -1, count: size)
        var backward = [Int](repeating: -1, count: size)
        forward[offset + 1] = 0
        backward[offset + 1] = 0
        let delta = n - m
        let odd = delta & 1 != 0
        // Diagonals that ran off the grid are skipped in later rounds.
        var forwardStart = 0, forwardEnd = 0, backwardStart = 0, backwardEnd = 0
        for d in 0..<maxD {
            for k in stride(from: -d + forwardStart, through: d - forwardEnd, by: 2) {
                var x = (k == -d || (k != d && forward[offset + k - 1] < forward[offset + k + 1]))
                    ? forward[offset + k + 1] : forward[offset + k - 1] + 1
                var y = x - k
                while x < n, y < m, a[aLow + x] == b[bLow + y] {
                    x += 1
                    y += 1
                }
                forward[offset + k] = x
                if x > n {
                    forwardEnd += 2
                } else if y > m {
                    forwardStart += 2
                } else if odd {
                    let other = offset + delta - k
                    if other >= 0, other < size, backward[other] != -1, x >= n - backward[other] {
                        return (aLow + x, bLow + y)
                    }
                }
            }
            for k in stride(from: -d + backwardStart, through: d - backwardEnd, by: 2) {
                var x = (k == -d || (k != d && backward[offset + k - 1] < backward[offset + k + 1]))
                    ? backward[offset + k + 1] : backward[offset + k - 1] + 1
                var y = x - k
                while x < n, y < m, a[aHigh - x - 1] == b[bHigh - y - 1] {
                    x += 1
                    y += 1
                }
                backward[offset + k] = x
                if x > n {
                    backwardEnd += 2
                } else if y > m {
                    backwardStart += 2
                } else if !odd {
                    let other = offset + delta - k
                    if other >= 0, other < size, forward[other] != -1 {
                        let fx = forward[other]
                        let fy = fx - (delta - k)
                        if fx >= n - x { return (aLow + fx, bLow + fy) }
                    }
                }
            }
        }
        return nil
    }

    // MARK: - Unified format

    /// The unified diff of two texts (`diff -u` output from the first `---` line), or nil
    /// when they are equal.
    static func unified(old: [UInt8], new: [UInt8], oldLabel: String, newLabel: String, context: Int) -> String? {
        let oldLines = lines(old), newLines = lines(new)
        var ids: [ArraySlice<UInt8>: Int] = [:]
        func id(_ line: ArraySlice<UInt8>) -> Int {
            if let known = ids[line] { return known }
            ids[line] = ids.count
            return ids.count - 1
        }
        let script = edits(oldLines.map(id), newLines.map(id))
        let changed = script.indices.filter { if case .keep = script[$0] { return false } else { return true } }
        guard !changed.isEmpty else { return nil }

        var out = "--- \(oldLabel)\n+++ \(newLabel)\n"
        // Hunks: changes less than 2 × context unchanged lines apart share one.
        var groups: [(first: Int, last: Int)] = []
        for index in changed {
            if let last = groups.last, index - last.last - 1 <= 2 * context {
                groups[groups.count - 1].last = index
            } else {
                groups.append((index, index))
            }
        }
        // Lines of each file before each edit.
        var oldBefore = [Int](repeating: 0, count: script.count + 1)
        var newBefore = [Int](repeating: 0, count: script.count + 1)
        for (i, edit) in script.enumerated() {
            oldBefore[i + 1] = oldBefore[i] + (isInsert(edit) ? 0 : 1)
            newBefore[i + 1] = newBefore[i] + (isDelete(edit) ? 0 : 1)
        }
        for group in groups {
            let start = max(0, group.first - context)
            let end = min(script.count, group.last + context + 1)
            let oldCount = oldBefore[end] - oldBefore[start], newCount = newBefore[end] - newBefore[start]
            out += "@@ -\(range(oldBefore[start], oldCount)) +\(range(newBefore[start], newCount)) @@\n"
            for edit in script[start..<end] {
                switch edit {
                case .keep(let o, _): out += line(" ", oldLines[o])
                case .delete(let o): out += line("-", oldLines[o])
                case .insert(let n): out += line("+", newLines[n])
                }
            }
        }
        return out
    }

    private static func isInsert(_ edit: Edit) -> Bool { if case .insert = edit { true } else { false } }
    private static func isDelete(_ edit: Edit) -> Bool { if case .delete = edit { true } else { false } }

    /// GNU's hunk range: `start,count`, `start` alone for one line, the line before for none.
    private static func range(_ before: Int, _ count: Int) -> String {
        switch count {
        case 0: "\(before),0"
        case 1: "\(before + 1)"
        default: "\(before + 1),\(count)"
        }
    }

    /// The lines of `text`, each with its newline (the last may lack one).
    private static func lines(_ text: [UInt8]) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var start = 0
        for (i, byte) in text.enumerated() where byte == 0x0A {
            result.append(text[start...i])
            start = i + 1
        }
        if start < text.count { result.append(text[start...]) }
        return result
    }

    /// One line of a hunk; only a file's last line can lack its newline.
    private static func line(_ mark: String, _ bytes: ArraySlice<UInt8>) -> String {
        let text = mark + String(decoding: bytes, as: UTF8.self)
        return bytes.last == 0x0A ? text : text + "\n\\ No newline at end of file\n"
    }
}

extension Transaction {
    /// Files larger than this are not diffed (`unifiedDiff` returns nil).
    public static let diffSizeLimit = 8 << 20

    /// The unified diff (`diff -u` format, `context` lines around each change) of a file the
    /// change adds, modifies, deletes or replaces: the real file against the upper's.
    /// Absent sides are `/dev/null`. Control characters in the path are escaped; the
    /// contents are not (a caller printing to a terminal escapes them).
    ///
    /// - Returns: nil when there is no text to show: not a file on either side, contents
    ///   equal, binary (a NUL byte, or not UTF-8), larger than ``diffSizeLimit``, or unreadable.
    public static func unifiedDiff(_ change: StagedChange, layer: WriteLayer, context: Int = 3) -> String? {
        guard change.path == layer.real || change.path.hasPrefix(layer.real + "/") else { return nil }
        let relative = Array(change.path.utf8.dropFirst(layer.real.utf8.count + 1))
        guard !relative.isEmpty else { return nil }
        let old = change.oldType == .file && change.kind != .added ? readRegular(layer.real, relative) : nil
        let new = change.type == .file && change.kind != .deleted ? readRegular(layer.upper, relative) : nil
        if change.oldType == .file && change.kind != .added && old == nil { return nil }
        if change.type == .file && change.kind != .deleted && new == nil { return nil }
        guard old != nil || new != nil else { return nil }
        for side in [old, new] {
            guard let bytes = side else { continue }
            if bytes.contains(0) || String(validating: bytes, as: UTF8.self) == nil { return nil }
        }
        let label = CorralError.printable(change.path)
        return LineDiff.unified(old: old ?? [], new: new ?? [], oldLabel: old == nil ? "/dev/null" : label,
                                newLabel: new == nil ? "/dev/null" : label, context: max(0, context))
    }

    /// The whole of the regular file `relative` below `root`, reached without symlinks; nil
    /// when it is not a regular file, too large, or unreadable.
    private static func readRegular(_ root: String, _ relative: PathBytes) -> [UInt8]? {
        guard let folder = try? FileDescriptor.openFolder(root, listing: false) else { return nil }
        defer { folder.closeChecked() }
        guard let file = try? folder.openBeneath(relative, O_RDONLY | O_NONBLOCK) else { return nil }
        defer { file.closeChecked() }
        guard let status = try? file.status(), status.kind == .file, status.size <= UInt64(diffSizeLimit) else { return nil }
        guard let bytes = try? file.readFully(count: Int(status.size) + 1), bytes.count <= diffSizeLimit else { return nil }
        return bytes
    }
}
