import CorralPlan
import CorralProfile
import NIOCore

/// What corral-egress enforces: the allow list, the forwards, and the limits on each
/// connection. Pure data; `EgressArguments` reads it from the command line.
public struct EgressConfiguration: Sendable {
    /// One `--forward FD=HOST:PORT`: connections accepted on the listener go to the target.
    public struct Forward: Sendable, Hashable {
        public var host: HostPattern
        public var port: UInt16

        public init(host: HostPattern, port: UInt16) {
            self.host = host
            self.port = port
        }

        /// What the forward connects to, as the policy reads a request.
        var target: EgressPolicy.Target {
            switch host {
            case .address(let address): .address(address.mappedV4 ?? address)
            case .name(let name): .name(name)
            // `hostPattern` refuses neither; the argument parser does (a forward names one host).
            case .subdomains, .network: preconditionFailure("a forward names one host or address")
            }
        }

        /// The forward's own allow entry: exactly its target.
        var entry: EgressEntry { PortForward(listen: 0, host: host, port: port).entry }
    }

    public var policy: EgressPolicy
    /// No byte in either direction for this long closes a relayed connection.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// No relayed connection lives longer than this.
    public var maxDuration: TimeAmount = .seconds(3600)
    /// Client connections open at once; the next ones are refused.
    public var maxConnections: Int = 1024
    /// An HTTP request head or a SOCKS5 handshake must be complete within this.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// A name's resolution must finish within this.
    public var resolutionTimeout: TimeAmount = .seconds(5)
    /// The upstream TCP connect must finish within this.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// The largest HTTP request head accepted (request line and headers).
    public var maxHeadBytes: Int = 16 * 1024
    /// Decision lines buffered for a slow supervisor before lines are dropped.
    public var controlBufferBytes: Int = 1 << 20
    /// Event loop threads, and as many splice workers.
    public var threads: Int = 2
    /// Relay established tunnels (CONNECT, SOCKS5, forwards) with splice(2) on threads of
    /// their own; false keeps them in NIO (which copies every byte through user space).
    public var splice = true
    /// Tunnels spliced at once; the next ones are relayed by NIO. With the budget below,
    /// the proxy's pipes stay within 12,288 pages (256 × 2 × 16 of the default size, plus
    /// 4,096 grown), under the 16,384 of pipe-user-pages-soft: pipe pages count per user,
    /// and past that limit every new pipe of the user's processes without
    /// CAP_SYS_RESOURCE gets two pages.
    public var spliceMaxTunnels = 256
    /// A spliced tunnel's pipes start at the kernel's default (64 KiB); the pipe of a
    /// direction that fills it grows to this size (fewer system calls per byte)...
    public var splicePipeBytes = 1 << 20
    /// ...while all grown pipes together stay within this many bytes beyond the default.
    public var splicePipeBudget = 16 << 20

    public init(policy: EgressPolicy) {
        self.policy = policy
    }
}
