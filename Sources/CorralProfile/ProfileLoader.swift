/// Reads goal manifests (YAML or JSON, schema version 1) into validated `Profile`s.
public enum ProfileLoader {
    /// Parses and validates a manifest.
    ///
    /// Pure: nothing is read from disk and nothing is resolved through symlinks. Relative paths
    /// are joined to `directory` and `~` to `home`, then normalised as text.
    ///
    /// - Parameters:
    ///   - contents: The manifest's text.
    ///   - file: The path as the user named it; used verbatim in messages.
    ///   - directory: The absolute folder relative paths resolve against (the manifest's folder).
    ///   - home: What `~` stands for; nil makes any `~` path an error.
    /// - Throws: `ProfileError` for the first problem in the file: a YAML syntax error, an unknown
    ///   or unsupported key, a wrong type, an invalid value or a contradiction between two keys.
    public static func load(contents: String, file: String, directory: String, home: String?)
        throws(ProfileError) -> Profile
    {
        // A byte-order mark (editors on Windows write one) is not YAML content.
        let text = contents.unicodeScalars.first == "\u{FEFF}"
            ? String(contents.unicodeScalars.dropFirst()) : contents
        guard let root = try ManifestComposer.compose(text, file: file), !ManifestReader.isNull(root) else {
            throw ProfileError(file: file, line: nil, keyPath: "", message: "the manifest is empty",
                               hint: "start with `version: 1` and `goal: { id: my-goal }`")
        }
        let parser = ManifestParser(
            reader: ManifestReader(file: file),
            directory: PathText.normalise(directory),
            home: home.map(PathText.normalise)
        )
        return try parser.profile(root, source: ProfileSource(file: file, directory: directory))
    }
}

/// Walks a composed manifest section by section.
struct ManifestParser {
    let reader: ManifestReader
    let directory: String
    let home: String?

    static let topLevelKeys = ["version", "goal", "run", "filesystem", "network", "limits", "monitor", "syscalls",
                               "landlock", "approval", "audit", "on_violation"]
    /// Keys DESIGN.md describes that later versions of Corral act on. Refusing them is safer
    /// than ignoring a rule the user believes is enforced.
    static let laterTopLevelKeys = ["invariants"]

    func profile(_ root: Node, source: ProfileSource) throws(ProfileError) -> Profile {
        let document = Field(node: root, keyPath: "", line: root.mark?.line ?? 1)
        let entries = try reader.mapping(document, expected: "a mapping at the top level")

        // The version decides how everything else reads, so it is checked first.
        if let version = entries.first(where: { $0.key == "version" }) {
            try checkVersion(version.value)
        }

        var goal: Goal?
        var run = RunSpec()
        var filesystem = FilesystemSpec()
        var network = NetworkSpec()
        var limits = Limits()
        var monitor: [MonitorRule] = []
        var syscalls = SyscallSpec()
        var landlock = Enforcement.required
        var approval = ApprovalSpec()
        var audit = AuditSpec()
        // `on_violation` is the action of rules without `then`: read before `monitor`.
        let onViolation = try entries.first { $0.key == "on_violation" }.map { (entry) throws(ProfileError) in
            try action(entry.value)
        }
        for entry in entries {
            switch entry.key {
            case "version": continue
            case "goal": goal = try self.goal(entry)
            case "run": run = try self.run(entry.value)
            case "filesystem": filesystem = try self.filesystem(entry.value)
            case "network": network = try self.network(entry.value)
            case "limits": limits = try self.limits(entry.value)
            case "monitor": monitor = try self.monitor(entry.value, defaultAction: onViolation)
            case "on_violation": continue
            case "syscalls": syscalls = try self.syscalls(entry.value)
            case "landlock": landlock = try self.landlock(entry.value)
            case "approval": approval = try self.approval(entry.value)
            case "audit": audit = try self.audit(entry.value)
            case let key where Self.laterTopLevelKeys.contains(key):
                throw reader.error(line: entry.keyLine, keyPath: key, "`\(key)` is not supported yet by this Corral",
                                   hint: "remove it; this Corral would not act on it")
            default:
                throw reader.unknownKey(entry, known: Self.topLevelKeys, alsoNear: Self.laterTopLevelKeys)
            }
        }
        guard let goal else {
            throw reader.error(line: document.line, keyPath: "goal", "missing required key `goal`",
                               hint: "add `goal: { id: my-goal }`")
        }

        var profile = Profile(goal: goal, source: source)
        profile.run = run
        profile.filesystem = filesystem
        profile.network = network
        profile.limits = limits
        profile.monitor = monitor
        profile.syscalls = syscalls
        profile.landlock = landlock
        profile.approval = approval
        profile.audit = audit
        return profile
    }

    private func checkVersion(_ field: Field) throws(ProfileError) {
        guard case .scalar(let scalar) = field.node, !ManifestReader.isNull(field.node) else {
            throw reader.typeMismatch(field, expected: "a version number")
        }
        guard scalar.string == "1" else {
            throw reader.error(field, "unsupported version \(scalar.string); this Corral reads version 1")
        }
    }

    // MARK: - goal

    private func goal(_ entry: MappingEntry) throws(ProfileError) -> Goal {
        let field = entry.value
        var id: String?
        var intent: String?
        var agent: String?
        for item in try reader.mapping(field) {
            switch item.key {
            case "id": id = try goalID(item.value)
            case "intent": intent = try reader.string(item.value)
            case "agent": agent = try reader.string(item.value)
            default: throw reader.unknownKey(item, known: ["id", "intent", "agent"])
            }
        }
        guard let id else {
            throw reader.error(line: entry.keyLine, keyPath: "goal.id", "missing required key `id`",
                               hint: "add a name made of a-z, 0-9 and -, such as `id: weekly-report`")
        }
        return Goal(id: id, intent: intent, agent: agent)
    }

    private static let goalIDCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-")

    private func goalID(_ field: Field) throws(ProfileError) -> String {
        let id = try reader.string(field)
        guard !id.isEmpty else {
            throw reader.error(field, "the goal id is empty", hint: "use a-z, 0-9 and -, such as `weekly-report`")
        }
        guard id.allSatisfy(Self.goalIDCharacters.contains) else {
            let words = id.lowercased().split { !Self.goalIDCharacters.contains($0) || $0 == "-" }
            let suggestion = words.joined(separator: "-").prefix(63)
            throw reader.error(field, "goal id \"\(id)\" may only use a-z, 0-9 and -",
                               hint: suggestion.isEmpty
                                   ? "it becomes the sandbox's hostname; use a-z, 0-9 and -"
                                   : "it becomes the sandbox's hostname; try \"\(suggestion)\"")
        }
        guard id.count <= 63 else {
            throw reader.error(field, "goal id is \(id.count) characters long; at most 63 are allowed",
                               hint: "it becomes the sandbox's hostname, which is limited to 63 characters")
        }
        return id
    }

    // MARK: - run

    private func run(_ field: Field) throws(ProfileError) -> RunSpec {
        var run = RunSpec()
        for entry in try reader.mapping(field) {
            switch entry.key {
            case "command": run.command = try command(entry.value)
            case "workdir": run.workdir = try workdir(entry.value)
            case "env": run.env = try env(entry.value)
            default: throw reader.unknownKey(entry, known: ["command", "workdir", "env"])
            }
        }
        return run
    }

    private func command(_ field: Field) throws(ProfileError) -> [String] {
        let items = try reader.list(field, expected: "a list of strings") { text in
            "write it as a list: [\(text.split(separator: " ").joined(separator: ", "))]"
        }
        var command: [String] = []
        for item in items {
            command.append(try reader.string(item))
        }
        if let program = command.first, program.isEmpty {
            throw reader.error(items[0], "the program name is empty", hint: "name the program to run first")
        }
        return command
    }

    private func workdir(_ field: Field) throws(ProfileError) -> PathEntry {
        let text = try reader.string(field, expected: "a path")
        let path = try resolvePath(text, field: field, globsAllowed: false)
        return PathEntry(path: path, location: location(of: field))
    }

    func location(of field: Field) -> ManifestLocation {
        ManifestLocation(file: reader.file, line: field.line, keyPath: field.keyPath)
    }
}
