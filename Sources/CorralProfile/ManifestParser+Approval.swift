/// `approval:` (what happens to a clean run's writes) and `audit:` (where its decisions are logged).
extension ManifestParser {
    /// Keys of `approval` that the oversight issue adds (asking a human about actions).
    static let laterApprovalKeys = ["actions", "approver", "timeout"]

    func approval(_ field: Field) throws(ProfileError) -> ApprovalSpec {
        var spec = ApprovalSpec()
        for item in try reader.mapping(field) {
            switch item.key {
            case "commit":
                let text = try reader.string(item.value, expected: "auto, ask, never or direct")
                guard let mode = CommitMode(rawValue: text) else {
                    let near = NameSuggestion.nearest(to: text, among: CommitMode.allCases.map(\.rawValue))
                    throw reader.error(item.value, "unknown commit mode `\(text)`",
                                       hint: near.map { "did you mean `\($0)`?" }
                                           ?? "use auto (commit a clean run), ask (keep it pending), never (dry run) or direct (no staging)")
                }
                spec.commit = mode
                spec.commitLocation = ManifestLocation(file: reader.file, line: item.value.line, keyPath: item.value.keyPath)
            case let key where Self.laterApprovalKeys.contains(key):
                throw reader.error(line: item.keyLine, keyPath: "approval.\(key)",
                                   "`approval.\(key)` is not supported yet by this Corral",
                                   hint: "remove it; this Corral would not act on it")
            default:
                throw reader.unknownKey(item, known: ["commit"], alsoNear: Self.laterApprovalKeys)
            }
        }
        return spec
    }

    func audit(_ field: Field) throws(ProfileError) -> AuditSpec {
        var spec = AuditSpec()
        for item in try reader.mapping(field) {
            switch item.key {
            case "log":
                spec.log = try resolvePath(try reader.string(item.value), field: item.value, globsAllowed: false)
            default:
                throw reader.unknownKey(item, known: ["log"])
            }
        }
        return spec
    }
}
