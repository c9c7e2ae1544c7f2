import CorralProfile

/// Landlock filesystem rights, named as in the kernel's uapi (ABI in brackets).
public struct LandlockAccess: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let execute = LandlockAccess(rawValue: 1 << 0)
    public static let writeFile = LandlockAccess(rawValue: 1 << 1)
    public static let readFile = LandlockAccess(rawValue: 1 << 2)
    public static let readDir = LandlockAccess(rawValue: 1 << 3)
    public static let removeDir = LandlockAccess(rawValue: 1 << 4)
    public static let removeFile = LandlockAccess(rawValue: 1 << 5)
    public static let makeChar = LandlockAccess(rawValue: 1 << 6)
    public static let makeDir = LandlockAccess(rawValue: 1 << 7)
    public static let makeReg = LandlockAccess(rawValue: 1 << 8)
    public static let makeSock = LandlockAccess(rawValue: 1 << 9)
    public static let makeFifo = LandlockAccess(rawValue: 1 << 10)
    public static let makeBlock = LandlockAccess(rawValue: 1 << 11)
    public static let makeSym = LandlockAccess(rawValue: 1 << 12)
    public static let refer = LandlockAccess(rawValue: 1 << 13)       // ABI 2
    public static let truncate = LandlockAccess(rawValue: 1 << 14)    // ABI 3
    public static let ioctlDev = LandlockAccess(rawValue: 1 << 15)    // ABI 5

    /// Rights that apply to a file (as opposed to a folder's contents).
    public static let fileRights: LandlockAccess = [.execute, .writeFile, .readFile, .truncate, .ioctlDev]
    public static let read: LandlockAccess = [.readFile, .readDir]
    public static let write: LandlockAccess = [
        .writeFile, .removeDir, .removeFile, .makeDir, .makeReg, .makeSock, .makeFifo, .makeSym,
        .refer, .truncate,
    ]
    public static let device: LandlockAccess = [.readFile, .writeFile, .ioctlDev]

    /// Every right the kernel knows at `abi`.
    public static func handled(atABI abi: Int) -> LandlockAccess {
        guard abi >= 1 else { return [] }
        var all = LandlockAccess(rawValue: (1 << 13) - 1)
        if abi >= 2 { all.insert(.refer) }
        if abi >= 3 { all.insert(.truncate) }
        if abi >= 5 { all.insert(.ioctlDev) }
        return all
    }

    private static let names: [(LandlockAccess, String)] = [
        (.execute, "execute"), (.writeFile, "write-file"), (.readFile, "read-file"), (.readDir, "read-dir"),
        (.removeDir, "remove-dir"), (.removeFile, "remove-file"), (.makeChar, "make-char"),
        (.makeDir, "make-dir"), (.makeReg, "make-reg"), (.makeSock, "make-sock"), (.makeFifo, "make-fifo"),
        (.makeBlock, "make-block"), (.makeSym, "make-sym"), (.refer, "refer"), (.truncate, "truncate"),
        (.ioctlDev, "ioctl-dev"),
    ]

    public var description: String {
        if self == .read { return "read" }
        if self == Self.read.union(.write) { return "read,write" }
        if self == Self.read.union(.write).union(.execute) { return "read,write,execute" }
        if self == [.readFile, .execute] { return "execute" }
        return joinedStrings(Self.names.filter { contains($0.0) }.map(\.1), separator: ",")
    }
}

/// Landlock scopes (ABI 6).
public struct LandlockScope: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let abstractUnixSocket = LandlockScope(rawValue: 1 << 0)
    public static let signal = LandlockScope(rawValue: 1 << 1)
}

/// Landlock TCP rights (ABI 4).
public struct LandlockNetAccess: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let bindTCP = LandlockNetAccess(rawValue: 1 << 0)
    public static let connectTCP = LandlockNetAccess(rawValue: 1 << 1)

    public var description: String {
        joinedStrings([(Self.bindTCP, "bind-tcp"), (Self.connectTCP, "connect-tcp")].filter { contains($0.0) }.map(\.1),
                      separator: ",")
    }
}

/// A TCP port the sandbox may use for the handled net rights.
public struct LandlockPortRule: Sendable, Hashable, CustomStringConvertible {
    public var port: UInt16
    public var access: LandlockNetAccess

    public init(port: UInt16, access: LandlockNetAccess) {
        self.port = port
        self.access = access
    }

    public var description: String { "landlock allow \(access) port \(port)" }
}

public struct LandlockRule: Sendable, Hashable, CustomStringConvertible {
    public enum Anchor: Sendable, Hashable {
        /// A host path (glob for exec entries), opened by the parent before clone.
        case host
        /// An object that exists only inside the new root; the sandbox's init adds it.
        case sandbox
    }

    public var path: String
    public var access: LandlockAccess
    public var anchor: Anchor
    /// For `exec` entries: `path` is a glob expanded on the host when the plan is materialised.
    public var isPattern: Bool
    public var optional: Bool
    public var origin: ManifestLocation?

    public init(_ path: String, _ access: LandlockAccess, anchor: Anchor = .host, isPattern: Bool = false,
                optional: Bool = false, origin: ManifestLocation? = nil) {
        self.path = path
        self.access = access
        self.anchor = anchor
        self.isPattern = isPattern
        self.optional = optional
        self.origin = origin
    }

    public var description: String {
        "landlock allow \(access) \(path)" + (anchor == .sandbox ? " (in sandbox)" : "") + (optional ? " optional" : "")
    }
}

public struct LandlockPlan: Sendable, Hashable {
    public var enforcement: Enforcement
    /// The ABI this plan enforces (the host's, capped at what Corral knows); 0 = off.
    public var abi: Int
    public var handled: LandlockAccess
    public var scoped: LandlockScope
    public var rules: [LandlockRule]
    /// Rights the plan wanted but the kernel cannot enforce (best-effort only).
    public var dropped: LandlockAccess
    /// TCP rights restricted to `portRules` (allowlist: connect only to the proxy's ports).
    public var handledNet: LandlockNetAccess = []
    public var portRules: [LandlockPortRule] = []

    public init(enforcement: Enforcement, abi: Int, handled: LandlockAccess, scoped: LandlockScope,
                rules: [LandlockRule], dropped: LandlockAccess) {
        self.enforcement = enforcement
        self.abi = abi
        self.handled = handled
        self.scoped = scoped
        self.rules = rules
        self.dropped = dropped
    }
}
