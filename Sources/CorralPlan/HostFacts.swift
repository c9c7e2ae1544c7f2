/// What the compiler needs to know about the host, gathered once by `CorralSystem.HostProbe`.
/// A value, so tests can feed any host they like (STYLE.md B9.5: the compiler stays pure).
public struct HostFacts: Sendable, Hashable, Codable {
    /// The supervisor's effective ids; the sandbox maps them to themselves.
    public var uid: UInt32
    public var gid: UInt32
    /// Whether this process can create user namespaces.
    public var userNamespaces: Bool
    /// The Landlock ABI, or 0 when Landlock is unavailable.
    public var landlockABI: Int
    /// Whether seccomp user notification (SECCOMP_RET_USER_NOTIF) is available.
    public var seccompUserNotification: Bool
    /// The machine's native architecture as libseccomp names it ("x86_64", "aarch64").
    public var architecture: String
    /// Dynamic loaders found on the host; they need the execute right like any program.
    public var dynamicLoaders: [String]

    public init(uid: UInt32, gid: UInt32, userNamespaces: Bool = true, landlockABI: Int,
                seccompUserNotification: Bool = true, architecture: String = "x86_64",
                dynamicLoaders: [String] = []) {
        self.uid = uid
        self.gid = gid
        self.userNamespaces = userNamespaces
        self.landlockABI = landlockABI
        self.seccompUserNotification = seccompUserNotification
        self.architecture = architecture
        self.dynamicLoaders = dynamicLoaders
    }
}
