// MARK: - run.env

extension ManifestParser {
    func env(_ field: Field) throws(ProfileError) -> EnvSpec {
        var env = EnvSpec()
        var places: [(group: String, names: [Placed])] = []
        for entry in try reader.mapping(field) {
            switch entry.key {
            case "pass", "secrets":
                let names = try variableNames(entry.value)
                places.append((entry.key, names))
                if entry.key == "pass" { env.pass = names.map(\.value) } else { env.secrets = names.map(\.value) }
            case "set":
                let variables = try fixedVariables(entry.value)
                places.append(("set", variables.map { Placed(value: $0.variable.name, keyPath: $0.keyPath, line: $0.line) }))
                env.set = variables.map(\.variable)
            default:
                throw reader.unknownKey(entry, known: ["pass", "set", "secrets"])
            }
        }
        for (index, first) in places.enumerated() {
            for second in places[(index + 1)...] {
                if let (earlier, later) = Placed.firstCommon(first.names, second.names) {
                    throw reader.error(
                        line: later.line, keyPath: later.keyPath,
                        "`\(later.value)` is also \(earlier.keyPath) (line \(earlier.line)); a variable is either passed, set or secret",
                        hint: "keep it in one place; secrets are passed like pass but never shown in output")
                }
            }
        }
        return env
    }

    /// `pass` and `secrets`: lists of variable names, each once.
    private func variableNames(_ field: Field) throws(ProfileError) -> [Placed] {
        let items = try reader.list(field, expected: "a list of variable names") { "write a list, even for one name: [\($0)]" }
        var names: [Placed] = []
        for item in items {
            let name = try reader.string(item, expected: "a variable name")
            try checkVariableName(name, field: item)
            names.append(Placed(value: name, keyPath: item.keyPath, line: item.line))
        }
        if let (earlier, later) = Placed.firstRepeat(in: names) {
            throw reader.error(line: later.line, keyPath: later.keyPath,
                               "`\(later.value)` is listed twice; first at \(earlier.keyPath) (line \(earlier.line))",
                               hint: "list each variable once")
        }
        return names
    }

    /// `set`: a mapping of NAME: value. Numbers and booleans keep their text as written.
    private func fixedVariables(_ field: Field) throws(ProfileError) -> [(variable: EnvVariable, keyPath: String, line: Int)] {
        var variables: [(variable: EnvVariable, keyPath: String, line: Int)] = []
        let entries = try reader.mapping(field, expected: "a mapping of NAME: value",
                                         hint: "write `set: { NAME: value }`")
        for entry in entries {
            let keyField = Field(node: entry.value.node, keyPath: entry.value.keyPath, line: entry.keyLine)
            try checkVariableName(entry.key, field: keyField)
            guard case .scalar(let scalar) = entry.value.node else {
                throw reader.typeMismatch(entry.value, expected: "a string or number")
            }
            if ManifestReader.isNull(entry.value.node) {
                throw reader.typeMismatch(entry.value, expected: "a string or number",
                                          hint: "write \(entry.key): \"\" for an empty value")
            }
            variables.append((EnvVariable(name: entry.key, value: scalar.string), entry.value.keyPath, entry.keyLine))
        }
        return variables
    }

    private func checkVariableName(_ name: String, field: Field) throws(ProfileError) {
        guard let first = name.unicodeScalars.first,
              first == "_" || Self.isASCIILetter(first),
              name.unicodeScalars.allSatisfy({ $0 == "_" || Self.isASCIILetter($0) || ("0"..."9").contains($0) })
        else {
            throw reader.error(field, "`\(name)` is not a valid variable name",
                               hint: "use letters, digits and _, not starting with a digit")
        }
    }

    private static func isASCIILetter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
    }
}
