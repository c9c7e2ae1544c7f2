#if canImport(Glibc)
import Glibc
#endif
import CorralProfile
import NIOCore
import NIOPosix

/// Name resolution with the system's resolver (getaddrinfo: /etc/hosts, NSS, DNS), on a
/// thread pool so that no event loop ever blocks.
struct Resolver: Sendable {
    let pool: NIOThreadPool
    let timeout: TimeAmount

    enum Failure: Error, Sendable, Equatable {
        /// getaddrinfo's own message (gai_strerror).
        case lookup(String)
        case timedOut
        case noAddress
    }

    /// The addresses of `name` in getaddrinfo's order (which follows RFC 6724 and
    /// /etc/gai.conf), without duplicates. getaddrinfo cannot be cancelled: after the
    /// timeout the answer is ignored, and the pool thread finishes the lookup on its own.
    func resolve(_ name: String, on eventLoop: EventLoop) -> EventLoopFuture<[IPAddress]> {
        let promise = eventLoop.makePromise(of: [IPAddress].self)
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(Failure.timedOut) }
        pool.runIfActive(eventLoop: eventLoop) { try Self.lookup(name) }.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }

    /// getaddrinfo(name, NULL, {AF_UNSPEC, SOCK_STREAM}). Blocking.
    static func lookup(_ name: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(name, nil, &hints, &list)
        guard rc == 0 else { throw Failure.lookup(String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var cursor = list
        while let info = cursor {
            defer { cursor = info.pointee.ai_next }
            guard let raw = info.pointee.ai_addr else { continue }
            let address: IPAddress?
            switch CInt(raw.pointee.sa_family) {
            case AF_INET:
                address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    withUnsafeBytes(of: sin.pointee.sin_addr) { IPAddress(bytes: $0) }
                }
            case AF_INET6:
                address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    withUnsafeBytes(of: sin6.pointee.sin6_addr) { IPAddress(bytes: $0) }
                }
            default:
                address = nil
            }
            if let address, !addresses.contains(address) { addresses.append(address) }
        }
        guard !addresses.isEmpty else { throw Failure.noAddress }
        return addresses
    }
}

extension Resolver.Failure: CustomStringConvertible {
    var description: String {
        switch self {
        case .lookup(let message): message
        case .timedOut: "name resolution timed out"
        case .noAddress: "no address"
        }
    }
}
