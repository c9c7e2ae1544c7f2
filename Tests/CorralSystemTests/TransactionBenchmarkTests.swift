import Glibc
import Testing
@testable import CorralSystem

/// Commit and discard of 10,000 small files against `cp -a` and `rm -rf`: medians, on the
/// disk (/tmp) and on tmpfs (/dev/shm: the syscall and CPU cost without the device). Off by
/// default; run it optimised:
///
///     CORRAL_TXN_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter TransactionBenchmark
///
/// Every timed operation starts after a `sync`. Nothing is deleted until every creating
/// measurement is done, and commit and `cp -a` alternate which goes first: ext4 (without a
/// journal, as here) makes new inodes slowly for a while after mass deletions — its
/// allocator checks each candidate's deletion time, `recently_deleted()` in ext4/ialloc.c —
/// which otherwise dominates whatever runs next.
@Suite(.serialized, .enabled(if: HostEnvironment.variable("CORRAL_TXN_BENCH") == "1", "set CORRAL_TXN_BENCH=1"))
struct TransactionBenchmarkTests {
    /// 10,000 files of 100–1,100 bytes in 100 folders below `base`; `variant` changes the bytes.
    static func fill(_ base: String, variant: UInt8) {
        mkdir(base, 0o755)
        for f in 0..<100 {
            let folder = base + "/d\(f)"
            mkdir(folder, 0o755)
            for i in 0..<100 {
                let bytes = [UInt8](repeating: variant &+ UInt8(truncatingIfNeeded: i), count: 100 + (i * 37) % 1000)
                let fd = open(folder + "/f\(i).txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
        }
    }

    static func time(_ body: () throws -> Void) rethrows -> Double {
        sync()
        let start = HostEnvironment.monotonicSeconds()
        try body()
        return (HostEnvironment.monotonicSeconds() - start) * 1000
    }

    @Test(arguments: ["/tmp", "/dev/shm"])
    func commitAndDiscardAgainstCpAndRm(_ place: String) throws {
        let rounds = 7
        let scratch = try TransactionScratch("txn-bench", in: place)
        var results: [String: [Double]] = [:]
        for round in 0..<rounds {
            for changed in [false, true] {
                let label = changed ? "modified" : "new"
                let root = scratch.root + "/\(round)-\(label)"
                let (upper, real, copy) = (root + "/upper", root + "/real", root + "/copy")
                let (baseline, journal) = (root + "/baseline", root + "/journal")
                mkdir(root, 0o755)
                Self.fill(upper, variant: 1)
                if changed {
                    Self.fill(real, variant: 2)
                    Self.fill(copy, variant: 2)
                } else {
                    mkdir(real, 0o755)
                    mkdir(copy, 0o755)
                }
                let layer = WriteLayer(real: real, upper: upper)
                try Transaction.recordBaseline([layer], to: baseline)
                results["changes() \(label)", default: []].append(try Self.time { _ = try Transaction.changes([layer]) })
                let commit = { () throws in
                    results["commit \(label)", default: []].append(try Self.time {
                        try Transaction.commit([layer], baseline: baseline, journal: journal)
                    })
                }
                let cp = { results["cp -a \(label)", default: []].append(Self.time { shell("cp -a '\(upper)/.' '\(copy)/'") }) }
                if round % 2 == 0 {
                    try commit()
                    cp()
                } else {
                    cp()
                    try commit()
                }
                #expect(treeListing(real) == treeListing(copy))
            }
        }
        var runFolders: [String] = []
        for round in 0..<(2 * rounds) {
            let run = scratch.root + "/discard-\(round)/runs/r1"
            shell("mkdir -p '\(run)/layers/0/work/work' && chmod 000 '\(run)/layers/0/work/work'")
            Self.fill(run + "/layers/0/upper", variant: 3)
            runFolders.append(run)
        }
        for (index, run) in runFolders.enumerated() {
            let tool = index % 2 == 0 ? "Transaction.removeTree" : "rm -rf"
            results["discard \(tool)", default: []].append(try Self.time {
                if index % 2 == 1 { shell("rm -rf '\(run)'") } else { try Transaction.removeTree(run) }
            })
            #expect(access(run, F_OK) != 0)
        }
        for (name, values) in results.sorted(by: { $0.key < $1.key }) {
            print("bench \(place) \(name): median \(Int(values.sorted()[values.count / 2])) ms of \(values.map { Int($0) })")
        }
    }
}
