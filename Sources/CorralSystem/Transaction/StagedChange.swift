/// One `filesystem.write` path of a run: the real folder and the overlay's upper layer that
/// holds what the run wrote there (both absolute).
public struct WriteLayer: Sendable, Codable, Hashable {
    /// The real folder (the overlay's lowerdir).
    public var real: String
    /// The overlay's upperdir, in the run folder.
    public var upper: String

    public init(real: String, upper: String) {
        self.real = real
        self.upper = upper
    }
}

/// One change a commit makes to a real folder, as `corral diff` shows it.
public struct StagedChange: Sendable, Codable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, Hashable {
        /// Nothing was there.
        case added
        /// Different contents (a file) or target (a symlink).
        case modified
        /// Removed; a folder with everything in it.
        case deleted
        /// A folder the run replaced (an opaque folder in the upper whose real counterpart
        /// holds entries the upper does not: those are deleted, and listed as such), or a
        /// change of type (file → folder …).
        case replaced
        /// Same contents, other permission bits.
        case mode
    }

    public enum FileType: String, Sendable, Codable, Hashable {
        /// `other` is a device, fifo or socket: listed so a diff shows it, refused by commit.
        case file, directory, symlink, other
    }

    public var kind: Kind
    /// The absolute real path.
    public var path: String
    /// The type after the change (before it, for `deleted`).
    public var type: FileType
    /// The type before the change, when something was there.
    public var oldType: FileType?
    /// Permission bits (`07777`) before and after; nil where nothing is (or for symlinks).
    public var oldMode: UInt32?
    public var newMode: UInt32?
    /// Sizes in bytes of files before and after.
    public var oldSize: UInt64?
    public var newSize: UInt64?
    /// The symlink's target after the change (and before it, for a modified symlink).
    public var linkTarget: String?
    public var oldLinkTarget: String?

    public init(kind: Kind, path: String, type: FileType, oldType: FileType? = nil, oldMode: UInt32? = nil,
                newMode: UInt32? = nil, oldSize: UInt64? = nil, newSize: UInt64? = nil, linkTarget: String? = nil,
                oldLinkTarget: String? = nil) {
        self.kind = kind
        self.path = path
        self.type = type
        self.oldType = oldType
        self.oldMode = oldMode
        self.newMode = newMode
        self.oldSize = oldSize
        self.newSize = newSize
        self.linkTarget = linkTarget
        self.oldLinkTarget = oldLinkTarget
    }

    /// `modified file /w/a.txt 0644 12 -> 0644 15`, one line, control characters escaped.
    public var description: String {
        var text = "\(kind.rawValue) \(type.rawValue) \(CorralError.printable(path))"
        func octal(_ mode: UInt32?) -> String {
            guard let mode else { return "-" }
            let digits = String(mode, radix: 8)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
        if oldMode != nil || newMode != nil { text += " mode \(octal(oldMode)) -> \(octal(newMode))" }
        if oldSize != nil || newSize != nil {
            text += " size \(oldSize.map(String.init) ?? "-") -> \(newSize.map(String.init) ?? "-")"
        }
        if let oldLinkTarget { text += " was -> \(CorralError.printable(oldLinkTarget))" }
        if let linkTarget { text += " -> \(CorralError.printable(linkTarget))" }
        return text
    }
}

/// What `Transaction.commit` did.
public struct CommitSummary: Sendable, Codable, Hashable {
    /// The changes applied, as `Transaction.changes` listed them.
    public var changes: [StagedChange]
    /// `Transaction.digest(of: changes)`, for the audit log.
    public var digest: String
    /// The steps the commit went through (what `afterStep` counted up to).
    public var steps: Int
}

/// What `Transaction.recover` found and did.
public enum RecoverOutcome: Sendable, Codable, Hashable {
    /// No journal: no commit was interrupted.
    case nothingPending
    /// The commit was interrupted before its first change to a real folder: its staged
    /// copies were removed; the real folders are as before the commit. The run stays pending.
    case rolledBack
    /// The commit was interrupted after its point of no return: every operation of its
    /// journal was redone; the real folders hold all of the run's changes.
    case completed(operations: Int)
}
