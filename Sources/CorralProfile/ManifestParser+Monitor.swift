// MARK: - monitor

extension ManifestParser {
    static let monitorKeys = ["id", "when", "then"]
    static let conditionHint = "write one of: rate(connect) > 20/1s, exec-outside-allowlist, write-outside-declared, new-host, "
        + "processes > 50, memory > 400MiB, output > 1MiB, cpu > 30s, limit(processes), limit(memory)"

    /// An action: `then` of a rule, or `on_violation`.
    func action(_ field: Field) throws(ProfileError) -> MonitorAction {
        let text = try reader.string(field, expected: "alert, pause, kill or rollback")
        guard let parsed = MonitorAction(rawValue: text) else {
            throw reader.error(field, "unknown action `\(text)`",
                               hint: "alert (an event), pause (freeze the run), kill (end it) or rollback (end it, "
                                   + "discard its writes)")
        }
        return parsed
    }

    /// `monitor:` — a list of `{ id, when, then }`. Ids default to `rule-1`, `rule-2`, … and
    /// must be unique; they name the rule in events and kill reasons.
    /// - Parameter defaultAction: `on_violation`, for rules without `then`.
    func monitor(_ field: Field, defaultAction: MonitorAction? = nil) throws(ProfileError) -> [MonitorRule] {
        let items = try reader.list(field, expected: "a list of rules") { _ in
            "write a list: - { when: \"rate(connect) > 20/1s\", then: kill }"
        }
        var rules: [MonitorRule] = []
        var ids: [Placed] = []
        for (index, item) in items.enumerated() {
            var id = "rule-\(index + 1)"
            var idField = item
            var condition: MonitorCondition?
            var action: MonitorAction?
            for entry in try reader.mapping(item, expected: "a rule such as { when: exec-outside-allowlist, then: kill }") {
                switch entry.key {
                case "id":
                    id = try ruleID(entry.value)
                    idField = entry.value
                case "when":
                    condition = try self.condition(entry.value)
                case "then":
                    action = try self.action(entry.value)
                default:
                    throw reader.unknownKey(entry, known: Self.monitorKeys)
                }
            }
            guard let condition else {
                throw reader.error(item, "the rule has no `when`", hint: Self.conditionHint)
            }
            guard let action = action ?? defaultAction else {
                throw reader.error(item, "the rule has no `then`",
                                   hint: "add then: alert, pause, kill or rollback, or set on_violation for every rule")
            }
            ids.append(Placed(value: id, keyPath: idField.keyPath, line: idField.line))
            rules.append(MonitorRule(id: id, condition: condition, action: action,
                                     location: ManifestLocation(file: reader.file, line: item.line, keyPath: item.keyPath)))
        }
        if let (earlier, later) = Placed.firstRepeat(in: ids) {
            throw reader.error(line: later.line, keyPath: later.keyPath,
                               "rule id `\(later.value)` is used twice; first at \(earlier.keyPath) (line \(earlier.line))",
                               hint: "give each rule its own id")
        }
        return rules
    }

    private func ruleID(_ field: Field) throws(ProfileError) -> String {
        let id = try reader.string(field, expected: "a rule id")
        guard !id.isEmpty, id.count <= 63,
              id.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
        else {
            throw reader.error(field, "rule id \"\(id)\" may only use a-z, 0-9 and - (at most 63)",
                               hint: "such as `too-many-connects`")
        }
        return id
    }

    private func condition(_ field: Field) throws(ProfileError) -> MonitorCondition {
        let raw = try reader.string(field, expected: "a condition such as \"rate(connect) > 20/1s\"")
        let text = String(raw.filter { $0 != " " })
        switch text {
        case "exec-outside-allowlist": return .execOutsideAllowlist
        case "write-outside-declared": return .writeOutsideDeclared
        case "new-host": return .newHost
        default: break
        }
        if text.hasPrefix("limit("), text.hasSuffix(")") {
            let name = String(text.dropFirst(6).dropLast())
            guard let resource = LimitedResource(rawValue: name) else {
                throw reader.error(field, "limit(\(name)): no such limit",
                                   hint: "limit(processes) or limit(memory)")
            }
            return .limitReached(resource)
        }
        let sides = text.split(separator: ">", omittingEmptySubsequences: false)
        guard sides.count == 2, !sides[0].isEmpty, !sides[1].isEmpty else {
            throw reader.error(field, "cannot read the condition \"\(raw)\"", hint: Self.conditionHint)
        }
        let (subject, bound) = (String(sides[0]), String(sides[1]))
        if subject.hasPrefix("rate("), subject.hasSuffix(")") {
            let name = String(subject.dropFirst(5).dropLast())
            guard KnownSyscalls.names.contains(name) else {
                let near = NameSuggestion.nearest(to: name, among: Self.sortedSyscallNames)
                throw reader.error(field, "rate(\(name)): unknown syscall `\(name)`",
                                   hint: near.map { "did you mean `\($0)`?" } ?? "use a Linux syscall name, such as connect")
            }
            guard WatchableSyscalls.recorded[name] != nil else {
                throw reader.error(field, "rate(\(name)): `\(name)` cannot be watched",
                                   hint: "watchable: " + WatchableSyscalls.names.joined(separator: ", "))
            }
            let parts = bound.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let count = Int(parts[0]), count >= 0,
                  let window = ProfileLoader.parseDuration(String(parts[1])), window > .zero
            else {
                throw reader.error(field, "rate(\(name)) needs a bound like 20/1s, not \"\(bound)\"",
                                   hint: "calls per window: 20/1s, 100/10s, 5/250ms")
            }
            return .rate(syscall: name, count: count, window: window)
        }
        switch subject {
        case "processes":
            guard let n = Int(bound), n >= 0 else {
                throw reader.error(field, "processes > needs a whole number, not \"\(bound)\"", hint: "such as processes > 50")
            }
            return .processesAbove(n)
        case "memory", "output":
            guard let bytes = ProfileLoader.parseSize(bound) else {
                throw reader.error(field, "\(subject) > needs a size, not \"\(bound)\"", hint: Self.sizeHint)
            }
            return subject == "memory" ? .memoryAbove(bytes) : .outputAbove(bytes)
        case "cpu":
            guard let duration = ProfileLoader.parseDuration(bound) else {
                throw reader.error(field, "cpu > needs a duration, not \"\(bound)\"", hint: Self.durationHint)
            }
            return .cpuAbove(duration)
        default:
            throw reader.error(field, "cannot read the condition \"\(raw)\"", hint: Self.conditionHint)
        }
    }
}
