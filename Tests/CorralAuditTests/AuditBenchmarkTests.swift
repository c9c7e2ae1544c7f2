import CorralSystem
import Foundation
import Testing
@testable import CorralAudit

/// Cost of an append, printed as medians: `CORRAL_AUDIT_BENCH=1 swift test --filter AuditBenchmark`.
/// Off by default (timing, not correctness; debug builds are several times slower than release).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["CORRAL_AUDIT_BENCH"] != nil, "set CORRAL_AUDIT_BENCH=1"))
struct AuditBenchmarkTests {
    @Test func appendCosts() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog(secrets: ["not-in-any-payload"])
        let payload = Array(#"{"syscall":"connect","errno":"EPERM","path":"/etc/shadow","pid":4242}"#.utf8)
        let one = [AuditLog.Entry(type: "denial", run: "r-bench", payload: payload)]
        let ten = Array(repeating: one[0], count: 10)
        let signed = [AuditLog.Entry(type: "run.end", run: "r-bench", payload: payload, sign: true)]
        for (name, batch) in [("1 event", one), ("10 events", ten), ("1 signed event", signed)] {
            var samples: [Double] = []
            for _ in 0..<500 {
                let start = HostEnvironment.monotonicSeconds()
                try log.append(batch)
                samples.append(HostEnvironment.monotonicSeconds() - start)
            }
            samples.sort()
            print("audit append \(name): median \(Int(samples[samples.count / 2] * 1e6)) µs, "
                  + "p90 \(Int(samples[samples.count * 9 / 10] * 1e6)) µs")
        }
        let start = HostEnvironment.monotonicSeconds()
        let result = try scratch.verify(key: log.publicKey)
        print("audit verify of 6,500 events: \(Int((HostEnvironment.monotonicSeconds() - start) * 1e3)) ms")
        guard case .valid = result else {
            Issue.record("\(result)")
            return
        }
    }
}
