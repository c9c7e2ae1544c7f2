import Foundation
import Testing

/// The bundled profiles run their own default command for real and do their job: the
/// sales-report agent writes its report and is refused everything else it tries.
@Suite(.serialized, .enabled(if: HostSupport.isRoot, "the bundled profiles write into the checkout, owned by root here"))
struct BundledProfileTests {
    static let profiles = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../profiles").standardizedFileURL.path

    static func run(_ profile: String, environment: [String: String] = [:]) async throws -> CommandResult {
        let capture = FileManager.default.temporaryDirectory.path
        return try await CommandRunner.run([Products.corral, "run", "--profile", "\(profiles)/\(profile)"],
                                           environment: environment, captureFolder: capture)
    }

    @Test func salesReportWritesItsReportAndIsRefusedTheRest() async throws {
        let report = "\(Self.profiles)/sales-report/out/report.md"
        try? FileManager.default.removeItem(atPath: report)
        let result = try await Self.run("sales-report.yaml", environment: ["SALES_API_TOKEN": "tok-7c1f9e", "HOME": "/root"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == """
            wrote out/report.md: 3 regions, revenue 12,260.00
            what the sandbox allowed and refused:
              read the denied inputs/credentials.txt       blocked: EACCES
              write inputs/sales.csv (read-only input)     blocked: EROFS
              read /etc/passwd (not listed)                blocked: ENOENT
              run /bin/sh (not in filesystem.exec)         blocked: EACCES
              open a raw packet socket                     blocked: EPERM
              connect to the host's 127.0.0.1:22           blocked: ECONNREFUSED
              create a user namespace (unshare)            blocked: EPERM
              network interfaces: ['lo']
              processes visible: [1, 2] (this one is 2, its parent 1)
              SALES_API_TOKEN present: yes (secrets are passed through, never printed by Corral)

            """)
        #expect(!result.stderr.contains("tok-7c1f9e"))
        let written = try String(contentsOfFile: report, encoding: .utf8)
        #expect(written.hasPrefix("# Weekly sales report\n\n| region | revenue |\n|---|---:|\n| north | 3,975.00 |\n"))
    }

    @Test func defaultProfileRunsItsShellCommand() async throws {
        let result = try await Self.run("default.yaml")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "hello from read-only-tool\nuid=0(root) gid=0(root) groups=0(root)\n")
    }

    @Test func pythonToolProfileRunsTheSystemPython() async throws {
        let result = try await Self.run("python-tool.yaml")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.hasPrefix("python 3."))
        #expect(result.stdout.hasSuffix(" in /usr\n"))
    }
}
