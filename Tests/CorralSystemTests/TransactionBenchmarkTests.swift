import Glibc
import Testing
@testable import CorralSystem

/// Commit and discard of 10,000 small files against `cp -a` and `rm -rf`, medians of five,
/// on the disk (/tmp) and on tmpfs (/dev/shm: the syscall cost without the device). Every
/// timed operation starts after a `sync`, so writeback left by the previous one is not
/// counted. Off by default; run it optimised:
///
///     CORRAL_TXN_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter TransactionBenchmark
@Suite(.serialized, .enabled(if: HostEnvironment.variable("CORRAL_TXN_BENCH") == "1", "set CORRAL_TXN_BENCH=1"))
struct TransactionBenchmarkTests {
    static let folders = 100, filesPerFolder = 100

    /// 10,000 files of 100–1,100 bytes in 100 folders below `base`; `variant` changes the bytes.
    static func fill(_ base: String, variant: UInt8) {
        mkdir(base, 0o755)
        for f in 0..<folders {
            let folder = base + "/d\(f)"
            mkdir(folder, 0o755)
            for i in 0..<filesPerFolder {
                let bytes = [UInt8](repeating: variant &+ UInt8(truncatingIfNeeded: i), count: 100 + (i * 37) % 1000)
                let fd = open(folder + "/f\(i).txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
        }
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static func time(_ body: () throws -> Void) rethrows -> Double {
        sync()
        let start = HostEnvironment.monotonicSeconds()
        try body()
        return (HostEnvironment.monotonicSeconds() - start) * 1000
    }

    @Test(arguments: ["/tmp", "/dev/shm"])
    func commitAndDiscardAgainstCpAndRm(_ place: String) throws {
        var results: [String: [Double]] = [:]
        for _ in 0..<5 {
            for changed in [false, true] {
                let label = changed ? "modified" : "new"
                let s = try TransactionScratch("bench", in: place)
                rmdir(s.upper)
                Self.fill(s.upper, variant: 1)
                if changed {
                    rmdir(s.real)
                    Self.fill(s.real, variant: 2)
                }
                let copy = s.root + "/cp-target"
                if changed { Self.fill(copy, variant: 2) } else { mkdir(copy, 0o755) }
                try Transaction.recordBaseline([s.layer], to: s.baseline)
                results["changes() \(label)", default: []].append(try Self.time { _ = try Transaction.changes([s.layer]) })
                results["commit \(label)", default: []].append(try Self.time {
                    try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
                })
                #expect(treeListing(s.real).count == 10_100)
                results["cp -a \(label)", default: []].append(Self.time { shell("cp -a '\(s.upper)/.' '\(copy)/'") })
                results["cp -a + sync -f \(label)", default: []].append(Self.time {
                    shell("cp -a '\(s.upper)/.' '\(copy)/' && sync -f '\(copy)'")
                })
            }
            for tool in ["Transaction.removeTree", "rm -rf"] {
                let s = try TransactionScratch("bench", in: place)
                let runFolder = s.root + "/runs/r1"
                shell("mkdir -p '\(runFolder)/layers/0/work/work' && chmod 000 '\(runFolder)/layers/0/work/work'")
                Self.fill(runFolder + "/layers/0/upper", variant: 3)
                results["discard \(tool)", default: []].append(try Self.time {
                    if tool == "rm -rf" { shell("rm -rf '\(runFolder)'") } else { try Transaction.removeTree(runFolder) }
                })
                #expect(access(runFolder, F_OK) != 0)
            }
        }
        for (name, values) in results.sorted(by: { $0.key < $1.key }) {
            print("bench \(place) \(name): median \(Int(Self.median(values))) ms of \(values.map { Int($0) })")
        }
    }
}
