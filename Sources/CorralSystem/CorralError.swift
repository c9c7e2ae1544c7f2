import CorralPlan
import CorralProfile
import SystemPackage

/// Corral's own failures: an invalid profile, a kernel that lacks something, a setup step
/// that failed, an exec that failed, or supervision that broke. A command's non-zero exit,
/// signal or policy kill is a *result* (the run report), never a `CorralError`.
public struct CorralError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Storage: String, Hashable, Sendable {
            case profileInvalid = "profile-invalid", kernelUnsupported = "kernel-unsupported",
                 setupFailed = "setup-failed", execFailed = "exec-failed", supervisionFailed = "supervision-failed"
        }

        let storage: Storage
        public static let profileInvalid = Code(storage: .profileInvalid)
        public static let kernelUnsupported = Code(storage: .kernelUnsupported)
        public static let setupFailed = Code(storage: .setupFailed)
        public static let execFailed = Code(storage: .execFailed)
        public static let supervisionFailed = Code(storage: .supervisionFailed)
        public var description: String { storage.rawValue }
    }

    public var code: Code
    public var stage: LaunchStage?
    /// The index within the stage (the mount op, the rlimit, …) when it has one.
    public var index: UInt32?
    public var operation: String
    public var path: String?
    public var errno: Errno?
    /// The manifest entry at fault, when there is one.
    public var location: ManifestLocation?
    public var message: String?
    public var hint: String?

    public init(_ code: Code, stage: LaunchStage? = nil, index: UInt32? = nil, operation: String,
                path: String? = nil, errno: Errno? = nil, location: ManifestLocation? = nil,
                message: String? = nil, hint: String? = nil) {
        self.code = code
        self.stage = stage
        self.index = index
        self.operation = operation
        self.path = path
        self.errno = errno
        self.location = location
        self.message = message
        self.hint = hint ?? Self.hint(for: stage, errno: errno)
    }

    /// ``mount `/proc` (stage mounts #3): Operation not permitted (EPERM). Hint: …``
    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        text += operation
        if let path { text += " `\(Self.printable(path))`" }
        if let stage { text += " (stage \(stage)" + (index.map { " #\($0)" } ?? "") + ")" }
        if let message { text += ": \(Self.printable(message, keepNewlines: true))" }
        if let errno { text += ": \(errno.description) (\(ErrnoNames.name(of: errno.rawValue) ?? "errno \(errno.rawValue)"))" }
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }

    public init(_ error: ProfileError) {
        self.init(.profileInvalid, operation: "load profile", message: error.description)
    }

    public init(_ error: PlanError) {
        self.init(.profileInvalid, operation: "compile plan", location: error.location, message: error.message,
                  hint: error.hint)
    }

    /// Control characters shown as `\xNN`: a command name or path from an agent must not be
    /// able to drive the terminal Corral's error is printed on.
    public static func printable(_ text: String, keepNewlines: Bool = false) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if (v < 0x20 && !(keepNewlines && v == 0x0A)) || v == 0x7F || (0x80..<0xA0).contains(v) {
                let hex = String(v, radix: 16)
                out += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Host-side advice keyed by (stage, errno), kept apart from the code that detects failures.
    static func hint(for stage: LaunchStage?, errno: Errno?) -> String? {
        switch (stage, errno) {
        case (.idMaps, _):
            return "user namespaces may be restricted: check `sysctl kernel.unprivileged_userns_clone` "
                + "and `user.max_user_namespaces`, or AppArmor's userns restriction"
        case (.mountSources, .some(.staleNFSFileHandle)):
            return "the path changed (a symlink was swapped in?) between the check and the mount; retry, and "
                + "check who else writes there"
        case (.mountSources, .some(.noSuchFileOrDirectory)):
            return "the path disappeared after the profile was checked; mark it `optional: true` if that is expected"
        case (.mounts, .some(.readOnlyFileSystem)):
            return "a mount point must be created inside a read-only bind; list the parent folder as well, or drop the entry"
        case (.newRoot, _), (.mountPropagation, _), (.pivotRoot, _):
            return "mount namespaces must be usable by this user; `corral probe` shows what the host allows"
        case (.landlock, _), (.landlockRules, _):
            return "run `corral probe` to see the Landlock ABI; `landlock: best-effort` runs without what is missing"
        case (.chdir, _):
            return "run.workdir must exist inside the sandbox: list it (or a folder above it) in filesystem.read or write"
        case (.exec, .some(.noSuchFileOrDirectory)):
            return "the program, or its ELF interpreter (ld.so, via /lib64 and /lib), is not visible inside the sandbox: "
                + "add its folder to filesystem.read, or give a full path"
        case (.exec, .some(.permissionDenied)):
            return "only files matched by filesystem.exec may be executed (and write paths are noexec): add the program there"
        case (.seccomp, .some(.invalidArgument)):
            return "the kernel refused a seccomp program or its flags; syscalls.watch needs Linux 5.19 or later "
                + "(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)"
        case (.sync, _):
            return "the supervisor went away during setup"
        default:
            return nil
        }
    }
}
