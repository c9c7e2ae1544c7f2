import Corral
import Foundation
import Testing

/// What the integration tests need from this host, probed once. Landlock comes from
/// Corral's own `HostProbe`, so the tests and `corral probe` agree on it (STYLE.md B8).
enum HostSupport {
    static let isRoot = getuid() == 0

    /// The Landlock ABI this kernel offers, 0 without Landlock.
    static let landlockABI = HostProbe().facts().landlockABI
    static let hasLandlock = landlockABI > 0
    /// The CPUs this process may run on, as /proc/self/status lists them (`0-1`, `0,2`, `3`).
    static let allowedCPUList: String = {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") } ?? ""
        return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
    }()
    static let mayUseSeveralCPUs = allowedCPUList.contains(",") || allowedCPUList.contains("-")
    /// Why run cgroups cannot be made here (nil: root can make them).
    static let runCgroupsUnavailable: String? = {
        guard isRoot else { return "cgroup limits need root on this host (no delegated cgroup)" }
        let host = CgroupHost.detect()
        return host.description.contains("run groups: unavailable") ? "this host offers no writable cgroup" : nil
    }()

    /// Why no user namespace can be created at all, or nil.
    static let userNamespacesOff: String? = {
        if let max = sysctl("user/max_user_namespaces"), max == 0 {
            return "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)"
        }
        return nil
    }()

    /// Why an unprivileged user cannot create one, or nil.
    static let unprivilegedUserNamespacesOff: String? = {
        if let reason = userNamespacesOff { return reason }
        if let clone = sysctl("kernel/unprivileged_userns_clone"), clone == 0 {
            return "unprivileged user namespaces are off (kernel.unprivileged_userns_clone is 0)"
        }
        if let restricted = sysctl("kernel/apparmor_restrict_unprivileged_userns"), restricted != 0 {
            return "AppArmor restricts unprivileged user namespaces"
        }
        return nil
    }()

    /// An integer from /proc/sys, or nil when the knob does not exist.
    private static func sysctl(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/sys/" + name, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Who runs `corral`: the test process itself (root), or an unprivileged user.
///
/// As root the unprivileged variant switches to nobody (65534) with `setpriv`; when the
/// tests already run unprivileged, that variant runs as the caller, and the root variant
/// is skipped.
enum RunAs: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case root
    case unprivileged

    var testDescription: String { rawValue }

    static let nobody: uid_t = 65534

    var uid: uid_t {
        switch self {
        case .root: 0
        case .unprivileged: HostSupport.isRoot ? Self.nobody : getuid()
        }
    }

    var gid: gid_t {
        switch self {
        case .root: 0
        case .unprivileged: HostSupport.isRoot ? Self.nobody : getgid()
        }
    }

    /// What to put in front of a command so that it runs as this user.
    var commandPrefix: [String] {
        guard self == .unprivileged, HostSupport.isRoot else { return [] }
        return ["/usr/bin/setpriv", "--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups"]
    }

    /// Why this host cannot run this variant, or nil.
    var unavailableReason: String? {
        switch self {
        case .root:
            if !HostSupport.isRoot { return "the root variant needs the tests to run as root" }
            return HostSupport.userNamespacesOff
        case .unprivileged:
            return HostSupport.unprivilegedUserNamespacesOff
        }
    }

    /// Skips this test case (not the other variant) with its reason when this host cannot
    /// run it: `Test.cancel` ends the case as cancelled, never as passed. Swift Testing
    /// 6.3.1 shows case cancellations only in its event stream, so `HostVariantTests`
    /// also shows each missing variant as a skipped test with the same reason.
    func requireAvailable() throws {
        if let reason = unavailableReason { try Test.cancel(Comment(rawValue: reason)) }
    }
}

extension Tag {
    /// Tests that launch real sandboxes through the `corral` binary (STYLE.md B8, layer 4).
    @Tag static var integration: Self
}
