import Testing
@testable import CorralPlan
import CorralProfile

@Suite struct LandlockPlanTests {
    static let body = """
        run: { command: [/usr/bin/python3] }
        filesystem:
          read: [/usr]
          write: [/srv/out]
          exec: [/usr/bin/python3]
        """

    static let bestEffortBody = body + "\nlandlock: best-effort\n"

    // MARK: - Landlock unavailable

    @Test func abi0RequiredIsAnError() throws {
        #expect(try Plans.failure(Self.body, landlockABI: 0) == """
            Landlock is not available on this kernel, and landlock is `required`
              hint: enable Landlock (CONFIG_SECURITY_LANDLOCK, lsm=…,landlock) or set `landlock: best-effort`
            """)
    }

    @Test func abi0BestEffortEnforcesNothingAndDropsEverything() throws {
        let plan = try Plans.compile(Self.bestEffortBody, landlockABI: 0)
        #expect(plan.landlock.enforcement == .bestEffort)
        #expect(plan.landlock.abi == 0)
        #expect(plan.landlock.handled == [])
        #expect(plan.landlock.scoped == [])
        #expect(plan.landlock.rules == [])
        #expect(plan.landlock.dropped == LandlockAccess.handled(atABI: 7))
        #expect(plan.landlock.dropped.rawValue == 0xFFFF)
        #expect(plan.description.contains("\n# landlock: unavailable on this kernel; not enforced (best-effort)\n"))
        #expect(!plan.description.contains("landlock allow"))
    }

    // MARK: - What each ABI can enforce

    struct ABICase: Sendable, CustomTestStringConvertible {
        var hostABI: Int
        var abi: Int
        var dropped: LandlockAccess
        var scoped: LandlockScope
        /// The plan's landlock header lines, before the first rule.
        var header: [String]
        var testDescription: String { "host ABI \(hostABI)" }
    }

    static let abiCases: [ABICase] = [
        ABICase(hostABI: 1, abi: 1, dropped: [.refer, .truncate, .ioctlDev], scoped: [], header: [
            "# landlock ABI 1 (best-effort); everything not allowed below is denied",
            "landlock cannot-enforce refer,truncate,ioctl-dev",
        ]),
        ABICase(hostABI: 2, abi: 2, dropped: [.truncate, .ioctlDev], scoped: [], header: [
            "# landlock ABI 2 (best-effort); everything not allowed below is denied",
            "landlock cannot-enforce truncate,ioctl-dev",
        ]),
        ABICase(hostABI: 3, abi: 3, dropped: [.ioctlDev], scoped: [], header: [
            "# landlock ABI 3 (best-effort); everything not allowed below is denied",
            "landlock cannot-enforce ioctl-dev",
        ]),
        ABICase(hostABI: 4, abi: 4, dropped: [.ioctlDev], scoped: [], header: [
            "# landlock ABI 4 (best-effort); everything not allowed below is denied",
            "landlock cannot-enforce ioctl-dev",
        ]),
        ABICase(hostABI: 5, abi: 5, dropped: [], scoped: [], header: [
            "# landlock ABI 5 (best-effort); everything not allowed below is denied",
        ]),
        ABICase(hostABI: 6, abi: 6, dropped: [], scoped: [.abstractUnixSocket, .signal], header: [
            "# landlock ABI 6 (best-effort); everything not allowed below is denied",
            "landlock scope abstract-unix-socket signal",
        ]),
        ABICase(hostABI: 7, abi: 7, dropped: [], scoped: [.abstractUnixSocket, .signal], header: [
            "# landlock ABI 7 (best-effort); everything not allowed below is denied",
            "landlock scope abstract-unix-socket signal",
        ]),
        ABICase(hostABI: 9, abi: 7, dropped: [], scoped: [.abstractUnixSocket, .signal], header: [
            "# landlock ABI 7 (best-effort); everything not allowed below is denied",
            "landlock scope abstract-unix-socket signal",
        ]),
    ]

    @Test(arguments: abiCases)
    func abi(_ c: ABICase) throws {
        let plan = try Plans.compile(Self.bestEffortBody, landlockABI: c.hostABI)
        #expect(plan.landlock.abi == c.abi)
        #expect(plan.landlock.handled == LandlockAccess.handled(atABI: c.abi))
        #expect(plan.landlock.dropped == c.dropped)
        #expect(plan.landlock.scoped == c.scoped)
        // No rule asks for a right the kernel does not handle.
        for rule in plan.landlock.rules {
            #expect(plan.landlock.handled.isSuperset(of: rule.access), "\(rule)")
        }
        let lines = plan.description.split(separator: "\n").map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix("# landlock") })
        let end = try #require(lines[start...].firstIndex { $0.hasPrefix("landlock allow") })
        #expect(Array(lines[start..<end]) == c.header)
    }

    @Test func requiredAtABI3StillCompilesAndNamesWhatItCannotEnforce() throws {
        let plan = try Plans.compile(Self.body, landlockABI: 3)
        #expect(plan.landlock.enforcement == .required)
        #expect(plan.landlock.dropped == .ioctlDev)
        #expect(plan.description.contains("\nlandlock cannot-enforce ioctl-dev\n"))
        #expect(!plan.description.contains("landlock scope"))
        let devNull = try #require(plan.landlock.rules.first { $0.path == "/dev/null" })
        #expect(devNull.access == [.readFile, .writeFile])
    }

    // MARK: - Rules

    @Test func rulesOfAPlanAtABI7() throws {
        let plan = try Plans.compile(Self.body)
        #expect(plan.landlock.rules.map(\.description) == [
            "landlock allow read-dir / (in sandbox)",
            "landlock allow read /usr",
            "landlock allow read,write /srv/out (in sandbox)",
            "landlock allow execute /usr/bin/python3",
            "landlock allow execute /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 optional",
            "landlock allow read /proc (in sandbox)",
            "landlock allow read,write /tmp (in sandbox)",
            "landlock allow read,write /dev/shm (in sandbox)",
            "landlock allow write-file,read-file,read-dir,ioctl-dev /dev/pts (in sandbox)",
            "landlock allow write-file,read-file,ioctl-dev /dev/null (in sandbox)",
            "landlock allow write-file,read-file,ioctl-dev /dev/zero (in sandbox)",
            "landlock allow write-file,read-file,ioctl-dev /dev/full (in sandbox)",
            "landlock allow write-file,read-file,ioctl-dev /dev/random (in sandbox)",
            "landlock allow write-file,read-file,ioctl-dev /dev/urandom (in sandbox)",
            "landlock allow write-file,read-file,ioctl-dev /dev/tty (in sandbox)",
        ])
        // Only exec entries and the loader may execute.
        let executable = plan.landlock.rules.filter { $0.access.contains(.execute) }.map(\.path)
        #expect(executable == ["/usr/bin/python3", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"])
    }

    static let rightsCases: [Case<(path: String, access: LandlockAccess)>] = [
        Case("read entry", "read: [/usr, /srv/in]", ("/srv/in", [.readFile, .readDir])),
        Case("write entry", "read: [/usr], write: [/srv/out]", ("/srv/out", [
            .readFile, .readDir, .writeFile, .removeDir, .removeFile, .makeDir, .makeReg, .makeSock,
            .makeFifo, .makeSym, .refer, .truncate,
        ])),
        Case("exec entry", "read: [/usr], exec: [/usr/bin/env]", ("/usr/bin/env", [.readFile, .execute])),
    ]

    @Test(arguments: rightsCases)
    func rights(_ c: Case<(path: String, access: LandlockAccess)>) throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem: { \(c.yaml) }
            """)
        let rule = try #require(plan.landlock.rules.first { $0.path == c.expected.path })
        #expect(rule.access == c.expected.access)
        // A staged write path's rule goes on its overlay, inside the sandbox.
        #expect(rule.anchor == (c.expected.path == "/srv/out" ? .sandbox : .host))
        // Make-char and make-block are never granted, nor ioctl on host files.
        #expect(rule.access.isDisjoint(with: [.makeChar, .makeBlock, .ioctlDev]))
    }

    @Test func writeRightsAtABI1LeaveOutReferAndTruncate() throws {
        let plan = try Plans.compile(Self.bestEffortBody, landlockABI: 1)
        let rule = try #require(plan.landlock.rules.first { $0.path == "/srv/out" })
        #expect(rule.description
            == "landlock allow write-file,read-file,read-dir,remove-dir,remove-file,make-dir,make-reg,make-sock,make-fifo,make-sym /srv/out (in sandbox)")
    }

    /// An exec entry's rule: `folder/*` becomes one rule on the folder (execute beneath it);
    /// any other glob stays a pattern the materialiser expands on the host.
    static let execCases: [Case<(path: String, isPattern: Bool)>] = [
        Case("/usr/bin/*", "/usr/bin/*", ("/usr/bin", false)),
        Case("/usr/bin/python3*", "/usr/bin/python3*", ("/usr/bin/python3*", true)),
        Case("/usr/bin/python3.1?", "/usr/bin/python3.1?", ("/usr/bin/python3.1?", true)),
        Case("/usr/bin/[a-c]*", "\"/usr/bin/[a-c]*\"", ("/usr/bin/[a-c]*", true)),
        Case("/usr/lib/*/bin/tool", "/usr/lib/*/bin/tool", ("/usr/lib/*/bin/tool", true)),
        Case("/usr/lib/*/bin/*", "/usr/lib/*/bin/*", ("/usr/lib/*/bin/*", true)),
        Case("/usr/bin/env", "/usr/bin/env", ("/usr/bin/env", false)),
    ]

    @Test(arguments: execCases)
    func execEntries(_ c: Case<(path: String, isPattern: Bool)>) throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem:
              read: [/usr]
              exec:
                - { path: \(c.yaml), optional: true }
            """)
        let rule = try #require(plan.landlock.rules.first { $0.origin?.keyPath == "filesystem.exec[0]" })
        #expect(rule.path == c.expected.path)
        #expect(rule.access == [.readFile, .execute])
        #expect(rule.isPattern == c.expected.isPattern)
        #expect(rule.optional)
        #expect(rule.anchor == .host)
        #expect(rule.description == "landlock allow execute \(c.expected.path) optional")
    }

    @Test func execEntryForTheRootFolder() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem: { read: [/], exec: ["/*"] }
            """)
        let rule = try #require(plan.landlock.rules.first { $0.origin?.keyPath == "filesystem.exec[0]" })
        #expect(rule.path == "/")
        #expect(rule.isPattern == false)
    }
}
