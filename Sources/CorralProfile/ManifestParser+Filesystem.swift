// MARK: - filesystem

extension ManifestParser {
    func filesystem(_ field: Field) throws(ProfileError) -> FilesystemSpec {
        var spec = FilesystemSpec()
        for entry in try reader.mapping(field) {
            switch entry.key {
            case "read": spec.read = try pathList(entry.value, globsAllowed: false)
            case "write": spec.write = try pathList(entry.value, globsAllowed: false)
            case "exec": spec.exec = try pathList(entry.value, globsAllowed: true)
            case "deny": spec.deny = try pathList(entry.value, globsAllowed: false)
            default: throw reader.unknownKey(entry, known: ["read", "write", "exec", "deny"])
            }
        }
        try checkConsistency(spec)
        return spec
    }

    /// A list whose items are a path or `{ path: …, optional: true }`.
    private func pathList(_ field: Field, globsAllowed: Bool) throws(ProfileError) -> [PathEntry] {
        let items = try reader.list(field, expected: "a list of paths") { "write a list, even for one path: [\($0)]" }
        var entries: [PathEntry] = []
        for item in items {
            let entry = try pathEntry(item, globsAllowed: globsAllowed)
            if field.keyPath == "filesystem.write", entry.path == "/" {
                throw reader.error(item, "`/` cannot be writable; that would let the run change the whole host",
                                   hint: "list only the folders the goal writes to")
            }
            entries.append(entry)
        }
        return entries
    }

    private func pathEntry(_ item: Field, globsAllowed: Bool) throws(ProfileError) -> PathEntry {
        let listName = String(item.keyPath.prefix { $0 != "[" })
        switch item.node {
        case .scalar where !ManifestReader.isNull(item.node):
            let path = try resolvePath(reader.string(item), field: item, listName: listName, globsAllowed: globsAllowed)
            return PathEntry(path: path, location: location(of: item))
        case .mapping:
            var text: (String, Field)?
            var optional = false
            for entry in try reader.mapping(item) {
                switch entry.key {
                case "path":
                    if ManifestReader.isNull(entry.value.node) {
                        throw reader.typeMismatch(entry.value, expected: "a path", hint: Self.bareTildeHint)
                    }
                    text = (try reader.string(entry.value, expected: "a path"), entry.value)
                case "optional": optional = try reader.bool(entry.value)
                default: throw reader.unknownKey(entry, known: ["path", "optional"])
                }
            }
            guard let (pathText, pathField) = text else {
                throw reader.error(line: item.line, keyPath: "\(item.keyPath).path", "missing required key `path`",
                                   hint: "write `{ path: /some/folder, optional: true }`")
            }
            let path = try resolvePath(pathText, field: pathField, listName: listName, globsAllowed: globsAllowed)
            return PathEntry(path: path, optional: optional, location: location(of: item))
        default:
            throw reader.typeMismatch(item, expected: "a path or { path, optional }",
                                      hint: ManifestReader.isNull(item.node) ? Self.bareTildeHint : nil)
        }
    }

    /// YAML reads a bare `~` as null, the commonest way to get null where a path belongs.
    private static let bareTildeHint = "a bare ~ is null in YAML; write \"~\" for the home folder"

    /// Expands `~`, joins relative paths to the manifest's folder and normalises.
    ///
    /// - Parameter listName: the key named in "patterns are not supported in …" messages.
    func resolvePath(_ text: String, field: Field, listName: String? = nil, globsAllowed: Bool)
        throws(ProfileError) -> String
    {
        let listName = listName ?? field.keyPath
        guard !text.isEmpty else {
            throw reader.error(field, "the path is empty", hint: "name a file or folder, or remove the entry")
        }
        // Control characters in a path are never legitimate and would let a manifest forge
        // lines in `corral explain` or drive the reader's terminal.
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }) {
            throw reader.error(field, "the path contains a control character",
                               hint: "write the path without newlines, tabs or escape characters")
        }
        if text.contains("**") {
            throw reader.error(field, globsAllowed
                ? "`**` patterns are not supported in \(listName) yet"
                : "patterns are not supported in \(listName) yet",
                hint: globsAllowed
                    ? "`*` matches within one folder; list each folder that holds programs"
                    : "write the path literally; only filesystem.exec accepts `*`, `?` and `[`")
        }
        if !globsAllowed, PathText.containsGlob(text) {
            throw reader.error(field, "patterns are not supported in \(listName) yet",
                               hint: "write the path literally; only filesystem.exec accepts `*`, `?` and `[`")
        }
        guard text.hasPrefix("~") else {
            return PathText.absolute(text, relativeTo: directory)
        }
        guard text == "~" || text.hasPrefix("~/") else {
            throw reader.error(field, "\"\(text)\" names another user's home folder, which is not supported",
                               hint: "write the absolute path")
        }
        guard let home else {
            throw reader.error(field, "cannot resolve \"\(text)\": no home folder is known",
                               hint: "write the absolute path, or set HOME")
        }
        return PathText.normalise(home + "/" + text.dropFirst())
    }

    // MARK: Contradictions

    private func placed(_ entries: [PathEntry]) -> [Placed] {
        entries.map { Placed(value: $0.path, keyPath: $0.location.keyPath, line: $0.location.line) }
    }

    /// Repeats, contradictions between lists and exec entries that could never run.
    private func checkConsistency(_ spec: FilesystemSpec) throws(ProfileError) {
        let read = placed(spec.read), write = placed(spec.write)
        let exec = placed(spec.exec), deny = placed(spec.deny)
        for list in [read, write, exec, deny] {
            if let (earlier, later) = Placed.firstRepeat(in: list) {
                throw reader.error(line: later.line, keyPath: later.keyPath,
                                   "\"\(later.value)\" is listed twice; first at \(earlier.keyPath) (line \(earlier.line))",
                                   hint: "list each path once")
            }
        }

        let pairs: [([Placed], [Placed], String, String)] = [
            (write, deny, "a path cannot be both writable and denied",
             "remove one; deny is for paths inside an allowed tree, not the tree itself"),
            (read, deny, "a path cannot be both readable and denied",
             "remove one; deny is for paths inside an allowed tree, not the tree itself"),
            (read, write, "a path cannot be both read-only and writable",
             "write implies read; list it once, under filesystem.write"),
        ]
        for (first, second, reason, hint) in pairs {
            if let (earlier, later) = Placed.firstCommon(first, second) {
                throw reader.error(line: later.line, keyPath: later.keyPath,
                                   "\"\(later.value)\" is also \(earlier.keyPath) (line \(earlier.line)); \(reason)",
                                   hint: hint)
            }
        }

        // A bind inside a denied folder would be mounted over the mask and show what the
        // deny hides (the masks are applied after every bind).
        for entry in read + write {
            if let denied = deny.first(where: { PathText.isWithin(entry.value, $0.value) && entry.value != $0.value }) {
                throw reader.error(
                    line: entry.line, keyPath: entry.keyPath,
                    "\"\(entry.value)\" lies under \(denied.keyPath) (line \(denied.line)), which hides it",
                    hint: "remove the entry or narrow the deny path")
            }
        }

        for program in exec {
            // A pattern can only match inside the folder its literal part names.
            let folder = PathText.literalFolder(of: program.value)
            if let writable = write.first(where: { PathText.isWithin(folder, $0.value) }) {
                throw reader.error(
                    line: program.line, keyPath: program.keyPath,
                    "\"\(program.value)\" lies under \(writable.keyPath) (line \(writable.line)), which is mounted noexec",
                    hint: "programs must come from read-only paths; move it out of the write path")
            }
            if let denied = deny.first(where: { PathText.isWithin(folder, $0.value) }) {
                throw reader.error(
                    line: program.line, keyPath: program.keyPath,
                    "\"\(program.value)\" lies under \(denied.keyPath) (line \(denied.line)), which hides it",
                    hint: "remove the exec entry or narrow the deny path")
            }
            if !read.contains(where: { PathText.isWithin(folder, $0.value) }) {
                throw reader.error(line: program.line, keyPath: program.keyPath,
                                   "\"\(program.value)\" is not under any filesystem.read path",
                                   hint: "add its folder to filesystem.read")
            }
        }
    }
}
