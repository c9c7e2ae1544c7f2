import Corral
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

/// `network.mode` loopback, allowlist and host, without outside hosts: what reaches the
/// host's loopback, and the Landlock backstop under the proxy. (Proxied traffic to test
/// hosts in network namespaces: `EgressTests`.)
@Suite(.tags(.integration)) struct NetworkModeTests {
    @Test("loopback mode forwards the listed host ports, and only those", arguments: RunAs.allCases)
    func loopbackForwardsListedPorts(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let echo = try LoopbackEchoServer()
            defer { echo.close() }
            let unlisted = try LoopbackListener()
            defer { unlisted.close() }
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec.append("/usr/bin/*")  // the shell
            manifest.network = ["mode: loopback", "ports: [\(echo.port)]"]
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(try sandbox.write(manifest), [
                "/bin/sh", "-c", "\(sandbox.probe) tcp-send 127.0.0.1 \(echo.port) hello; \(sandbox.probe) connect 127.0.0.1 \(unlisted.port)",
            ], report: report)
            #expect(result.status == 0 && result.stdout == """
                tcp-send 127.0.0.1:\(echo.port) got=hello
                connect 127.0.0.1:\(unlisted.port) errno=ECONNREFUSED

                """, "\(result)")
            let egress = try #require(try RunReportFile.read(report).egress)
            #expect(egress.listeners == ["127.0.0.1:\(echo.port) forward to 127.0.0.1:\(echo.port)"])
            #expect(egress.decisions.map { "\($0.decision) \($0.via) \($0.address ?? "-")" } == ["allow forward 127.0.0.1"],
                    "\(egress)")
        }
    }

    @Test("allowlist: the command may connect over TCP only to the proxy's ports (Landlock)",
          .enabled(if: HostSupport.landlockABI >= 4, "needs Landlock ABI 4 (TCP port rules)"),
          arguments: RunAs.allCases)
    func landlockLimitsConnectToTheProxy(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec.append("/usr/bin/*")  // the shell
            manifest.network = ["mode: allowlist", "allow: [api.test:443]", "forward: [{ listen: 5432, to: db.test:5432 }]"]
            let path = try sandbox.write(manifest)
            let script = ["3128", "1080", "5432", "9999", "80"].map { "\(sandbox.probe) connect 127.0.0.1 \($0)" }
                .joined(separator: "; ")
            let result = try await sandbox.run(path, ["/bin/sh", "-c", script])
            #expect(result.status == 0 && result.stdout == """
                connect 127.0.0.1:3128 ok
                connect 127.0.0.1:1080 ok
                connect 127.0.0.1:5432 ok
                connect 127.0.0.1:9999 errno=EACCES
                connect 127.0.0.1:80 errno=EACCES

                """, "\(result)")

            // Control: without the allowlist, the same ports are merely closed.
            manifest.network = ["mode: none"]
            let control = try await sandbox.run(try sandbox.write(manifest, named: "none.yaml"), ["/bin/sh", "-c", script])
            #expect(control.stdout.components(separatedBy: "errno=ECONNREFUSED").count == 6, "\(control)")
        }
    }

    @Test("allowlist: the proxy variables point at the sandbox's own loopback", arguments: RunAs.allCases)
    func proxyVariablesAreSet(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.network = ["mode: allowlist", "allow: [api.test:443]"]
            let result = try await sandbox.probe("env", manifest: manifest)
            let lines = Set(result.stdout.split(separator: "\n").map(String.init))
            for expected in ["HTTP_PROXY=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
                             "ALL_PROXY=socks5h://127.0.0.1:1080", "no_proxy=localhost,127.0.0.1,::1"] {
                #expect(lines.contains(expected), "\(expected) in \(result)")
            }
        }
    }

    /// The proxy faces the sandbox: a parser bug there must not hand the sandbox the
    /// supervisor's privileges. Read from /proc while a run goes.
    @Test("the egress proxy holds no capability and has no_new_privs", arguments: RunAs.allCases)
    func egressProcessIsUnprivileged(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec.append("/usr/bin/*")  // the shell and curl
            manifest.network = ["mode: allowlist", "allow: [api.test:443]"]
            let path = try sandbox.write(manifest)
            let events = sandbox.scratch + "/events.jsonl"
            // One request first: a decision means the proxy serves, which it does only once
            // it has restricted itself. Then the run waits to be looked at.
            let script = "/usr/bin/curl -s -o /dev/null http://other.test/; exec \(sandbox.probe) sleep 30"
            async let run = sandbox.corral(["run", "--events", events, "--profile", path, "--", "/bin/sh", "-c", script],
                                           timeout: .seconds(60))
            var found: (corral: Int32, status: [String: String])?
            let deadline = ContinuousClock.now + .seconds(25)
            while found == nil, ContinuousClock.now < deadline {
                // Not a blocking sleep: the run above needs this pool's threads to start.
                try await Task.sleep(for: .milliseconds(20))
                guard let text = try? String(contentsOfFile: events, encoding: .utf8), text.contains("\"type\":\"network\"")
                else { continue }
                found = Self.egressStatus(startedBy: path)
            }
            if let found { kill(found.corral, SIGTERM) }  // ends the run: forwarded, the sleeper dies
            let result = try await run
            #expect(result.status == 128 + SIGTERM, "\(result)")
            let fields = try #require(found?.status, "no corral-egress process of this run was seen")
            #expect(fields["NoNewPrivs"] == "1")
            #expect(fields["CapEff"] == "0000000000000000" && fields["CapPrm"] == "0000000000000000")
            #expect(fields["CapAmb"] == "0000000000000000")
            if runAs == .root { #expect(fields["CapBnd"] == "0000000000000000") }
        }
    }

    /// /proc/PID/status of the corral-egress whose parent's command line names `manifest`,
    /// and that parent's pid.
    static func egressStatus(startedBy manifest: String) -> (corral: Int32, status: [String: String])? {
        // corral names it by its own resolved folder (/proc/self/exe).
        let named = Products.directory.appendingPathComponent("corral-egress").path
        let egress = realpath(named, nil).map { resolved in
            defer { free(resolved) }
            return String(cString: resolved)
        } ?? named
        for pid in CommandRunner.processes(running: egress) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let afterName = stat.range(of: ") ")?.upperBound else { continue }
            let parent = stat[afterName...].split(separator: " ").dropFirst().first.map(String.init) ?? ""
            guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(parent)/cmdline")),
                  String(decoding: cmdline, as: UTF8.self).contains(manifest),
                  let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { continue }
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return Int32(parent).map { ($0, fields) }
        }
        return nil
    }

    @Test("host mode shares the host's network: its loopback ports are reachable", arguments: RunAs.allCases)
    func hostModeSharesTheNetwork(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let echo = try LoopbackEchoServer()
            defer { echo.close() }
            var manifest = Manifest(sandbox: sandbox)
            manifest.network = ["mode: host"]
            let report = sandbox.scratch + "/report.json"
            let path = try sandbox.write(manifest)
            let result = try await sandbox.run(path, [sandbox.probe, "tcp-send", "127.0.0.1", "\(echo.port)", "hi"], report: report)
            expectProbe(result, printed: "tcp-send 127.0.0.1:\(echo.port) got=hi")
            let written = try RunReportFile.read(report)
            #expect(written.network == "host" && !written.namespaces.contains("net"))
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

/// A TCP echo server on the host's 127.0.0.1: each connection gets back what it sent, once
/// the client half-closes.
final class LoopbackEchoServer: @unchecked Sendable {
    private let listener: LoopbackListener
    var port: UInt16 { listener.port }

    init() throws {
        listener = try LoopbackListener()
        let fd = listener.fd
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return  // the listener was closed
                }
                var data: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(client, &buffer, buffer.count)
                    if n <= 0 { break }
                    data += buffer[..<n]
                }
                _ = data.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                Glibc.close(client)
            }
        }
    }

    func close() {
        shutdown(listener.fd, Int32(SHUT_RDWR))
        listener.close()
    }
}

/// A run report as `corral run --report` wrote it, decoded with the library's own type.
enum RunReportFile {
    static func read(_ path: String) throws -> RunReport {
        try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
