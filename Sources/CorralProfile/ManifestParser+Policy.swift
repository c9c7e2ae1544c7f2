// MARK: - limits

extension ManifestParser {
    static let limitKeys = ["wall", "cpu", "cpu_quota", "memory", "processes", "open_files", "file_size", "output",
                            "enforce"]
    /// Limits DESIGN.md describes that this Corral does not enforce. Refusing them is safer than
    /// a run that looks limited and is not.
    static let laterLimitKeys = ["write_total"]

    static let durationHint = "write a number and a unit: 250ms, 30s, 5m, 1h or 1m30s"
    static let sizeHint = "write a number and a unit: 100B, 64KiB, 512MiB, 2GiB (or kB, MB, GB: powers of 1000)"

    func limits(_ field: Field) throws(ProfileError) -> Limits {
        var limits = Limits()
        for entry in try reader.mapping(field) {
            let value = entry.value
            switch entry.key {
            case "wall": limits.wall = try duration(value, what: "the wall-clock limit")
            case "cpu": limits.cpu = try duration(value, what: "the CPU time limit")
            case "cpu_quota": limits.cpuQuota = try cpuQuota(value)
            case "memory": limits.memory = try size(value, what: "the memory limit", atLeast: 1 << 20)
            case "processes": limits.processes = try count(value, what: "the process limit", range: 1...4_194_304)
            case "open_files": limits.openFiles = try count(value, what: "the open-file limit", range: 4...1 << 20)
            case "file_size": limits.fileSize = try size(value, what: "the file-size limit", atLeast: 1)
            case "output": limits.output = try size(value, what: "the output limit", atLeast: 1)
            case "enforce":
                let text = try reader.string(value, expected: "required or best-effort")
                guard let enforcement = Enforcement(rawValue: text) else {
                    throw reader.error(value, "limits.enforce must be required or best-effort, not \"\(text)\"",
                                       hint: "required: refuse to start when a limit cannot be enforced here")
                }
                limits.enforce = enforcement
            case let key where Self.laterLimitKeys.contains(key):
                throw reader.error(line: entry.keyLine, keyPath: value.keyPath,
                                   "limits.\(key) is not enforced yet by this Corral",
                                   hint: "remove it; a limit that is not enforced would only look safe")
            default:
                throw reader.unknownKey(entry, known: Self.limitKeys, alsoNear: Self.laterLimitKeys)
            }
        }
        return limits
    }

    func size(_ field: Field, what: String, atLeast minimum: UInt64) throws(ProfileError) -> UInt64 {
        let text = try reader.string(field, expected: "a size such as 512MiB")
        guard let bytes = ProfileLoader.parseSize(text) else {
            if !text.isEmpty, text.allSatisfy(\.isASCIIDigitCharacter) {
                throw reader.error(field, "size \"\(text)\" has no unit",
                                   hint: "write \(text)B for bytes or \(text)MiB for mebibytes; \(Self.sizeHint)")
            }
            throw reader.error(field, "invalid size \"\(text)\"", hint: Self.sizeHint)
        }
        guard bytes >= minimum else {
            throw reader.error(field, "\(what) must be at least \(Limits.format(bytes: minimum))", hint: Self.sizeHint)
        }
        return bytes
    }

    private func count(_ field: Field, what: String, range: ClosedRange<Int>) throws(ProfileError) -> Int {
        let text = try reader.string(field, expected: "a whole number")
        guard let value = Int(text), range.contains(value) else {
            throw reader.error(field, "\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"")
        }
        return value
    }

    private func cpuQuota(_ field: Field) throws(ProfileError) -> Double {
        let text = try reader.string(field, expected: "a share of CPU such as 50% or 0.5")
        guard let cores = ProfileLoader.parseCPUQuota(text), cores >= 0.01, cores <= 1024 else {
            throw reader.error(field, "invalid cpu_quota \"\(text)\"",
                               hint: "write a share of one core (50%, 250%) or a number of cores (0.5, 2), at least 1%")
        }
        return cores
    }

    func duration(_ field: Field, what: String) throws(ProfileError) -> Duration {
        let text = try reader.string(field, expected: "a duration such as 30s")
        guard let duration = ProfileLoader.parseDuration(text) else {
            if !text.isEmpty, text.allSatisfy(\.isASCIIDigitCharacter) {
                throw reader.error(field, "duration \"\(text)\" has no unit",
                                   hint: "write \(text)s for seconds; units are ms, s, m and h")
            }
            throw reader.error(field, "invalid duration \"\(text)\"", hint: Self.durationHint)
        }
        guard duration > .zero else {
            throw reader.error(field, "\(what) must be longer than zero", hint: Self.durationHint)
        }
        return duration
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}

// MARK: - syscalls

extension ManifestParser {
    static let syscallKeys = ["base", "allow", "deny", "on_deny", "watch"]

    func syscalls(_ field: Field) throws(ProfileError) -> SyscallSpec {
        var spec = SyscallSpec()
        var allow: [Placed] = []
        var deny: [Placed] = []
        var watch: [Placed] = []
        for entry in try reader.mapping(field) {
            switch entry.key {
            case "base":
                let text = try reader.string(entry.value, expected: "a syscall base")
                guard let base = SyscallBase(rawValue: text) else {
                    throw reader.error(entry.value, "unknown syscall base `\(text)`",
                                       hint: "this Corral has one base: default")
                }
                spec.base = base
            case "allow":
                allow = try syscallNames(entry.value)
                spec.allow = allow.map(\.value)
            case "deny":
                deny = try syscallNames(entry.value)
                spec.deny = deny.map(\.value)
            case "on_deny":
                spec.onDeny = try denyAction(entry.value)
            case "watch":
                watch = try watchNames(entry.value)
                spec.watch = watch.map(\.value)
            default:
                throw reader.unknownKey(entry, known: Self.syscallKeys)
            }
        }
        if let (earlier, later) = Placed.firstCommon(allow, deny) {
            throw reader.error(
                line: later.line, keyPath: later.keyPath,
                "`\(later.value)` is also \(earlier.keyPath) (line \(earlier.line)); a syscall cannot be both allowed and denied",
                hint: "remove one of the two")
        }
        // A denied call fails before seccomp would notify anyone (ERRNO outranks USER_NOTIF):
        // watching it would look like oversight and record nothing.
        if let (earlier, later) = Placed.firstCommon(deny, watch) {
            throw reader.error(
                line: later.line, keyPath: later.keyPath,
                "`\(later.value)` is also \(earlier.keyPath) (line \(earlier.line)); a syscall cannot be both denied and watched",
                hint: "remove one of the two; a denied syscall never reaches the supervisor")
        }
        return spec
    }

    /// Calls the launcher makes after installing the watch filter, before the supervisor
    /// serves it (see `WatchableSyscalls`).
    static let handoverSyscalls: Set<String> = ["sendmsg", "close", "write", "exit", "exit_group"]

    /// `syscalls.watch`: known names (as `allow` and `deny`), each one watchable.
    private func watchNames(_ field: Field) throws(ProfileError) -> [Placed] {
        let names = try syscallNames(field)
        for name in names where WatchableSyscalls.recorded[name.value] == nil {
            let why = Self.handoverSyscalls.contains(name.value)
                ? ": Corral's launcher calls it after installing the watch, so the run would wait forever" : ""
            throw reader.error(line: name.line, keyPath: name.keyPath, "`\(name.value)` cannot be watched\(why)",
                               hint: "watchable: " + WatchableSyscalls.names.joined(separator: ", "))
        }
        return names
    }

    static let sortedSyscallNames = KnownSyscalls.names.sorted()

    private func syscallNames(_ field: Field) throws(ProfileError) -> [Placed] {
        let items = try reader.list(field, expected: "a list of syscall names") {
            "write a list, even for one name: [\($0)]"
        }
        var names: [Placed] = []
        for item in items {
            let name = try reader.string(item, expected: "a syscall name")
            guard KnownSyscalls.names.contains(name) else {
                let near = NameSuggestion.nearest(to: name, among: Self.sortedSyscallNames)
                throw reader.error(item, "unknown syscall `\(name)`",
                                   hint: near.map { "did you mean `\($0)`?" }
                                       ?? "use Linux syscall names as in syscalls(2), such as `ptrace`")
            }
            names.append(Placed(value: name, keyPath: item.keyPath, line: item.line))
        }
        if let (earlier, later) = Placed.firstRepeat(in: names) {
            throw reader.error(line: later.line, keyPath: later.keyPath,
                               "`\(later.value)` is listed twice; first at \(earlier.keyPath) (line \(earlier.line))",
                               hint: "list each syscall once")
        }
        return names
    }

    private func denyAction(_ field: Field) throws(ProfileError) -> DenyAction {
        let text = try reader.string(field, expected: "an errno name or kill")
        if text == "kill" { return .kill }
        if let value = ErrnoNames.value(named: text) { return .errno(value) }
        let names = ErrnoNames.all.map(\.name)
        let near = NameSuggestion.nearest(to: text, among: names + ["kill"])
            ?? NameSuggestion.nearest(to: text.uppercased(), among: names)
        throw reader.error(field, "unknown on_deny action `\(text)`",
                           hint: near.map { "did you mean `\($0)`?" }
                               ?? "use an errno name such as EPERM, EACCES or ENOSYS, or kill")
    }
}

// MARK: - landlock

extension ManifestParser {
    func landlock(_ field: Field) throws(ProfileError) -> Enforcement {
        let text = try reader.string(field, expected: "required or best-effort")
        guard let enforcement = Enforcement(rawValue: text) else {
            let near = NameSuggestion.nearest(to: text, among: ["required", "best-effort"])
            throw reader.error(field, "unknown landlock mode `\(text)`",
                               hint: near.map { "did you mean `\($0)`?" } ?? "use required or best-effort")
        }
        return enforcement
    }
}
