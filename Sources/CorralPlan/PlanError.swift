import CorralProfile

/// A manifest that is valid on its own but cannot be run on this host as asked, found
/// while compiling the plan (before anything is launched).
public struct PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: ManifestLocation?
    public var message: String
    public var hint: String?

    public init(_ message: String, at location: ManifestLocation? = nil, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        text += message
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }
}
