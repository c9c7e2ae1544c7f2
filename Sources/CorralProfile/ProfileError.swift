/// A manifest that cannot be read or that asks for something impossible.
///
/// Each error names one place (file, line, key path) and says in one line what is wrong,
/// optionally followed by a hint saying what to write instead:
///
///     profiles/x.yaml:12: filesystem.write[1]: unknown key `wirte`
///       hint: did you mean `write`?
public struct ProfileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The manifest's path as the user named it.
    public var file: String
    /// 1-based line, or nil when the error concerns the whole file (for example an empty one).
    public var line: Int?
    /// Dotted key path (`filesystem.write[1]`, `run.env.set.FOO`); "" is the whole document.
    public var keyPath: String
    /// One line, no trailing period.
    public var message: String
    /// What to change, when there is something useful to say.
    public var hint: String?

    public init(file: String, line: Int?, keyPath: String, message: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
        self.hint = hint
    }

    /// `profiles/x.yaml:12: filesystem.write[1]: message`, then `\n  hint: …` when there is a hint.
    public var description: String {
        let place = keyPath.isEmpty ? "(document)" : keyPath
        var text = if let line { "\(file):\(line): \(place): \(message)" } else { "\(file): \(place): \(message)" }
        if let hint {
            text += "\n  hint: \(hint)"
        }
        return text
    }

    /// Where the error points, when it has a line.
    public var location: ManifestLocation? {
        line.map { ManifestLocation(file: file, line: $0, keyPath: keyPath) }
    }
}
