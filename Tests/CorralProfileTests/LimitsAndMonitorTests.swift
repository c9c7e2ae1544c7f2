import Testing
@testable import CorralProfile

/// `limits:` and `monitor:` decode to exact values; bad rules fail with exact messages.
@Suite struct LimitsAndMonitorTests {
    @Test func everyLimitDecodes() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            limits:
              wall: 5m
              cpu: 1m30s
              cpu_quota: 50%
              memory: 512MiB
              processes: 64
              open_files: 256
              file_size: 5MB
              output: 64KiB
              enforce: required
            """)
        let limits = profile.limits
        #expect(limits.wall == .seconds(300))
        #expect(limits.cpu == .seconds(90))
        #expect(limits.cpuQuota == 0.5)
        #expect(limits.memory == 512 << 20)
        #expect(limits.processes == 64)
        #expect(limits.openFiles == 256)
        #expect(limits.fileSize == 5_000_000)
        #expect(limits.output == 65_536)
        #expect(limits.enforce == .required)
        #expect(limits.needsCgroup)
    }

    @Test func defaultsAreBestEffortAndNoCgroup() throws {
        let limits = try Manifest.load("goal: { id: a }\nlimits: { wall: 5s, open_files: 64 }\n").limits
        #expect(limits.enforce == .bestEffort)
        #expect(!limits.needsCgroup)
    }

    @Test(arguments: [("2", 2.0), ("0.25", 0.25), ("250%", 2.5), ("1%", 0.01)])
    func cpuQuotaForms(text: String, cores: Double) throws {
        #expect(try Manifest.load("goal: { id: a }\nlimits: { cpu_quota: \"\(text)\" }\n").limits.cpuQuota == cores)
    }

    @Test(arguments: [("100B", 100), ("20kB", 20_000), ("20KB", 20_000), ("3KiB", 3072), ("1GiB", 1 << 30),
                      ("2GB", 2_000_000_000), ("1TiB", 1 << 40)] as [(String, UInt64)])
    func sizes(text: String, bytes: UInt64) {
        #expect(ProfileLoader.parseSize(text) == bytes)
        #expect(ProfileLoader.parseSize(Limits.format(bytes: bytes)) == bytes)
    }

    @Test func rulesDecodeWithDefaultIDs() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            monitor:
              - { when: "rate(connect) > 20/1s", then: kill }
              - { id: no-foreign-exec, when: exec-outside-allowlist, then: kill }
              - { when: write-outside-declared, then: alert }
              - { when: "processes > 50", then: pause }
              - { when: "memory > 400MiB", then: alert }
              - { when: "output>1MiB", then: kill }
              - { when: "cpu > 30s", then: kill }
              - { when: limit(processes), then: kill }
            """)
        #expect(profile.monitor.map(\.description) == [
            "rule-1: when rate(connect) > 20/1s then kill",
            "no-foreign-exec: when exec-outside-allowlist then kill",
            "rule-3: when write-outside-declared then alert",
            "rule-4: when processes > 50 then pause",
            "rule-5: when memory > 400MiB then alert",
            "rule-6: when output > 1MiB then kill",
            "rule-7: when cpu > 30s then kill",
            "rule-8: when limit(processes) then kill",
        ])
        #expect(profile.monitor[0].location?.description == "profiles/x.yaml:3: monitor[0]")
        #expect(profile.monitor[0].condition.watchedSyscalls == ["connect"])
        #expect(profile.monitor[1].condition.watchedSyscalls == ["execve", "execveat"])
    }

    /// `on_violation` is the action of the rules that state none, wherever it stands.
    @Test func onViolationIsTheDefaultAction() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            monitor:
              - { id: one, when: new-host }
              - { id: two, when: exec-outside-allowlist, then: alert }
            on_violation: rollback
            """)
        #expect(profile.monitor.map(\.action) == [.rollback, .alert])
    }

    static let badRules: [BadManifest] = [
        BadManifest(name: "unknown action", yaml: "goal: { id: a }\nmonitor:\n  - { when: exec-outside-allowlist, then: explode }\n",
                    expected: """
            profiles/x.yaml:3: monitor[0].then: unknown action `explode`
              hint: alert (an event), pause (freeze the run), kill (end it) or rollback (end it, discard its writes)
            """),
        BadManifest(name: "no when", yaml: "goal: { id: a }\nmonitor:\n  - { then: kill }\n", expected: """
            profiles/x.yaml:3: monitor[0]: the rule has no `when`
              hint: write one of: rate(connect) > 20/1s, exec-outside-allowlist, write-outside-declared, new-host, processes > 50, memory > 400MiB, output > 1MiB, cpu > 30s, limit(processes), limit(memory)
            """),
        BadManifest(name: "no then", yaml: "goal: { id: a }\nmonitor:\n  - { when: exec-outside-allowlist }\n", expected: """
            profiles/x.yaml:3: monitor[0]: the rule has no `then`
              hint: add then: alert, pause, kill or rollback, or set on_violation for every rule
            """),
        BadManifest(name: "unknown syscall in rate", yaml: """
            goal: { id: a }
            monitor:
              - { when: "rate(conect) > 20/1s", then: kill }
            """, expected: """
            profiles/x.yaml:3: monitor[0].when: rate(conect): unknown syscall `conect`
              hint: did you mean `connect`?
            """),
        BadManifest(name: "rate without window", yaml: """
            goal: { id: a }
            monitor:
              - { when: "rate(connect) > 20", then: kill }
            """, expected: """
            profiles/x.yaml:3: monitor[0].when: rate(connect) needs a bound like 20/1s, not "20"
              hint: calls per window: 20/1s, 100/10s, 5/250ms
            """),
        BadManifest(name: "unreadable condition", yaml: """
            goal: { id: a }
            monitor:
              - when: network is busy
                then: alert
            """, expected: """
            profiles/x.yaml:3: monitor[0].when: cannot read the condition "network is busy"
              hint: write one of: rate(connect) > 20/1s, exec-outside-allowlist, write-outside-declared, new-host, processes > 50, memory > 400MiB, output > 1MiB, cpu > 30s, limit(processes), limit(memory)
            """),
        BadManifest(name: "unknown limit", yaml: "goal: { id: a }\nmonitor:\n  - { when: limit(disk), then: kill }\n",
                    expected: """
            profiles/x.yaml:3: monitor[0].when: limit(disk): no such limit
              hint: limit(processes) or limit(memory)
            """),
        BadManifest(name: "repeated id", yaml: """
            goal: { id: a }
            monitor:
              - { id: fork, when: "processes > 5", then: kill }
              - { id: fork, when: limit(processes), then: kill }
            """, expected: """
            profiles/x.yaml:4: monitor[1].id: rule id `fork` is used twice; first at monitor[0].id (line 3)
              hint: give each rule its own id
            """),
        BadManifest(name: "bad id", yaml: "goal: { id: a }\nmonitor:\n  - { id: Fork Bomb, when: limit(processes), then: kill }\n",
                    expected: """
            profiles/x.yaml:3: monitor[0].id: rule id "Fork Bomb" may only use a-z, 0-9 and - (at most 63)
              hint: such as `too-many-connects`
            """),
        BadManifest(name: "unknown rule key", yaml: "goal: { id: a }\nmonitor:\n  - { when: limit(memory), then: kill, do: x }\n",
                    expected: """
            profiles/x.yaml:3: monitor[0].do: unknown key `do`
              hint: expected one of: id, when, then
            """),
        BadManifest(name: "monitor is a mapping", yaml: "goal: { id: a }\nmonitor: { when: limit(memory) }\n",
                    expected: """
            profiles/x.yaml:2: monitor: expected a list of rules, found a mapping
            """),
    ]

    @Test(arguments: badRules)
    func ruleErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }
}
