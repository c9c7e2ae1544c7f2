import Testing

/// One visible test per variant: skipped, with its reason, when this host cannot run the
/// variant (every parameterized case of that variant is then cancelled too); otherwise
/// `corral probe`, run as that user, sees what the tests assume about the host.
@Suite(.tags(.integration)) struct HostVariantTests {
    @Test("corral runs as root and sees this host's features",
          .enabled(if: RunAs.root.unavailableReason == nil, Comment(rawValue: RunAs.root.unavailableReason ?? "")))
    func rootVariantAvailable() async throws {
        try await expectProbeReport(.root)
    }

    @Test("corral runs as an unprivileged user and sees this host's features",
          .enabled(if: RunAs.unprivileged.unavailableReason == nil,
                   Comment(rawValue: RunAs.unprivileged.unavailableReason ?? "")))
    func unprivilegedVariantAvailable() async throws {
        try await expectProbeReport(.unprivileged)
    }

    private func expectProbeReport(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let result = try await sandbox.corral(["probe"])
            #expect(result.status == 0, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("user namespaces: yes (uid \(runAs.uid))"), "\(result)")
            let landlock = HostSupport.hasLandlock ? "ABI \(HostSupport.landlockABI)" : "unavailable"
            #expect(lines.contains("landlock: \(landlock)"), "\(result)")
        }
    }
}
