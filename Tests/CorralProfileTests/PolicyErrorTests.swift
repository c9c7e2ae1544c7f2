import Testing
@testable import CorralProfile

/// Exact errors for `network`, `limits`, `syscalls` and `landlock`.
@Suite struct PolicyErrorTests {
    // MARK: - network

    static let networkCases: [BadManifest] = [
        BadManifest(name: "mode misspelt", yaml: "goal: { id: a }\nnetwork:\n  mode: loopbak\n", expected: """
            profiles/x.yaml:3: network.mode: unknown network mode `loopbak`
              hint: did you mean `loopback`?
            """),
        BadManifest(name: "mode unknown", yaml: "goal: { id: a }\nnetwork:\n  mode: wifi\n", expected: """
            profiles/x.yaml:3: network.mode: unknown network mode `wifi`
              hint: use none, loopback, allowlist or host
            """),
        BadManifest(name: "mode is a list", yaml: "goal: { id: a }\nnetwork:\n  mode: [none]\n", expected: """
            profiles/x.yaml:3: network.mode: expected a network mode, found a list
            """),
        BadManifest(name: "allow outside allowlist mode", yaml: """
            goal: { id: a }
            network:
              mode: none
              allow: [example.com:443]
            """, expected: """
            profiles/x.yaml:4: network.allow: network.allow applies to mode allowlist, but the mode is none
              hint: set network.mode: allowlist, or remove network.allow
            """),
        BadManifest(name: "ports outside loopback mode", yaml: """
            goal: { id: a }
            network: { mode: allowlist, ports: [8080] }
            """, expected: """
            profiles/x.yaml:2: network.ports: network.ports applies to mode loopback, but the mode is allowlist
              hint: set network.mode: loopback, or remove network.ports
            """),
        BadManifest(name: "mode key misspelt", yaml: "goal: { id: a }\nnetwork:\n  mdoe: none\n", expected: """
            profiles/x.yaml:3: network.mdoe: unknown key `mdoe`
              hint: did you mean `mode`?
            """),
        BadManifest(name: "dns is a later key", yaml: "goal: { id: a }\nnetwork:\n  dns: [1.1.1.1]\n", expected: """
            profiles/x.yaml:3: network.dns: network.dns is not supported yet by this Corral
              hint: remove it; the proxy resolves names itself and the sandbox needs no resolver
            """),
        BadManifest(name: "entry without a port", yaml: """
            goal: { id: a }
            network:
              mode: allowlist
              allow:
                - api.example.com:443
                - files.example.com
            """, expected: """
            profiles/x.yaml:6: network.allow[1]: `files.example.com` names no port
              hint: write host:port, such as api.example.com:443, or host:8000-8100
            """),
        BadManifest(name: "bare star", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"*:443\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `*` allows every host
              hint: name the hosts the goal needs; use mode: host for an unconfined network
            """),
        BadManifest(name: "wildcard on a top-level domain", yaml: """
            goal: { id: a }
            network: { mode: allowlist, allow: ["*.com:443"] }
            """, expected: """
            profiles/x.yaml:2: network.allow[0]: `*.com` matches every site under the public suffix `com`
              hint: name the organisation's own domain, such as *.example.com
            """),
        BadManifest(name: "wildcard on a public second level", yaml: """
            goal: { id: a }
            network: { mode: allowlist, allow: ["*.co.uk:443", "*.github.io:443"] }
            """, expected: """
            profiles/x.yaml:2: network.allow[0]: `*.co.uk` matches every site under the public suffix `co.uk`
              hint: name the organisation's own domain, such as *.example.co.uk
            """),
        BadManifest(name: "wildcard on a hosting suffix", yaml: """
            goal: { id: a }
            network: { mode: allowlist, allow: ["*.github.io:443"] }
            """, expected: """
            profiles/x.yaml:2: network.allow[0]: `*.github.io` matches every site under the public suffix `github.io`
              hint: name the organisation's own domain, such as *.example.github.io
            """),
        BadManifest(name: "wildcard inside a label", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"api*.example.com:443\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `api*.example.com`: a wildcard may only be the whole first label
              hint: write *.example.com
            """),
        BadManifest(name: "port out of range", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"a.example:70000\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `70000` in `a.example:70000` is not a port or port range
              hint: write a port from 1 to 65535, a range such as 8000-8100, or * for any port
            """),
        BadManifest(name: "reversed range", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"a.example:9000-8000\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `9000-8000` in `a.example:9000-8000` is not a port or port range
              hint: write a port from 1 to 65535, a range such as 8000-8100, or * for any port
            """),
        BadManifest(name: "CIDR with host bits", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"10.0.0.1/8:5432\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `10.0.0.1/8` is not a network in CIDR form
              hint: write the first address and the prefix length, such as 10.0.0.0/8
            """),
        BadManifest(name: "IPv6 without brackets", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"2001:db8::1:443\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `2001:db8::1:443` names no port
              hint: write host:port, such as api.example.com:443, or host:8000-8100
            """),
        BadManifest(name: "octal-looking address", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"010.0.0.1:80\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `010.0.0.1` is not a valid host name
              hint: use letters, digits, - and . (punycode for international names)
            """),
        BadManifest(name: "international name", yaml: "goal: { id: a }\nnetwork: { mode: allowlist, allow: [\"bücher.example:443\"] }\n", expected: """
            profiles/x.yaml:2: network.allow[0]: `bücher.example` is not a valid host name
              hint: use letters, digits, - and . (punycode for international names)
            """),
        BadManifest(name: "forward to a wildcard", yaml: """
            goal: { id: a }
            network:
              mode: allowlist
              forward:
                - { listen: 5432, to: "*.db.example:5432" }
            """, expected: """
            profiles/x.yaml:5: network.forward[0].to: a forward goes to one host, not `*.db.example`
              hint: name the host or its address
            """),
        BadManifest(name: "forward on the proxy's port", yaml: """
            goal: { id: a }
            network:
              mode: allowlist
              forward:
                - { listen: 3128, to: db.example:5432 }
            """, expected: """
            profiles/x.yaml:5: network.forward[0].listen: port 3128 is already network.proxy.http_port
              hint: listen on another port
            """),
        BadManifest(name: "forward without listen", yaml: """
            goal: { id: a }
            network:
              mode: allowlist
              forward:
                - { to: db.example:5432 }
            """, expected: """
            profiles/x.yaml:5: network.forward[0]: the forward has no `listen` port
              hint: add listen: PORT
            """),
        BadManifest(name: "proxy ports equal", yaml: """
            goal: { id: a }
            network:
              mode: allowlist
              proxy: { http_port: 8000, socks_port: 8000 }
            """, expected: """
            profiles/x.yaml:4: network.proxy: the HTTP and SOCKS proxy ports are both 8000
              hint: give them different ports
            """),
        BadManifest(name: "loopback port zero", yaml: "goal: { id: a }\nnetwork: { mode: loopback, ports: [0] }\n", expected: """
            profiles/x.yaml:2: network.ports[0]: `0` is not a port
              hint: write a number from 1 to 65535
            """),
    ]

    @Test(arguments: networkCases)
    func networkErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - limits

    static let limitCases: [BadManifest] = [
        BadManifest(name: "write_total is not enforced yet", yaml: """
            goal: { id: a }
            limits:
              wall: 5m
              write_total: 100MB
            """, expected: """
            profiles/x.yaml:4: limits.write_total: limits.write_total is not enforced yet by this Corral
              hint: remove it; a limit that is not enforced would only look safe
            """),
        BadManifest(name: "enforce is required or best-effort", yaml: "goal: { id: a }\nlimits: { enforce: strict }\n",
                    expected: """
            profiles/x.yaml:2: limits.enforce: limits.enforce must be required or best-effort, not "strict"
              hint: required: refuse to start when a limit cannot be enforced here
            """),
        BadManifest(name: "memory without unit", yaml: "goal: { id: a }\nlimits:\n  memory: 512\n", expected: """
            profiles/x.yaml:3: limits.memory: size "512" has no unit
              hint: write 512B for bytes or 512MiB for mebibytes; write a number and a unit: 100B, 64KiB, 512MiB, 2GiB (or kB, MB, GB: powers of 1000)
            """),
        BadManifest(name: "memory unit unknown", yaml: "goal: { id: a }\nlimits:\n  memory: 512mb\n", expected: """
            profiles/x.yaml:3: limits.memory: invalid size "512mb"
              hint: write a number and a unit: 100B, 64KiB, 512MiB, 2GiB (or kB, MB, GB: powers of 1000)
            """),
        BadManifest(name: "memory too small", yaml: "goal: { id: a }\nlimits:\n  memory: 64KiB\n", expected: """
            profiles/x.yaml:3: limits.memory: the memory limit must be at least 1MiB
              hint: write a number and a unit: 100B, 64KiB, 512MiB, 2GiB (or kB, MB, GB: powers of 1000)
            """),
        BadManifest(name: "memory overflows", yaml: "goal: { id: a }\nlimits:\n  memory: 99999999999TiB\n", expected: """
            profiles/x.yaml:3: limits.memory: invalid size "99999999999TiB"
              hint: write a number and a unit: 100B, 64KiB, 512MiB, 2GiB (or kB, MB, GB: powers of 1000)
            """),
        BadManifest(name: "processes zero", yaml: "goal: { id: a }\nlimits:\n  processes: 0\n", expected: """
            profiles/x.yaml:3: limits.processes: the process limit must be a whole number from 1 to 4194304, not "0"
            """),
        BadManifest(name: "open_files not a number", yaml: "goal: { id: a }\nlimits:\n  open_files: many\n", expected: """
            profiles/x.yaml:3: limits.open_files: the open-file limit must be a whole number from 4 to 1048576, not "many"
            """),
        BadManifest(name: "cpu_quota unreadable", yaml: "goal: { id: a }\nlimits:\n  cpu_quota: half\n", expected: """
            profiles/x.yaml:3: limits.cpu_quota: invalid cpu_quota "half"
              hint: write a share of one core (50%, 250%) or a number of cores (0.5, 2), at least 1%
            """),
        BadManifest(name: "cpu without unit", yaml: "goal: { id: a }\nlimits:\n  cpu: 60\n", expected: """
            profiles/x.yaml:3: limits.cpu: duration "60" has no unit
              hint: write 60s for seconds; units are ms, s, m and h
            """),
        BadManifest(name: "zero wall time", yaml: "goal: { id: a }\nlimits: { wall: 0s }\n", expected: """
            profiles/x.yaml:2: limits.wall: the wall-clock limit must be longer than zero
              hint: write a number and a unit: 250ms, 30s, 5m, 1h or 1m30s
            """),
        BadManifest(name: "unparsable wall time", yaml: "goal: { id: a }\nlimits:\n  wall: 5 minutes\n", expected: """
            profiles/x.yaml:3: limits.wall: invalid duration "5 minutes"
              hint: write a number and a unit: 250ms, 30s, 5m, 1h or 1m30s
            """),
        BadManifest(name: "wall time without unit", yaml: "goal: { id: a }\nlimits:\n  wall: 30\n", expected: """
            profiles/x.yaml:3: limits.wall: duration "30" has no unit
              hint: write 30s for seconds; units are ms, s, m and h
            """),
        BadManifest(name: "wall time is a mapping", yaml: "goal: { id: a }\nlimits:\n  wall: { seconds: 5 }\n",
                    expected: """
            profiles/x.yaml:3: limits.wall: expected a duration such as 30s, found a mapping
            """),
        BadManifest(name: "wall misspelt", yaml: "goal: { id: a }\nlimits: { wal: 5m }\n", expected: """
            profiles/x.yaml:2: limits.wal: unknown key `wal`
              hint: did you mean `wall`?
            """),
        BadManifest(name: "limit unknown", yaml: "goal: { id: a }\nlimits: { cores: 2 }\n", expected: """
            profiles/x.yaml:2: limits.cores: unknown key `cores`
              hint: expected one of: wall, cpu, cpu_quota, memory, processes, open_files, file_size, output, enforce
            """),
    ]

    @Test(arguments: limitCases)
    func limitErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - syscalls

    static let syscallCases: [BadManifest] = [
        BadManifest(name: "syscall misspelt", yaml: "goal: { id: a }\nsyscalls:\n  deny: [mount, ptrac]\n", expected: """
            profiles/x.yaml:3: syscalls.deny[1]: unknown syscall `ptrac`
              hint: did you mean `ptrace`?
            """),
        BadManifest(name: "syscall unknown", yaml: "goal: { id: a }\nsyscalls:\n  allow: [frobnicate]\n", expected: """
            profiles/x.yaml:3: syscalls.allow[0]: unknown syscall `frobnicate`
              hint: use Linux syscall names as in syscalls(2), such as `ptrace`
            """),
        BadManifest(name: "allowed and denied", yaml: """
            goal: { id: a }
            syscalls:
              allow: [ptrace]
              deny: [mount, ptrace]
            """, expected: """
            profiles/x.yaml:4: syscalls.deny[1]: `ptrace` is also syscalls.allow[0] (line 3); a syscall cannot be both allowed and denied
              hint: remove one of the two
            """),
        BadManifest(name: "denied twice", yaml: "goal: { id: a }\nsyscalls:\n  deny: [mount, mount]\n", expected: """
            profiles/x.yaml:3: syscalls.deny[1]: `mount` is listed twice; first at syscalls.deny[0] (line 3)
              hint: list each syscall once
            """),
        BadManifest(name: "deny as one string", yaml: "goal: { id: a }\nsyscalls:\n  deny: ptrace\n", expected: """
            profiles/x.yaml:3: syscalls.deny: expected a list of syscall names, found a string
              hint: write a list, even for one name: [ptrace]
            """),
        BadManifest(name: "unknown base", yaml: "goal: { id: a }\nsyscalls: { base: strict }\n", expected: """
            profiles/x.yaml:2: syscalls.base: unknown syscall base `strict`
              hint: this Corral has one base: default
            """),
        BadManifest(name: "on_deny in lower case", yaml: "goal: { id: a }\nsyscalls: { on_deny: eperm }\n", expected: """
            profiles/x.yaml:2: syscalls.on_deny: unknown on_deny action `eperm`
              hint: did you mean `EPERM`?
            """),
        BadManifest(name: "on_deny unknown", yaml: "goal: { id: a }\nsyscalls: { on_deny: explode }\n", expected: """
            profiles/x.yaml:2: syscalls.on_deny: unknown on_deny action `explode`
              hint: use an errno name such as EPERM, EACCES or ENOSYS, or kill
            """),
        BadManifest(name: "on_deny as a number", yaml: "goal: { id: a }\nsyscalls: { on_deny: 1 }\n", expected: """
            profiles/x.yaml:2: syscalls.on_deny: unknown on_deny action `1`
              hint: use an errno name such as EPERM, EACCES or ENOSYS, or kill
            """),
        BadManifest(name: "syscalls key misspelt", yaml: "goal: { id: a }\nsyscalls: { alow: [ptrace] }\n", expected: """
            profiles/x.yaml:2: syscalls.alow: unknown key `alow`
              hint: did you mean `allow`?
            """),
    ]

    @Test(arguments: syscallCases)
    func syscallErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - syscalls.watch

    static let watchable = "accept, accept4, bind, chmod, connect, creat, execve, execveat, fchmodat, fchmodat2, kill, "
        + "link, linkat, listen, mkdir, mkdirat, open, openat, ptrace, rename, renameat, renameat2, rmdir, socket, "
        + "symlink, symlinkat, truncate, unlink, unlinkat"

    static let watchCases: [BadManifest] = [
        BadManifest(name: "watched syscall misspelt", yaml: "goal: { id: a }\nsyscalls:\n  watch: [execve, conect]\n",
                    expected: """
            profiles/x.yaml:3: syscalls.watch[1]: unknown syscall `conect`
              hint: did you mean `connect`?
            """),
        BadManifest(name: "watched syscall unknown", yaml: "goal: { id: a }\nsyscalls:\n  watch: [frobnicate]\n",
                    expected: """
            profiles/x.yaml:3: syscalls.watch[0]: unknown syscall `frobnicate`
              hint: use Linux syscall names as in syscalls(2), such as `ptrace`
            """),
        BadManifest(name: "not watchable", yaml: "goal: { id: a }\nsyscalls:\n  watch:\n    - openat\n    - read\n",
                    expected: """
            profiles/x.yaml:5: syscalls.watch[1]: `read` cannot be watched
              hint: watchable: \(watchable)
            """),
        BadManifest(name: "the launcher's own handover", yaml: "goal: { id: a }\nsyscalls: { watch: [sendmsg] }\n",
                    expected: """
            profiles/x.yaml:2: syscalls.watch[0]: `sendmsg` cannot be watched: Corral's launcher calls it after installing the watch, so the run would wait forever
              hint: watchable: \(watchable)
            """),
        BadManifest(name: "denied and watched", yaml: """
            goal: { id: a }
            syscalls:
              deny: [mount, connect]
              watch: [execve, connect]
            """, expected: """
            profiles/x.yaml:4: syscalls.watch[1]: `connect` is also syscalls.deny[1] (line 3); a syscall cannot be both denied and watched
              hint: remove one of the two; a denied syscall never reaches the supervisor
            """),
        BadManifest(name: "watched above denied", yaml: """
            goal: { id: a }
            syscalls:
              watch: [kill]
              deny: [kill]
            """, expected: """
            profiles/x.yaml:4: syscalls.deny[0]: `kill` is also syscalls.watch[0] (line 3); a syscall cannot be both denied and watched
              hint: remove one of the two; a denied syscall never reaches the supervisor
            """),
        BadManifest(name: "watched twice", yaml: "goal: { id: a }\nsyscalls:\n  watch: [openat, openat]\n", expected: """
            profiles/x.yaml:3: syscalls.watch[1]: `openat` is listed twice; first at syscalls.watch[0] (line 3)
              hint: list each syscall once
            """),
        BadManifest(name: "watch as one string", yaml: "goal: { id: a }\nsyscalls:\n  watch: execve\n", expected: """
            profiles/x.yaml:3: syscalls.watch: expected a list of syscall names, found a string
              hint: write a list, even for one name: [execve]
            """),
        BadManifest(name: "watch misspelt", yaml: "goal: { id: a }\nsyscalls: { wacth: [execve] }\n", expected: """
            profiles/x.yaml:2: syscalls.wacth: unknown key `wacth`
              hint: did you mean `watch`?
            """),
    ]

    @Test(arguments: watchCases)
    func watchErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    @Test func watchedSyscallsLoadInManifestOrder() throws {
        let profile = try Manifest.load("""
            goal: { id: a }
            syscalls:
              allow: [ptrace]
              watch: [openat, execve, connect, ptrace]
            """)
        #expect(profile.syscalls.watch == ["openat", "execve", "connect", "ptrace"])
        #expect(try Manifest.load("goal: { id: a }\n").syscalls.watch == [])
    }

    /// The list in the hint is the documented one, every name a real syscall, and none of the
    /// calls the launcher makes between installing the watch and execve.
    @Test func watchableSyscallsAreKnownAndSafe() {
        #expect(WatchableSyscalls.names.joined(separator: ", ") == Self.watchable)
        #expect(Set(WatchableSyscalls.names).isSubset(of: KnownSyscalls.names))
        for name in Array(ManifestParser.handoverSyscalls) + ["exit", "exit_group", "rt_sigreturn", "seccomp"] {
            #expect(WatchableSyscalls.recorded[name] == nil, "\(name) must not be watchable")
        }
    }

    // MARK: - landlock

    static let landlockCases: [BadManifest] = [
        BadManifest(name: "landlock unknown", yaml: "goal: { id: a }\nlandlock: strict\n", expected: """
            profiles/x.yaml:2: landlock: unknown landlock mode `strict`
              hint: use required or best-effort
            """),
        BadManifest(name: "landlock misspelt", yaml: "goal: { id: a }\nlandlock: best_effort\n", expected: """
            profiles/x.yaml:2: landlock: unknown landlock mode `best_effort`
              hint: did you mean `best-effort`?
            """),
        BadManifest(name: "landlock as a boolean", yaml: "goal: { id: a }\nlandlock: true\n", expected: """
            profiles/x.yaml:2: landlock: unknown landlock mode `true`
              hint: use required or best-effort
            """),
    ]

    @Test(arguments: landlockCases)
    func landlockErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }
}
