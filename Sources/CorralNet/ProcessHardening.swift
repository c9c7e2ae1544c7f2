#if canImport(Glibc)
import Glibc
#endif
import CCorralLaunch
import CorralPlan

/// corral-egress's own confinement, applied at start while the process has one thread
/// (every step binds to the calling thread and to threads created later; see
/// `corral_harden_self`). It faces the sandbox's bytes, so it keeps only what it needs:
/// its inherited sockets, new TCP sockets, and read access to what getaddrinfo reads.
public enum ProcessHardening {
    /// Where getaddrinfo and NSS read from: /etc (hosts, resolv.conf, nsswitch.conf,
    /// gai.conf), the libraries NSS loads, and the usual targets of the resolv.conf link.
    public static let readPaths = ["/etc", "/usr", "/lib", "/lib64", "/run/systemd/resolve", "/run/resolvconf"]

    public struct Failure: Error, CustomStringConvertible {
        public var step: String
        public var path: String?
        public var errno: CInt
        public var description: String {
            "\(step)\(path.map { " `\($0)`" } ?? ""): \(String(cString: strerror(errno)))"
        }
    }

    /// Applies no_new_privs, drops every capability if any is held, and makes the
    /// filesystem read-only beneath `readPaths` with Landlock when the kernel has it.
    /// Returns the Landlock ABI enforced (0: none available).
    ///
    /// - Throws: `Failure` naming the step that failed.
    public static func apply(readPaths: [String] = readPaths) throws(Failure) -> Int {
        // The rights the kernel knows, from the same table the sandbox's plan uses.
        let abi = Int(max(0, corral_landlock_abi()))
        let handled = LandlockAccess.handled(atABI: min(abi, 7)).rawValue
        var step: UInt32 = 0, index: UInt32 = 0
        var cStrings = readPaths.map { strdup($0) }
        defer { for pointer in cStrings { free(pointer) } }
        let rc = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                corral_harden_self($0, UInt32(buffer.count), handled, &step, &index)
            }
        }
        guard rc == 0 else {
            let name: String
            var path: String?
            switch step {
            case UInt32(CORRAL_HARDEN_NO_NEW_PRIVS.rawValue): name = "prctl(PR_SET_NO_NEW_PRIVS)"
            case UInt32(CORRAL_HARDEN_CAPABILITIES.rawValue): name = "dropping capabilities"
            case UInt32(CORRAL_HARDEN_LANDLOCK_RULESET.rawValue): name = "landlock_create_ruleset"
            case UInt32(CORRAL_HARDEN_LANDLOCK_RULE.rawValue):
                name = "landlock_add_rule"
                path = readPaths[Int(index)]
            default: name = "landlock_restrict_self"
            }
            throw Failure(step: name, path: path, errno: -rc)
        }
        return abi
    }

    /// Raises the soft limit on open files to the hard limit: a relayed connection holds
    /// two descriptors.
    public static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit)
    }
}
