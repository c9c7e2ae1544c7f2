import Foundation
import Testing

/// `network.mode: none`: a fresh network namespace with loopback only, and no raw or
/// packet sockets.
@Suite(.tags(.integration)) struct NetworkTests {
    @Test("packet and raw sockets fail with EPERM", arguments: RunAs.allCases, ["packet", "raw"])
    func rawSocketsAreDenied(_ runAs: RunAs, _ family: String) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("socket", family), printed: "socket \(family) raw errno=EPERM")
        }
    }

    @Test("an inet socket can be created", arguments: RunAs.allCases)
    func inetSocketIsAllowed(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("socket", "inet"), printed: "socket inet stream ok")
        }
    }

    @Test("a port listening on the host's loopback cannot be reached", arguments: RunAs.allCases)
    func hostPortIsUnreachable(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let listener = try LoopbackListener()
            defer { listener.close() }
            let port = String(listener.port)

            // Control: the same probe, without Corral, does reach it.
            let control = try await sandbox.command([sandbox.probe, "connect", "127.0.0.1", port])
            expectProbe(control, printed: "connect 127.0.0.1:\(port) ok")

            expectProbe(try await sandbox.probe("connect", "127.0.0.1", port),
                        printed: "connect 127.0.0.1:\(port) errno=ECONNREFUSED")
        }
    }
}

/// A TCP socket listening on the host's 127.0.0.1 at a port the kernel picks.
struct LoopbackListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 16) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw TestFailure("listen on 127.0.0.1: errno \(error)")
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    func close() {
        Glibc.close(fd)
    }
}
