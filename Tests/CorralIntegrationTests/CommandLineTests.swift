import Foundation
import Testing

/// `corral run` has two parsers: main.swift's fast path for the one common shape, and
/// ArgumentParser for everything else. Both must run the same thing the same way.
@Suite(.tags(.integration)) struct CommandLineTests {
    @Test("the fast path and ArgumentParser agree on `corral run`")
    func bothParsersRunTheSameCommand() async throws {
        try await withSandbox(.root) { sandbox in
            let manifest = try sandbox.write(Manifest(sandbox: sandbox))
            let fastReport = sandbox.scratch + "/fast.json", parsedReport = sandbox.scratch + "/parsed.json"
            // Recognised by the fast path.
            let fast = try await sandbox.corral(["run", "--profile", manifest, "--report", fastReport, "--",
                                                 sandbox.probe, "hostname"])
            // `--profile=…` is ArgumentParser's spelling only: the fast path declines it.
            let parsed = try await sandbox.corral(["run", "--report=\(parsedReport)", "--profile=\(manifest)", "--",
                                                   sandbox.probe, "hostname"])
            #expect(fast.status == 0 && parsed.status == 0, "\(fast) / \(parsed)")
            #expect(fast.stdout == "hostname \(Manifest.goalID)\n")
            #expect(parsed.stdout == fast.stdout)
            #expect(try RunReportFields.read(fastReport).exitStatus == 0)
            #expect(try RunReportFields.read(parsedReport).exitStatus == 0)
        }
    }

}
