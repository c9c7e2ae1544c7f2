import CorralPlan
import CorralProfile
import NIOCore
import NIOPosix

/// What a front end (HTTP, SOCKS5, forward) asks for.
struct UpstreamRequest: Sendable {
    var via: Decision.Via
    /// The host as the client wrote it, for the decision line.
    var hostText: String
    var target: EgressPolicy.Target
    var port: UInt16
    /// Set for forwards: the target's own entry, which stands in for the allow list.
    var presetEntry: EgressEntry?
}

/// How an upstream connection attempt ended. Each case knows its decision line.
enum UpstreamOutcome {
    case connected(Channel, address: IPAddress, entry: EgressEntry)
    /// Not in the allow list, or every address was refused (`address`: the first refused).
    case denied(reason: String, address: IPAddress?, entry: EgressEntry?)
    case resolutionFailed(reason: String, entry: EgressEntry)
    case connectFailed(ConnectFailure, address: IPAddress, entry: EgressEntry)

    enum ConnectFailure {
        case refused
        case timedOut
        case other(String)
    }

    func decision(for request: UpstreamRequest) -> Decision {
        var decision = Decision(.fail, via: request.via, host: request.hostText, port: request.port)
        switch self {
        case .connected(_, let address, let entry):
            decision.outcome = .allow
            decision.address = address.description
            decision.entry = entry.text
        case .denied(let reason, let address, let entry):
            decision.outcome = .deny
            decision.address = address?.description
            decision.entry = entry?.text
            decision.reason = reason
        case .resolutionFailed(let reason, let entry):
            decision.entry = entry.text
            decision.reason = "cannot resolve \(request.target): \(reason)"
        case .connectFailed(let failure, let address, let entry):
            decision.address = address.description
            decision.entry = entry.text
            switch failure {
            case .refused: decision.reason = "connection refused"
            case .timedOut: decision.reason = "connect timed out"
            case .other(let text): decision.reason = text
            }
        }
        return decision
    }
}

/// Decides a request, resolves a name (once), picks the first address the policy admits and
/// connects to exactly that address, on the client's event loop.
struct Upstream: Sendable {
    let policy: EgressPolicy
    let resolver: Resolver
    let connectTimeout: TimeAmount

    func open(_ request: UpstreamRequest, on eventLoop: EventLoop) -> EventLoopFuture<UpstreamOutcome> {
        let entry: EgressEntry
        if let preset = request.presetEntry {
            entry = preset
        } else {
            switch policy.decide(request.target, port: request.port) {
            case .allowed(let matched): entry = matched
            case .denied(let reason):
                return eventLoop.makeSucceededFuture(.denied(reason: reason, address: nil, entry: nil))
            }
        }
        let addresses: EventLoopFuture<[IPAddress]>
        switch request.target {
        case .address(let address): addresses = eventLoop.makeSucceededFuture([address])
        case .name(let name): addresses = resolver.resolve(name, on: eventLoop)
        }
        return addresses.flatMap { addresses -> EventLoopFuture<UpstreamOutcome> in
            var firstRefusal: (IPAddress, String)?
            for address in addresses {
                if let reason = policy.refusal(of: address, for: entry) {
                    if firstRefusal == nil { firstRefusal = (address, reason) }
                    continue
                }
                return connect(to: address.mappedV4 ?? address, port: request.port, entry: entry, on: eventLoop)
            }
            let (address, reason) = firstRefusal!  // `resolve` never returns an empty list
            return eventLoop.makeSucceededFuture(.denied(reason: reason, address: address, entry: entry))
        }.flatMapErrorThrowing { error in
            .resolutionFailed(reason: "\(error)", entry: entry)
        }
    }

    private func connect(to address: IPAddress, port: UInt16, entry: EgressEntry,
                         on eventLoop: EventLoop) -> EventLoopFuture<UpstreamOutcome> {
        let socketAddress: SocketAddress
        do {
            socketAddress = try SocketAddress(ipAddress: address.description, port: Int(port))
        } catch {
            return eventLoop.makeSucceededFuture(.connectFailed(.other("\(error)"), address: address, entry: entry))
        }
        return ClientBootstrap(group: eventLoop)
            .channelOption(.autoRead, value: false)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connectTimeout(connectTimeout)
            .connect(to: socketAddress)
            .map { UpstreamOutcome.connected($0, address: address, entry: entry) }
            .flatMapErrorThrowing { error in
                let failure: UpstreamOutcome.ConnectFailure
                if let error = error as? ChannelError, case .connectTimeout = error {
                    failure = .timedOut
                } else if let error = error as? IOError {
                    failure = error.errnoCode == ECONNREFUSED ? .refused
                        : .other("connect failed: \(Self.errnoText(error.errnoCode))")
                } else {
                    failure = .other("connect failed: \(error)")
                }
                return .connectFailed(failure, address: address, entry: entry)
            }
    }

    static func errnoText(_ code: CInt) -> String {
        String(cString: strerror(code))
    }
}

#if canImport(Glibc)
import Glibc
#endif
