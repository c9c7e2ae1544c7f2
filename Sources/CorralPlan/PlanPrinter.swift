import CorralProfile

/// The stable text form of a plan (what `corral explain` prints and golden tests compare).
/// One decision per line, shaped like a command line; secrets print as `<secret>`.
enum PlanPrinter {
    static func text(of plan: LaunchPlan) -> String {
        var lines: [String] = []
        lines.append("goal \(plan.goalID)")
        lines.append(plan.namespaces.description)
        lines.append("uid-map \(plan.uidMap)")
        lines.append("gid-map \(plan.gidMap)")
        lines.append("hostname \(plan.hostname)")
        lines += network(plan)

        lines.append("")
        lines.append("# filesystem: a new root on tmpfs, read-only once built, then pivot_root")
        lines.append("tmpfs / mode=755")
        lines += plan.mounts.map(\.description)
        if plan.mounts.contains(where: { if case .overlay = $0.kind { true } else { false } }) {
            lines.append(commitLine(plan.commit))
        }

        lines.append("")
        lines += landlock(plan.landlock)

        lines.append("")
        lines += seccomp(plan.seccomp)

        lines.append("")
        lines.append("# process")
        lines.append("capabilities drop all (bounding, ambient, permitted, effective, inheritable); securebits locked")
        lines.append("no-new-privs")
        lines += plan.rlimits.map(\.description)
        lines += limits(plan)
        for entry in plan.environment {
            switch entry.source {
            case .fixed(let value): lines.append("env \(entry.name)=\(quote(value))")
            case .passed: lines.append("env \(entry.name) (passed from the caller)")
            case .secret: lines.append("env \(entry.name)=<secret> (passed from the caller)")
            }
        }
        lines.append("chdir \(plan.workdir)")
        lines.append("session new (no controlling terminal)")
        lines.append("exec " + joinedStrings(plan.command.map(quote), separator: " "))
        return joinedStrings(lines, separator: "\n") + "\n"
    }

    /// What happens to the staged writes when the run ends.
    private static func commitLine(_ mode: CommitMode) -> String {
        let rogue = "a rogue run's writes are discarded"
        return switch mode {
        case .auto: "commit auto (a clean run's writes are applied when it ends; \(rogue))"
        case .ask: "commit ask (a clean run stays pending: corral diff / commit / discard; \(rogue))"
        case .never: "commit never (dry run: every write is discarded)"
        case .direct: "commit direct (no staging)"
        }
    }

    /// The supervisor's limits and rules (rlimits print above, as `rlimit …`).
    private static func limits(_ plan: LaunchPlan) -> [String] {
        let limits = plan.limits
        var lines: [String] = []
        if let wall = limits.wall { lines.append("limit wall \(Limits.format(wall)) (whole tree killed)") }
        if let cpu = limits.cpu { lines.append("limit cpu \(Limits.format(cpu)) (user+system of the tree; killed)") }
        if let quota = limits.cpuQuota { lines.append("limit cpu-quota \(quota) cores (throttled)") }
        if let memory = limits.memory { lines.append("limit memory \(Limits.format(bytes: memory)) (swap included; killed)") }
        if let processes = limits.processes { lines.append("limit processes \(processes) (fork fails with EAGAIN)") }
        if let output = limits.output { lines.append("limit output \(Limits.format(bytes: output)) (stdout+stderr; run stopped)") }
        if limits.needsCgroup { lines.append("limits enforce \(limits.enforce.rawValue)") }
        lines += plan.monitor.map { "monitor \($0)" }
        return lines
    }

    private static func landlock(_ plan: LandlockPlan) -> [String] {
        guard plan.abi >= 1 else {
            return ["# landlock: unavailable on this kernel; not enforced (\(plan.enforcement.rawValue))"]
        }
        var lines = ["# landlock ABI \(plan.abi) (\(plan.enforcement.rawValue)); everything not allowed below is denied"]
        if !plan.dropped.isEmpty { lines.append("landlock cannot-enforce \(plan.dropped)") }
        if !plan.scoped.isEmpty {
            var scopes: [String] = []
            if plan.scoped.contains(.abstractUnixSocket) { scopes.append("abstract-unix-socket") }
            if plan.scoped.contains(.signal) { scopes.append("signal") }
            lines.append("landlock scope " + joinedStrings(scopes, separator: " "))
        }
        lines += plan.rules.map(\.description)
        if !plan.handledNet.isEmpty {
            lines.append("landlock handle \(plan.handledNet); allowed only to the ports below")
            lines += plan.portRules.map(\.description)
        }
        return lines
    }

    private static func network(_ plan: LaunchPlan) -> [String] {
        switch plan.network {
        case .none: return ["network none (loopback only)"]
        case .host: return ["network host (no network namespace: the host's network, unconfined)"]
        case .loopback, .allowlist: break
        }
        var lines = [plan.network == .loopback
            ? "network loopback (loopback only; the host loopback ports below forwarded in)"
            : "network allowlist (loopback only; the outside through the supervisor's proxy)"]
        guard let egress = plan.egress else { return lines }
        lines += egress.listeners.map { "egress listen \(EgressPlan.listenAddress):\($0.port) \($0.role)" }
        if plan.network == .allowlist {
            lines += egress.policy.entries.map { "egress allow \($0.text)" }
            lines.append("egress refuse loopback, private, link-local, metadata … addresses unless allowed by address")
            let settings = egress.settings
            lines.append("egress limits idle \(Limits.format(settings.idleTimeout)) max-duration "
                         + "\(Limits.format(settings.maxDuration)) connections \(settings.maxConnections)")
        }
        return lines
    }

    private static func seccomp(_ plan: SeccompPlan) -> [String] {
        var lines = [
            "# seccomp (base \(plan.base.rawValue)): installed last, just before execve",
            "seccomp default \(plan.onDeny); other architectures (i386, x32) kill the process",
        ]
        lines += wrap("seccomp allow", plan.allowed)
        lines += plan.conditionalAllows.map { "seccomp allow-if \($0)" }
        lines += plan.argumentDenials.map { "seccomp deny-if \($0) -> \(plan.onDeny)" }
        lines += plan.enosys.map { "seccomp deny \($0) -> ENOSYS" }
        lines += plan.denied.map { "seccomp deny \($0.name) -> \(plan.onDeny) # \($0.reason)" }
        lines += watch(plan)
        return lines
    }

    /// `syscalls.watch`: one line per call, saying whether it can reach the supervisor at all.
    private static func watch(_ plan: SeccompPlan) -> [String] {
        guard !plan.watched.isEmpty else { return [] }
        var lines = ["# seccomp watch: a last program; these calls wait for the supervisor, which records them "
                     + "and lets them continue unless its decision hook denies them"]
        let enosys = Set(plan.enosys), allowed = Set(plan.allowed)
        let conditional = Set(plan.conditionalAllows.map(\.syscall)), narrowed = Set(plan.argumentDenials.map(\.syscall))
        for name in plan.watched {
            if allowed.contains(name) {
                lines.append("seccomp watch \(name) -> supervisor"
                             + (narrowed.contains(name) ? " # where the deny-if rules let it through" : ""))
            } else if conditional.contains(name) {
                lines.append("seccomp watch \(name) -> supervisor # where the allow-if rules allow it")
            } else {
                let answer = enosys.contains(name) ? "ENOSYS" : plan.onDeny.description
                lines.append("seccomp watch \(name) -> \(answer) # denied above: the kernel answers before the supervisor could see it")
            }
        }
        return lines
    }

    /// Long name lists, about eight names a line.
    private static func wrap(_ prefix: String, _ names: [String]) -> [String] {
        stride(from: 0, to: names.count, by: 8).map {
            prefix + " " + joinedStrings(Array(names[$0..<min($0 + 8, names.count)]), separator: " ")
        }
    }

    /// Shell-style quoting so the line can be read back unambiguously; control characters
    /// are escaped so a manifest cannot drive the reader's terminal.
    static func quote(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        if plain && !word.isEmpty { return word }
        var out = "'"
        for scalar in word.unicodeScalars {
            switch scalar {
            case "'": out += "'\\''"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value):
                // Fixed width, so two different words never print alike.
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "'"
    }
}
