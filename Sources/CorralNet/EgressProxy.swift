#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The running egress proxy: the listeners it serves, the control channel, and the threads.
///
/// `start` takes ownership of every descriptor. The proxy stops when the control channel
/// reaches end-of-file (the supervisor is gone or the run ended) or `shutdown` is called;
/// `stopped()` returns then, with every connection closed.
public final class EgressProxy: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let servers: [Channel]
    private let control: Channel
    private let services: ProxyServices
    private init(group: MultiThreadedEventLoopGroup, pool: NIOThreadPool, servers: [Channel], control: Channel,
                 services: ProxyServices) {
        self.group = group
        self.pool = pool
        self.servers = servers
        self.control = control
        self.services = services
    }

    /// Client connections open now.
    public var openConnections: Int { services.openConnections }

    /// Tunnels handed to the splice workers since the start.
    var tunnelsSpliced: Int { services.splicer?.tunnelsStarted ?? 0 }

    /// Starts serving. Threads are created here (so process hardening must come before).
    ///
    /// - Throws: an error from NIO when a descriptor is not a listening (or connected, for
    ///   `controlFD`) socket; the descriptors are then closed. `SpliceFailure` when the
    ///   splice workers cannot start (no descriptor for their epoll set, no thread).
    /// - Parameter exitProcessAtEnd: at end-of-file on the control channel, flush the
    ///   decision lines still queued and end the process (`_exit(0)`), instead of closing
    ///   every channel and shutting the threads down. The supervisor's run is over by then;
    ///   the kernel closes what is left. (`corral-egress` sets it; in-process users do not.)
    public static func start(configuration: EgressConfiguration, listeners: EgressListeners,
                             controlFD: CInt, exitProcessAtEnd: Bool = false) throws -> EgressProxy {
        var splicer: Splicer?
        if configuration.splice {
            do {
                splicer = try Splicer.start(threads: configuration.threads,
                                            pipeBudget: PipeBudget(target: configuration.splicePipeBytes,
                                                                   total: configuration.splicePipeBudget),
                                            maxTunnels: configuration.spliceMaxTunnels)
            } catch {
                for fd in [listeners.http, listeners.socks].compactMap({ $0 }) + listeners.forwards.map(\.fd) + [controlFD] {
                    close(fd)
                }
                throw error
            }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        let log = DecisionLog(limit: configuration.controlBufferBytes)
        let services = ProxyServices(
            configuration: configuration,
            upstream: Upstream(policy: configuration.policy,
                               resolver: Resolver(pool: pool, timeout: configuration.resolutionTimeout),
                               connectTimeout: configuration.connectTimeout),
            log: log, splicer: splicer)
        var servers: [Channel] = []
        let control: Channel
        do {
            control = try ClientBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: exitProcessAtEnd)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ControlHandler(exitProcessAtEnd: exitProcessAtEnd))
                    }
                }
                .withConnectedSocket(controlFD).wait()
            log.attach(control)
            if let fd = listeners.http {
                servers.append(try serve(fd, group: group, services: services) { channel in
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HeadLimitHandler(limit: configuration.maxHeadBytes))
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(HTTPProxyHandler(services: services))
                } refusal: { channel in
                    services.log.record(Decision(.error, via: .http, reason: "too many connections"))
                    let body = "corral: too many connections through the proxy\n"
                    return Array(("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8)
                })
            }
            if let fd = listeners.socks {
                servers.append(try serve(fd, group: group, services: services) { channel in
                    try channel.pipeline.syncOperations.addHandler(SOCKS5Handler(services: services))
                } refusal: { _ in
                    services.log.record(Decision(.error, via: .socks5, reason: "too many connections"))
                    // The method choice and a general-failure reply at once: a client reads
                    // the first after its greeting and the second after its request.
                    return [5, 0, 5, SOCKS5Handler.Reply.generalFailure.rawValue, 0, 1, 0, 0, 0, 0, 0, 0]
                })
            }
            for (fd, forward) in listeners.forwards {
                servers.append(try serve(fd, group: group, services: services) { channel in
                    try channel.pipeline.syncOperations.addHandler(ForwardHandler(services: services, forward: forward))
                } refusal: { _ in
                    services.log.record(Decision(.error, via: .forward, host: forward.host.description,
                                                 port: forward.port, reason: "too many connections"))
                    return []
                })
            }
        } catch {
            for server in servers { server.close(promise: nil) }
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
            splicer?.stop()
            throw error
        }
        let proxy = EgressProxy(group: group, pool: pool, servers: servers, control: control, services: services)
        control.closeFuture.whenComplete { _ in
            EventLoopFuture.andAllComplete(servers.map { $0.close() }, on: control.eventLoop).flatMap {
                services.closeAll(on: control.eventLoop)
            }.whenComplete { _ in
                // Shutting the loops down closes every channel still open on them. NIO calls
                // back on a queue of its own (waiting on a loop of the group is not allowed).
                group.shutdownGracefully { _ in
                    pool.shutdownGracefully { _ in proxy.markStopped() }
                }
            }
        }
        return proxy
    }

    private struct StopState {
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let stopState = NIOLockedValueBox(StopState())
    private let stopCondition = ConditionLock(value: 0)

    private func markStopped() {
        let waiters = stopState.withLockedValue { state in
            state.stopped = true
            defer { state.waiters = [] }
            return state.waiters
        }
        stopCondition.lock()
        stopCondition.unlock(withValue: 1)
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the proxy has stopped: every connection closed, its threads gone.
    public func stopped() async {
        await withCheckedContinuation { continuation in
            let done = stopState.withLockedValue { state in
                if !state.stopped { state.waiters.append(continuation) }
                return state.stopped
            }
            if done { continuation.resume() }
        }
    }

    /// Blocks until the proxy has stopped.
    public func waitUntilStopped() {
        stopCondition.lock(whenValue: 1)
        stopCondition.unlock()
    }

    /// Stops the proxy (as end-of-file on the control channel would).
    public func shutdown() {
        guard !stopState.withLockedValue({ $0.stopped }) else { return }
        control.close(promise: nil)
    }

    private static func serve(_ fd: CInt, group: EventLoopGroup, services: ProxyServices,
                              frontEnd: @escaping @Sendable (Channel) throws -> Void,
                              refusal: @escaping @Sendable (Channel) -> [UInt8]) throws -> Channel {
        try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if services.admit(channel) {
                        try frontEnd(channel)
                    } else {
                        try channel.pipeline.syncOperations.addHandler(OverCapacityHandler(answer: refusal(channel)))
                    }
                }
            }
            .withBoundSocket(fd).wait()
    }
}
