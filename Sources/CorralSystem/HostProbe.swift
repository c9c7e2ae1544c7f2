import CCap
import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc

/// Everything Corral learns about the host, in one place: `HostFacts` for the compiler and
/// the wider report `corral probe` prints. Roots are parameters so tests can point them at
/// a fixture tree.
public struct HostProbe: Sendable {
    public var procRoot: String

    public init(procRoot: String = "/proc") {
        self.procRoot = procRoot
    }

    /// The compiler's view of this host.
    public func facts() -> HostFacts {
        HostFacts(
            uid: geteuid(), gid: getegid(),
            userNamespaces: userNamespacesAllowed(),
            landlockABI: max(0, Int(corral_landlock_abi())),
            seccompUserNotification: corral_seccomp_has_user_notif() == 1,
            architecture: architecture(),
            dynamicLoaders: dynamicLoaders()
        )
    }

    func architecture() -> String {
        var name = utsname()
        unsafe uname(&name)
        return unsafe withUnsafeBytes(of: &name.machine) { raw in
            unsafe String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
    }

    /// A small text file (procfs, sysfs, cgroupfs); nil when unreadable.
    func readSmallFile(_ path: String) -> String? {
        guard let bytes = try? HostEnvironment.readFile(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    func userNamespacesAllowed() -> Bool {
        if let text = readSmallFile("\(procRoot)/sys/user/max_user_namespaces"),
           Int(text.trimmingSpace) == 0 { return false }
        if geteuid() != 0, let text = readSmallFile("\(procRoot)/sys/kernel/unprivileged_userns_clone"),
           Int(text.trimmingSpace) == 0 { return false }
        return true
    }

    /// The ELF interpreters present, canonicalised (the kernel opens them for execution, so
    /// Landlock must grant them `execute`).
    /// The usual ELF interpreter paths (glibc and musl, x86_64, aarch64, i386, arm); a fixed
    /// list is checked rather than globbing /lib, which holds thousands of entries.
    static let loaderCandidates = [
        "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux.so.2",
        "/lib/ld-linux-armhf.so.3", "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1",
    ]

    func dynamicLoaders() -> [String] {
        var found: Set<String> = []
        for path in Self.loaderCandidates {
            if let real = try? canonicalPathByOpening(path) { found.insert(real) }
        }
        return stableSorted(Array(found))
    }

    // MARK: - The wider report

    public struct Report: Sendable, Codable {
        public var facts: HostFacts
        public var kernel: String
        public var capLastCap: Int
        public var cgroupVersion: String
        public var cgroupControllers: [String: String]
        public var overlayfs: Bool
        public var seccompKillProcess: Bool
    }

    public func report() -> Report {
        let (version, controllers) = cgroups()
        return Report(
            facts: facts(), kernel: Self.kernelRelease(), capLastCap: Int(cap_max_bits()) - 1,
            cgroupVersion: version, cgroupControllers: controllers,
            overlayfs: (readSmallFile("\(procRoot)/filesystems") ?? "").contains("\toverlay\n"),
            seccompKillProcess: corral_seccomp_action_available(0x8000_0000) == 1
        )
    }

    /// The running kernel's release (`uname -r`).
    ///
    /// The corresponding C function is `uname`.
    public static func kernelRelease() -> String {
        var name = utsname()
        unsafe uname(&name)
        return unsafe withUnsafeBytes(of: &name.release) { raw in
            unsafe String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
    }

    /// The major and minor version at the start of a kernel release (`6.18.44-fc` → 6, 18);
    /// nil when it does not start with them.
    static func kernelVersion(release: String) -> (major: Int, minor: Int)? {
        let numbers = release.split(separator: ".", maxSplits: 2)
        guard numbers.count >= 2, let major = Int(numbers[0]),
              let minor = Int(numbers[1].prefix { $0.isASCII && $0.isNumber }) else { return nil }
        return (major, minor)
    }

    /// "v2" (unified only), "hybrid" (v1 controllers and a v2 tree), "v1" or "none"; and the
    /// version each controller is mounted with. Derived from `CgroupHost`, which the run
    /// cgroups use, so `corral probe` and the runs agree.
    func cgroups() -> (String, [String: String]) {
        let host = CgroupHost.detect(procSelf: procRoot + "/self")
        var controllers: [String: String] = [:]
        for hierarchy in host.legacy { for c in hierarchy.controllers { controllers[c] = "v1" } }
        for c in host.unified?.controllers ?? [] { controllers[c] = "v2" }
        let version = switch host.layout {
        case .unified: "v2"
        case .hybrid: "hybrid"
        case .legacy: "v1"
        case .none: "none"
        }
        return (version, controllers)
    }
}

/// glob(3) without sorting surprises; an empty list when nothing matches.
func expandGlob(_ pattern: String) -> [String] {
    var result = unsafe glob_t()
    defer { unsafe globfree(&result) }
    guard unsafe glob(pattern, 0, nil, &result) == 0 else { return [] }
    return unsafe (0..<Int(result.gl_pathc)).compactMap { index in
        unsafe result.gl_pathv[index].map { unsafe String(cString: $0) }
    }
}

extension String {
    var trimmingSpace: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? endIndex
        return start < end ? self[start..<end] : ""
    }
}
