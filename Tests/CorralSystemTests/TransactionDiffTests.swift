import Glibc
import Testing
@testable import CorralSystem

/// `unifiedDiff` output in GNU's format, and Myers' algorithm against a plain LCS table.
struct TransactionDiffTests {
    @Test func aSmallEditGivesOneHunk() throws {
        let s = try TransactionScratch()
        s.file(s.real, "notes.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
        s.file(s.upper, "notes.txt", "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n")
        let change = try #require(try Transaction.changes([s.layer]).first)
        let path = s.real + "/notes.txt"
        #expect(Transaction.unifiedDiff(change, layer: s.layer) == """
            --- \(path)
            +++ \(path)
            @@ -1,10 +1,11 @@
             a
             b
             c
            -d
            +D
             e
             f
             g
             h
             i
             j
            +k

            """)
        #expect(Transaction.unifiedDiff(change, layer: s.layer, context: 1) == """
            --- \(path)
            +++ \(path)
            @@ -3,3 +3,3 @@
             c
            -d
            +D
             e
            @@ -10 +10,2 @@
             j
            +k

            """)
    }

    @Test func addedDeletedAndUnterminatedFiles() throws {
        let s = try TransactionScratch()
        s.file(s.upper, "new.txt", "one\ntwo")
        s.file(s.real, "old.txt", "x\ny")
        s.file(s.upper, "old.txt", "x\nz\n")
        s.file(s.real, "gone.txt", "bye\n")
        s.whiteout("gone.txt")
        s.file(s.upper, "blob.bin", "a\u{0}b")
        let changes = try Transaction.changes([s.layer])
        func diff(_ name: String) -> String? {
            changes.first { $0.path.hasSuffix("/" + name) }.flatMap { Transaction.unifiedDiff($0, layer: s.layer) }
        }
        #expect(diff("new.txt") == """
            --- /dev/null
            +++ \(s.real)/new.txt
            @@ -0,0 +1,2 @@
            +one
            +two
            \\ No newline at end of file

            """)
        #expect(diff("old.txt") == """
            --- \(s.real)/old.txt
            +++ \(s.real)/old.txt
            @@ -1,2 +1,2 @@
             x
            -y
            \\ No newline at end of file
            +z

            """)
        #expect(diff("gone.txt") == """
            --- \(s.real)/gone.txt
            +++ /dev/null
            @@ -1 +0,0 @@
            -bye

            """)
        #expect(diff("blob.bin") == nil)
    }

    /// The length of a longest common subsequence, by the quadratic table.
    static func lcs(_ a: [Int], _ b: [Int]) -> Int {
        var row = [Int](repeating: 0, count: b.count + 1)
        for x in a {
            var previous = 0
            for j in 1...max(1, b.count) where j <= b.count {
                let saved = row[j]
                row[j] = x == b[j - 1] ? previous + 1 : max(row[j], row[j - 1])
                previous = saved
            }
        }
        return row[b.count]
    }

    @Test func myersFindsAShortestEditScript() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let a = (0..<Int.random(in: 0...40, using: &generator)).map { _ in Int.random(in: 0...4, using: &generator) }
            let b = (0..<Int.random(in: 0...40, using: &generator)).map { _ in Int.random(in: 0...4, using: &generator) }
            let script = LineDiff.edits(a, b)
            // The script turns a into b, in order.
            var rebuilt: [Int] = []
            var nextOld = 0
            for edit in script {
                switch edit {
                case .keep(let old, let new):
                    #expect(old == nextOld && a[old] == b[new])
                    rebuilt.append(a[old])
                    nextOld += 1
                case .delete(let old):
                    #expect(old == nextOld)
                    nextOld += 1
                case .insert(let new): rebuilt.append(b[new])
                }
            }
            #expect(rebuilt == b && nextOld == a.count)
            let kept = script.filter { if case .keep = $0 { true } else { false } }.count
            #expect(kept == Self.lcs(a, b), "a=\(a) b=\(b)")
        }
    }
}
