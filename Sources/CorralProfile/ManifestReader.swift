/// A value in the manifest together with how it was reached.
struct Field {
    var node: Node
    /// `filesystem.write[1]`; "" for the document itself.
    var keyPath: String
    /// The line errors about this value point at.
    var line: Int

    /// The field under `key` of this mapping.
    func child(_ key: String, node: Node, keyLine: Int) -> Field {
        Field(node: node, keyPath: keyPath.isEmpty ? key : "\(keyPath).\(key)",
              line: Self.line(of: node, fallback: keyLine))
    }

    /// The `index`th item of this list.
    func item(_ index: Int, node: Node) -> Field {
        Field(node: node, keyPath: "\(keyPath)[\(index)]", line: Self.line(of: node, fallback: line))
    }

    /// An empty value (`write:` with nothing after it) has no useful mark of its own, so it
    /// points at its key's line.
    private static func line(of node: Node, fallback: Int) -> Int {
        if case .scalar(let scalar) = node, scalar.string.isEmpty, scalar.style == .plain {
            return fallback
        }
        return node.mark?.line ?? fallback
    }
}

/// One `key: value` pair of a mapping.
struct MappingEntry {
    var key: String
    var keyLine: Int
    var value: Field
}

/// Type-checked access to manifest nodes; every failure becomes a `ProfileError` naming the
/// field's line and key path.
struct ManifestReader {
    let file: String

    // MARK: - Errors

    func error(_ field: Field, _ message: String, hint: String? = nil) -> ProfileError {
        ProfileError(file: file, line: field.line, keyPath: field.keyPath, message: message, hint: hint)
    }

    func error(line: Int?, keyPath: String, _ message: String, hint: String? = nil) -> ProfileError {
        ProfileError(file: file, line: line, keyPath: keyPath, message: message, hint: hint)
    }

    /// "unknown key `wirte`", with a did-you-mean or the list of keys valid at this level.
    /// `alsoNear` are keys that exist but are refused; they are suggested, not listed.
    func unknownKey(_ entry: MappingEntry, known: [String], alsoNear: [String] = []) -> ProfileError {
        let hint = if let near = NameSuggestion.nearest(to: entry.key, among: known + alsoNear) {
            "did you mean `\(near)`?"
        } else {
            "expected one of: \(known.joined(separator: ", "))"
        }
        return error(line: entry.keyLine, keyPath: entry.value.keyPath, "unknown key `\(entry.key)`", hint: hint)
    }

    /// "expected a list of paths, found a mapping"
    func typeMismatch(_ field: Field, expected: String, hint: String? = nil) -> ProfileError {
        error(field, "expected \(expected), found \(Self.kind(of: field.node))", hint: hint)
    }

    /// How a node is named in "found …".
    static func kind(of node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar:
            switch node.tag {
            case .null: "null"
            case .int, .float: "a number"
            case .bool: "a boolean"
            case .string: "a string"
            }
        }
    }

    static func isNull(_ node: Node) -> Bool {
        if case .scalar = node { return node.tag == .null }
        return false
    }

    // MARK: - Typed access

    /// The pairs of a mapping in document order, after checking that no key repeats.
    func mapping(_ field: Field, expected: String = "a mapping", hint: String? = nil)
        throws(ProfileError) -> [MappingEntry]
    {
        guard case .mapping(let mapping, _) = field.node else {
            throw typeMismatch(field, expected: expected, hint: hint)
        }
        var entries: [MappingEntry] = []
        entries.reserveCapacity(mapping.count)
        for (keyNode, valueNode) in mapping {
            let keyLine = keyNode.mark?.line ?? field.line
            guard case .scalar(let keyScalar) = keyNode else {
                let keyField = Field(node: keyNode, keyPath: field.keyPath, line: keyLine)
                throw typeMismatch(keyField, expected: "a key name")
            }
            let key = keyScalar.string
            let value = field.child(key, node: valueNode, keyLine: keyLine)
            // A manifest's mappings have a handful of keys: a linear scan beats a dictionary
            // (whose generic storage is set up at run time, on the launch path).
            if let first = entries.first(where: { $0.key == key }) {
                throw error(line: keyLine, keyPath: value.keyPath,
                            "duplicate key `\(key)`; it is first given on line \(first.keyLine)",
                            hint: "give each key once")
            }
            entries.append(MappingEntry(key: key, keyLine: keyLine, value: value))
        }
        return entries
    }

    /// The items of a list.
    func list(_ field: Field, expected: String, hint: ((String) -> String)? = nil)
        throws(ProfileError) -> [Field]
    {
        guard case .sequence(let sequence, _) = field.node else {
            var hintText: String?
            if case .scalar(let scalar) = field.node, !Self.isNull(field.node) {
                hintText = hint?(scalar.string)
            } else if Self.isNull(field.node) {
                hintText = "write [] for an empty list"
            }
            throw typeMismatch(field, expected: expected, hint: hintText)
        }
        return sequence.enumerated().map { field.item($0.offset, node: $0.element) }
    }

    /// A scalar's text exactly as written: `1.0` stays "1.0", `yes` stays "yes".
    func string(_ field: Field, expected: String = "a string") throws(ProfileError) -> String {
        guard case .scalar(let scalar) = field.node, !Self.isNull(field.node) else {
            throw typeMismatch(field, expected: expected)
        }
        return scalar.string
    }

    func bool(_ field: Field) throws(ProfileError) -> Bool {
        guard case .scalar = field.node, let value = field.node.bool else {
            throw typeMismatch(field, expected: "true or false")
        }
        return value
    }
}

// MARK: - Did you mean

enum NameSuggestion {
    /// The closest candidate within edit distance 2 (and closer than the name's own length, so
    /// `ab` does not suggest `id`). Ties go to the earlier candidate.
    static func nearest(to name: String, among candidates: some Sequence<String>) -> String? {
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(name, candidate)
            guard distance <= 2, distance < name.count else { continue }
            if best.map({ distance < $0.distance }) ?? true {
                best = (candidate, distance)
            }
        }
        return best?.name
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    /// two neighbours each cost 1, so `wirte` is 1 from `write`.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var twoBack = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], twoBack[j - 2] + 1)
                }
            }
            (twoBack, previous, current) = (previous, current, twoBack)
        }
        return previous[b.count]
    }
}

// MARK: - Contradictions

/// A value given at some place in the manifest, for finding repeats and contradictions.
struct Placed {
    var value: String
    var keyPath: String
    var line: Int

    /// Of two places, the one further down the file comes second; errors point at it.
    static func ordered(_ a: Placed, _ b: Placed) -> (earlier: Placed, later: Placed) {
        b.line < a.line ? (b, a) : (a, b)
    }

    /// The repeat within one list that comes first in the file.
    static func firstRepeat(in list: [Placed]) -> (earlier: Placed, later: Placed)? {
        // Manifest lists are short: comparing pairs beats a dictionary, whose generic
        // storage is set up at run time on the launch path.
        var found: (earlier: Placed, later: Placed)?
        for (index, place) in list.enumerated() {
            guard let earlier = list[..<index].first(where: { $0.value == place.value }) else { continue }
            let pair = ordered(earlier, place)
            if found.map({ pair.later.line < $0.later.line }) ?? true { found = pair }
        }
        return found
    }

    /// The value present in both lists whose second mention comes first in the file.
    static func firstCommon(_ a: [Placed], _ b: [Placed]) -> (earlier: Placed, later: Placed)? {
        var inA: [String: Placed] = [:]
        for place in a where inA[place.value] == nil { inA[place.value] = place }
        var found: (earlier: Placed, later: Placed)?
        for place in b {
            guard let other = inA[place.value] else { continue }
            let pair = ordered(other, place)
            if found.map({ pair.later.line < $0.later.line }) ?? true { found = pair }
        }
        return found
    }
}
