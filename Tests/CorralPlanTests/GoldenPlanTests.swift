// Golden plans: each bundled profile in profiles/*.yaml, compiled for a fixed host, must print
// exactly Fixtures/plans/<name>.plan.txt (the text `corral explain` prints after its header).
//
// After an intended change to the compiler or the printer, regenerate the fixtures with
//
//     CORRAL_UPDATE_GOLDEN=1 swift test --filter CorralPlanTests.GoldenPlanTests
//
// then read the diff (`git diff Tests/CorralPlanTests/Fixtures`) as a security review before
// committing it. A regeneration run records an issue, so it never passes silently. The normal
// run reads the fixtures from the built test bundle: `swift build --build-tests` again after
// regenerating, or it still compares against the old copies.

import Foundation
import Testing
@testable import CorralPlan
import CorralProfile

@Suite struct GoldenPlanTests {
    static let profiles = ["default", "python-tool", "sales-report"]

    /// Fixed so the text does not depend on the checkout, the user or the machine.
    static let host = HostFacts(uid: 1000, gid: 1000, landlockABI: 7,
                                dynamicLoaders: ["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"])

    /// …/Tests/CorralPlanTests
    static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let profilesFolder = testsFolder.appending(path: "../../profiles").standardized
    static let fixturesFolder = testsFolder.appending(path: "Fixtures/plans")

    static var updating: Bool { ProcessInfo.processInfo.environment["CORRAL_UPDATE_GOLDEN"] == "1" }

    static func plan(of name: String) throws -> LaunchPlan {
        let url = profilesFolder.appending(path: "\(name).yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let profile = try ProfileLoader.load(contents: text, file: "profiles/\(name).yaml",
                                             directory: "/corral/profiles", home: "/home/agent")
        return try PlanCompiler.compile(profile, host: host)
    }

    @Test(arguments: profiles)
    func planMatchesGolden(_ name: String) throws {
        let actual = try Self.plan(of: name).description
        let fixture = "\(name).plan.txt"

        if Self.updating {
            try FileManager.default.createDirectory(at: Self.fixturesFolder, withIntermediateDirectories: true)
            try actual.write(to: Self.fixturesFolder.appending(path: fixture), atomically: true, encoding: .utf8)
            Issue.record("wrote Fixtures/plans/\(fixture) (CORRAL_UPDATE_GOLDEN=1); review the diff and rerun without it")
            return
        }

        let url = try #require(Bundle.module.url(forResource: "Fixtures/plans/\(fixture)", withExtension: nil),
                               "no golden plan for \(name); generate it with CORRAL_UPDATE_GOLDEN=1")
        let expected = try String(contentsOf: url, encoding: .utf8)
        // Line arrays, so a failure shows the lines that differ rather than two whole plans.
        #expect(actual.split(separator: "\n", omittingEmptySubsequences: false)
            == expected.split(separator: "\n", omittingEmptySubsequences: false),
            "plan of profiles/\(name).yaml differs from Fixtures/plans/\(fixture)")
    }

    /// A new bundled profile must get a golden plan too.
    @Test func everyBundledProfileHasAGoldenTest() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.profilesFolder.path)
        let names = files.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(".yaml".count)) }
        #expect(names.sorted() == Self.profiles)
    }

    // MARK: - Determinism

    @Test(arguments: profiles)
    func compilingTwiceGivesTheSameText(_ name: String) throws {
        let first = try Self.plan(of: name)
        let second = try Self.plan(of: name)
        #expect(first.description == second.description)
        #expect(first == second)
    }

    @Test func changingOnePathChangesTheText() throws {
        let body = """
            run: { command: [/bin/true] }
            filesystem:
              read: [/usr, /etc]
              write: [/srv/out]

            """
        let original = try Plans.compile(body).description
        let again = try Plans.compile(body).description
        let changed = try Plans.compile(body.replacingOccurrences(of: "/srv/out", with: "/srv/out2")).description
        #expect(original == again)
        #expect(original != changed)

        let differing = zip(original.split(separator: "\n"), changed.split(separator: "\n"))
            .filter { $0 != $1 }.map { "\($0.0) | \($0.1)" }
        #expect(differing == [
            "overlay /srv/out layer=0 staged noexec | overlay /srv/out2 layer=0 staged noexec",
            "landlock allow read,write /srv/out (in sandbox) | landlock allow read,write /srv/out2 (in sandbox)",
            "chdir /srv/out | chdir /srv/out2",
        ])
    }
}
