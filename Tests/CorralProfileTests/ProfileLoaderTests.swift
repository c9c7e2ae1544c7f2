import Testing
@testable import CorralProfile

@Suite struct ProfileLoaderTests {
    // MARK: - A full manifest

    @Test func fullYAMLManifestDecodesEveryField() throws {
        let profile = try Manifest.load(Manifest.fixture("full.yaml"), file: "profiles/full.yaml")
        let file = "profiles/full.yaml"
        func at(_ line: Int, _ keyPath: String) -> ManifestLocation {
            ManifestLocation(file: file, line: line, keyPath: keyPath)
        }

        #expect(profile.version == 1)
        #expect(profile.source == ProfileSource(file: file, directory: "/srv/agents/profiles"))
        #expect(profile.goal == Goal(id: "weekly-sales-report",
                                     intent: "Draft the weekly sales report from the sales API, read-only",
                                     agent: "report-bot@1.4.2"))

        #expect(profile.run.command == ["python3", "report.py", "--weeks", "2"])
        #expect(profile.run.workdir == PathEntry(path: "/srv/agents/profiles/workspace", location: at(9, "run.workdir")))
        #expect(profile.run.env.pass == ["LANG", "TZ"])
        #expect(profile.run.env.set == [
            EnvVariable(name: "PYTHONDONTWRITEBYTECODE", value: "1"),
            EnvVariable(name: "RATIO", value: "1.50"),
            EnvVariable(name: "VERBOSE", value: "yes"),
            EnvVariable(name: "GREETING", value: "hello world"),
        ])
        #expect(profile.run.env.secrets == ["SALES_API_TOKEN"])

        #expect(profile.filesystem.read == [
            PathEntry(path: "/usr", location: at(16, "filesystem.read[0]")),
            PathEntry(path: "/lib", location: at(17, "filesystem.read[1]")),
            PathEntry(path: "/lib64", optional: true, location: at(18, "filesystem.read[2]")),
            PathEntry(path: "/etc/ssl/certs", location: at(19, "filesystem.read[3]")),
            PathEntry(path: "/srv/agents/profiles/inputs", location: at(20, "filesystem.read[4]")),
            PathEntry(path: "/home/ada/.config/report", location: at(21, "filesystem.read[5]")),
        ])
        #expect(profile.filesystem.write == [
            PathEntry(path: "/srv/agents/profiles/out", location: at(22, "filesystem.write[0]")),
            PathEntry(path: "/var/tmp/report", location: at(22, "filesystem.write[1]")),
        ])
        #expect(profile.filesystem.exec == [
            PathEntry(path: "/usr/bin/python3*", location: at(23, "filesystem.exec[0]")),
            PathEntry(path: "/usr/bin/env", location: at(23, "filesystem.exec[1]")),
        ])
        #expect(profile.filesystem.deny == [
            PathEntry(path: "/home/ada/.ssh", location: at(24, "filesystem.deny[0]")),
            PathEntry(path: "/srv/agents/profiles/inputs/private", location: at(24, "filesystem.deny[1]")),
        ])

        #expect(profile.network.mode == .loopback)
        #expect(profile.limits.wall == .seconds(90))
        #expect(profile.syscalls.base == .default)
        #expect(profile.syscalls.allow == ["io_uring_setup"])
        #expect(profile.syscalls.deny == ["ptrace", "mount"])
        #expect(profile.syscalls.onDeny == .errno(13))
        #expect(profile.syscalls.onDeny.description == "EACCES")
        #expect(profile.landlock == .bestEffort)
    }

    @Test func jsonManifestDecodesLikeItsYAMLTwin() throws {
        let yaml = try Manifest.load(Manifest.fixture("full.yaml"), file: "profiles/full.yaml")
        let json = try Manifest.load(Manifest.fixture("full.json"), file: "profiles/full.json")

        #expect(json.filesystem.read[2].location == ManifestLocation(file: "profiles/full.json", line: 18,
                                                                   keyPath: "filesystem.read[2]"))
        #expect(json.run.workdir?.location.line == 10)
        #expect(withoutLocations(json) == withoutLocations(yaml))
    }

    /// The profile with every location and the source blanked, to compare what two files say.
    private func withoutLocations(_ profile: Profile) -> Profile {
        let nowhere = ManifestLocation(file: "", line: 0, keyPath: "")
        func blank(_ entries: [PathEntry]) -> [PathEntry] {
            entries.map { PathEntry(path: $0.path, optional: $0.optional, location: nowhere) }
        }
        var copy = profile
        copy.source = ProfileSource(file: "", directory: "")
        copy.run.workdir?.location = nowhere
        copy.filesystem.read = blank(profile.filesystem.read)
        copy.filesystem.write = blank(profile.filesystem.write)
        copy.filesystem.exec = blank(profile.filesystem.exec)
        copy.filesystem.deny = blank(profile.filesystem.deny)
        return copy
    }

    // MARK: - Defaults

    @Test func minimalManifestTakesEveryDefault() throws {
        let profile = try Manifest.load(Manifest.fixture("minimal.yaml"), file: "minimal.yaml", home: nil)

        let expected = Profile(goal: Goal(id: "smallest"),
                               source: ProfileSource(file: "minimal.yaml", directory: "/srv/agents/profiles"))
        #expect(profile == expected)
        #expect(profile.version == 1)
        #expect(profile.run.command.isEmpty)
        #expect(profile.run.workdir == nil)
        #expect(profile.network.mode == NetworkMode.none)
        #expect(profile.limits.wall == nil)
        #expect(profile.syscalls.onDeny == .errno(1))
        #expect(profile.syscalls.onDeny.description == "EPERM")
        #expect(profile.landlock == .required)
    }

    @Test func byteOrderMarkAndCRLFLineEndingsAreAccepted() throws {
        let profile = try Manifest.load("\u{FEFF}goal:\r\n  id: a\r\nlandlock: best-effort\r\n")
        #expect(profile.goal.id == "a")
        #expect(profile.landlock == .bestEffort)
    }

    @Test func onDenyAcceptsKillAndErrnoNames() throws {
        let kill = try Manifest.load("goal: { id: a }\nsyscalls: { on_deny: kill }\n")
        let enosys = try Manifest.load("goal: { id: a }\nsyscalls: { on_deny: ENOSYS }\n")
        #expect(kill.syscalls.onDeny == .kill)
        #expect(enosys.syscalls.onDeny == .errno(38))
    }

    @Test func networkModeNoneIsTheStringNotNull() throws {
        let profile = try Manifest.load("goal: { id: a }\nnetwork: { mode: none }\n")
        #expect(profile.network.mode == NetworkMode.none)
    }

    // MARK: - Paths

    @Test(arguments: [
        ("/a/./b//c/", "/a/b/c"),
        ("/../..", "/"),
        ("/a/b/../../../c", "/c"),
        ("//", "/"),
        ("/usr/bin/python3*", "/usr/bin/python3*"),
    ])
    func normalisationIsLexical(input: String, expected: String) {
        #expect(PathText.normalise(input) == expected)
    }

    @Test func pathsResolveAgainstTheManifestFolderAndHome() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            filesystem:
              read: [., .., inputs/../data, "~", ~/notes/, "/abs/../x"]
            """)
        #expect(profile.filesystem.read.map(\.path) == [
            "/srv/agents/profiles", "/srv/agents", "/srv/agents/profiles/data", "/home/ada", "/home/ada/notes", "/x",
        ])
    }

    @Test(arguments: [
        ("/usr/bin/python3*", "/usr/bin"),
        ("/usr/bin/[a-c]z", "/usr/bin"),
        ("/opt/tool?/bin/run", "/opt"),
        ("/*", "/"),
        ("/usr/bin/env", "/usr/bin/env"),
    ])
    func literalFolderOfAPatternStopsAtTheLastCompleteComponent(pattern: String, folder: String) {
        #expect(PathText.literalFolder(of: pattern) == folder)
    }

    @Test func globExecUnderAReadPathIsAccepted() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            filesystem:
              read: [/usr/bin]
              exec: ["/usr/bin/*", /usr/bin/python3.1?]
            """)
        #expect(profile.filesystem.exec.map(\.path) == ["/usr/bin/*", "/usr/bin/python3.1?"])
    }

    @Test func denyInsideAWritePathIsAccepted() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            filesystem:
              write: [./out]
              deny: [./out/secrets]
            """)
        #expect(profile.filesystem.deny.map(\.path) == ["/srv/agents/profiles/out/secrets"])
    }

    // MARK: - Durations

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("1m30s", .seconds(90)),
        ("2s500ms", .milliseconds(2500)),
        ("1h0m5s", .seconds(3605)),
        ("0s", .zero),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(ProfileLoader.parseDuration(text) == expected)
    }

    @Test(arguments: ["", "30", "s", "5 m", "30s1m", "1m1m", "1.5s", "-5s", "5d", "5M", "99999999999999999999s",
                      "9223372036854775807h"])
    func malformedDurationsAreNil(text: String) {
        #expect(ProfileLoader.parseDuration(text) == nil)
    }

    // MARK: - Suggestions

    @Test func editDistanceCountsASwapAsOne() {
        #expect(NameSuggestion.editDistance("wirte", "write") == 1)
        #expect(NameSuggestion.editDistance("ptrac", "ptrace") == 1)
        #expect(NameSuggestion.editDistance("", "abc") == 3)
        #expect(NameSuggestion.editDistance("read", "read") == 0)
        #expect(NameSuggestion.nearest(to: "ab", among: ["id"]) == nil)
        #expect(NameSuggestion.nearest(to: "exce", among: ["read", "write", "exec", "deny"]) == "exec")
    }
}
