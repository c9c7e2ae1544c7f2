import Foundation
import Synchronization
import Testing

/// A private two-host network for tests: a *client* network namespace, where tests run
/// `corral` (and, with `network.mode: allowlist`, its egress proxy), joined by a veth link
/// to a *remote* namespace whose servers stand in for the internet. Nothing is routed
/// anywhere else, so no test packet can leave this machine.
///
///     client namespace (corral-lab-PID-N)        remote namespace (corral-lab-PID-N-remote)
///     lab0  203.0.113.1/24  10.77.n.1/24  ─veth─ lab0  203.0.113.10/24  10.77.n.10/24
///     /etc/hosts (through /etc/netns/…):         lab_server.py: http 80, https 443,
///       api.test www.api.test other.test           tcp echo 7000, udp echo 5353
///         → 203.0.113.10; internal.test → 10.77.n.10
///
/// Each lab has its own pair of namespaces, so labs running at once never see each
/// other even though they reuse the same addresses. Make one with `withNetworkLab`.
struct NetworkLab: Sendable {
    // MARK: - Addresses and ports

    /// The remote's "public" address (RFC 5737 documentation range); `api.test`,
    /// `www.api.test` and `other.test` resolve to it in the client namespace.
    static let publicAddress = "203.0.113.10"
    /// The client's address on the public subnet: the peer every remote server sees.
    static let clientPublicAddress = "203.0.113.1"
    /// Names the client namespace resolves to `publicAddress`.
    static let publicNames = ["api.test", "www.api.test", "other.test"]
    /// The name the client namespace resolves to `privateAddress`.
    static let privateName = "internal.test"

    static let httpPort = 80
    static let httpsPort = 443
    static let tcpEchoPort = 7000
    static let udpEchoPort = 5353

    /// The network namespace to run clients in (see `wrap`).
    let clientNamespace: String
    /// The namespace the servers run in.
    let remoteNamespace: String
    /// `n` in 10.77.n.0/24.
    let subnet: Int
    /// The remote's private address (10.77.n.10); `internal.test` resolves to it.
    var privateAddress: String { "10.77.\(subnet).10" }
    /// The client's address on the private subnet (10.77.n.1).
    var clientPrivateAddress: String { "10.77.\(subnet).1" }

    /// A world-readable folder (0755) holding `caFile`: list it in a manifest's
    /// `filesystem.read` so that sandboxes, and unprivileged users, can read it.
    let sharedFolder: String
    /// The HTTPS server's self-signed certificate for `api.test` and `www.api.test`, in
    /// PEM: the trust anchor for `curl --cacert` or Python's `ssl`.
    var caFile: String { sharedFolder + "/ca.pem" }
    /// Root-only (0700): the key, the server's logs and output, captured command output.
    let privateFolder: String

    // MARK: - Running in the client namespace

    /// `argv` run inside the client namespace: `ip netns exec CLIENT ARGV…`. `ip netns
    /// exec` needs root; to run as another user, wrap a command that drops privileges
    /// (`wrap(RunAs.unprivileged.commandPrefix + argv)`, which is what
    /// `Sandbox.corral(_:in:)` does). It also bind-mounts `/etc/netns/CLIENT/*` over
    /// `/etc`, which is how the lab's names resolve there (ip-netns(8)).
    func wrap(_ argv: [String]) -> [String] {
        [Self.ip, "netns", "exec", clientNamespace] + argv
    }

    /// Runs `argv` as root inside the client namespace, without Corral (the tests' controls).
    func run(_ argv: [String], environment: [String: String] = [:],
             timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await CommandRunner.run(wrap(argv), environment: environment, captureFolder: privateFolder,
                                    timeout: timeout)
    }

    // MARK: - What the remote saw

    /// One TCP connection the remote accepted, on any of its ports.
    struct Connection: Codable, Equatable, Sendable {
        var peer: String
        var peerPort: Int
        var local: String
        var localPort: Int
    }

    /// One datagram the UDP echo received.
    struct Datagram: Codable, Equatable, Sendable {
        var peer: String
        var peerPort: Int
        var localPort: Int
        /// The payload as UTF-8 (undecodable bytes as Python `\xNN` escapes).
        var data: String
        var length: Int
    }

    /// Every TCP connection the remote's servers accepted so far, oldest first. A
    /// connection is logged as it is accepted, before it is served.
    func connections() throws -> [Connection] { try Self.readLog(connectionLog) }

    /// Every datagram the UDP echo received so far, oldest first, logged before the echo.
    func datagrams() throws -> [Datagram] { try Self.readLog(datagramLog) }

    var connectionLog: String { privateFolder + "/connections.jsonl" }
    var datagramLog: String { privateFolder + "/datagrams.jsonl" }

    private static func readLog<Entry: Decodable>(_ path: String) throws -> [Entry] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
    }
}

// MARK: - Host requirements

extension NetworkLab {
    /// iproute2's `ip`, by absolute path (`CommandRunner` executes argv[0] as a path).
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"
    static let python = "/usr/bin/python3"
    static let openssl = "/usr/bin/openssl"
    static let serverScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Lab/lab_server.py").path

    /// Why this host cannot make labs, or nil. Probed once, by creating and deleting a
    /// namespace (root in a container may lack CAP_SYS_ADMIN); also removes labs left
    /// behind by test processes that no longer exist.
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "network labs need root (`ip netns add`)" }
        for (tool, package) in [(ip, "iproute2"), (python, "python3"), (openssl, "openssl")]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "network labs need \(tool) (Debian package \(package); scripts/setup installs it)"
        }
        let probe = "corral-lab-\(getpid())-probe"
        do {
            try LabTool.run([ip, "netns", "add", probe])
            try LabTool.run([ip, "netns", "delete", probe])
        } catch {
            return "`ip netns add` does not work here: \(error)"
        }
        removeStaleLabs()
        return nil
    }()

    static var isAvailable: Bool { unavailableReason == nil }

    /// Cancels the current test (never passes it) when this host cannot make labs.
    static func requireAvailable() throws {
        if let reason = unavailableReason { try Test.cancel(Comment(rawValue: reason)) }
    }

    /// Labs whose test process is gone (a crash or SIGKILL skips `withNetworkLab`'s
    /// teardown): their processes are killed and their namespaces and /etc/netns
    /// entries removed. Labs of live processes, including concurrent `swift test` runs,
    /// are left alone.
    private static func removeStaleLabs() {
        guard let listing = try? LabTool.run([ip, "netns", "list"]) else { return }
        for line in listing.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard name.hasPrefix("corral-lab-"), parts.count >= 4, let pid = Int32(parts[2]),
                  kill(pid, 0) == -1, errno == ESRCH
            else { continue }
            LabTool.killProcesses(inNamespace: name)
            _ = try? LabTool.run([ip, "netns", "delete", name])
            try? FileManager.default.removeItem(atPath: "/etc/netns/" + name)
        }
    }
}

// MARK: - Lifetime

/// Runs `body` with a fresh lab, cancelling the test first when this host cannot make
/// one (root and `ip netns` are needed). The lab is torn down however `body` ends: the
/// servers and any process left in its namespaces are killed, the namespaces (and with
/// them the veth link), /etc/netns/CLIENT and the lab's folders are removed. Anything
/// that cannot be removed is recorded as an issue of the running test.
///
/// Setup and teardown block (they wait for `ip`, `openssl` and the server's `ready`), so
/// they run on a thread of their own: on the cooperative pool (two threads on a
/// two-CPU machine) they would hold up every other test's continuations.
func withNetworkLab<T>(_ body: (NetworkLab) async throws -> T) async throws -> T {
    try NetworkLab.requireAvailable()
    let resources = LabResources()
    let outcome: Result<T, any Error>
    do {
        let lab = try await onOwnThread { try resources.setUp() }
        outcome = .success(try await body(lab))
    } catch {
        outcome = .failure(error)
    }
    // Recorded here, not on the teardown thread: issues belong to the running test.
    let leftovers = try await onOwnThread { resources.tearDown() }
    for leftover in leftovers { Issue.record(Comment(rawValue: "network lab teardown: " + leftover)) }
    return try outcome.get()
}

/// Runs `work` on a new thread and returns its result.
private func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// What a lab owns, set up as an ordered list of steps; each step pushes the step that
/// undoes it, and teardown runs those in reverse, so a setup that fails halfway leaves
/// nothing behind either.
///
/// `@unchecked Sendable`: one thread at a time uses it (setup, then teardown, each awaited
/// by `withNetworkLab` before the next starts).
private final class LabResources: @unchecked Sendable {
    /// Distinguishes this process's labs; also picks the private subnet.
    private static let counter = Atomic<Int>(0)

    private var undo: [(String, () throws -> Void)] = []
    private var server: Process?
    /// The server's stdin: it exits at end-of-file, so a test process that dies (and closes
    /// this) takes its servers with it instead of leaving them running.
    private var lifeline: Pipe?

    func setUp() throws -> NetworkLab {
        let number = Self.counter.add(1, ordering: .relaxed).newValue
        let client = "corral-lab-\(getpid())-\(number)"
        let ip = NetworkLab.ip

        let shared = try makeFolder(mode: 0o755)
        let secret = try makeFolder(mode: 0o700)
        let lab = NetworkLab(clientNamespace: client, remoteNamespace: client + "-remote",
                             subnet: (number - 1) % 254 + 1, sharedFolder: shared, privateFolder: secret)

        // 1. The namespaces and the link. Created straight into the namespaces, both
        //    ends can be called lab0 without ever clashing in the host namespace.
        for namespace in [lab.clientNamespace, lab.remoteNamespace] {
            try LabTool.run([ip, "netns", "add", namespace])
            push("delete namespace \(namespace)") {
                LabTool.killProcesses(inNamespace: namespace)
                try LabTool.run([ip, "netns", "delete", namespace])
            }
        }
        try LabTool.run([ip, "link", "add", "lab0", "netns", lab.clientNamespace, "type", "veth",
                         "peer", "name", "lab0", "netns", lab.remoteNamespace])

        // 2. Addresses, then links up (one `ip -batch` per namespace).
        for (namespace, host) in [(lab.clientNamespace, 1), (lab.remoteNamespace, 10)] {
            let batch = try write(secret + "/\(namespace).ip", """
                addr add 203.0.113.\(host)/24 dev lab0
                addr add 10.77.\(lab.subnet).\(host)/24 dev lab0
                link set lo up
                link set lab0 up

                """)
            try LabTool.run([ip, "-n", namespace, "-batch", batch])
        }

        // 3. Names, for every program `ip netns exec CLIENT` starts (ip-netns(8)). The
        //    proxy resolves with getaddrinfo: only /etc/hosts, so a name the lab does not
        //    define fails at once (EAI_NONAME) and no DNS query is ever sent.
        //    /etc/netns itself stays: a concurrent lab may be writing into it.
        let etc = "/etc/netns/" + lab.clientNamespace
        for folder in ["/etc/netns", etc] {
            guard mkdir(folder, 0o755) == 0 || errno == EEXIST else { throw TestFailure("mkdir \(folder): errno \(errno)") }
        }
        push("remove \(etc)") { try FileManager.default.removeItem(atPath: etc) }
        try write(etc + "/hosts", """
            127.0.0.1 localhost
            \(NetworkLab.publicAddress) \(NetworkLab.publicNames.joined(separator: " "))
            \(lab.privateAddress) \(NetworkLab.privateName)

            """, mode: 0o644)
        try write(etc + "/nsswitch.conf", Self.filesOnlyNameService(), mode: 0o644)
        try write(etc + "/resolv.conf", "# corral network lab: names come from /etc/hosts only\nnameserver 127.0.0.1\n",
                  mode: 0o644)

        // 4. The certificate: EC keys are made in milliseconds, RSA ones are not.
        try LabTool.run([NetworkLab.openssl, "req", "-x509", "-newkey", "ec",
                         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                         "-keyout", secret + "/key.pem", "-out", lab.caFile, "-subj", "/CN=api.test",
                         "-addext", "subjectAltName=DNS:api.test,DNS:www.api.test"])
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: lab.caFile)

        // 5. The servers, last: they need the addresses and the certificate.
        try startServer(lab)
        return lab
    }

    /// Runs the undo steps in reverse; returns what failed.
    func tearDown() -> [String] {
        if let server, server.isRunning {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        server = nil
        try? lifeline?.fileHandleForWriting.close()
        lifeline = nil
        var failures: [String] = []
        for (name, step) in undo.reversed() {
            do { try step() } catch { failures.append("\(name): \(error)") }
        }
        undo = []
        return failures
    }

    // MARK: Steps

    private func startServer(_ lab: NetworkLab) throws {
        let output = lab.privateFolder + "/server.out", errors = lab.privateFolder + "/server.err"
        for path in [output, errors, lab.connectionLog, lab.datagramLog] { try write(path, "") }
        guard let out = FileHandle(forWritingAtPath: output), let err = FileHandle(forWritingAtPath: errors) else {
            throw TestFailure("cannot open \(output)")
        }
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: NetworkLab.ip)
        process.arguments = ["netns", "exec", lab.remoteNamespace, NetworkLab.python, NetworkLab.serverScript,
                             "--cert", lab.caFile, "--key", lab.privateFolder + "/key.pem",
                             "--connections", lab.connectionLog, "--datagrams", lab.datagramLog]
        process.environment = ["PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"]
        let lifeline = Pipe()
        process.standardInput = lifeline
        process.standardOutput = out
        process.standardError = err
        try process.run()
        try? lifeline.fileHandleForReading.close()
        server = process
        self.lifeline = lifeline

        // Blocking polls: the parallel runner may hold a sleeping task far past its time.
        let clock = ContinuousClock(), deadline = clock.now + .seconds(10)
        while true {
            if (try? String(contentsOfFile: output, encoding: .utf8)) == "ready\n" { return }
            let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            if !process.isRunning {
                throw TestFailure("lab_server.py exited with status \(process.terminationStatus): \(stderr)")
            }
            if clock.now > deadline { throw TestFailure("lab_server.py was not ready within 10 s: \(stderr)") }
            usleep(10_000)
        }
    }

    private func push(_ name: String, _ step: @escaping () throws -> Void) {
        undo.append((name, step))
    }

    private func makeFolder(mode: Int) throws -> String {
        var template = Array("/tmp/corral-lab.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
        guard made != nil else { throw TestFailure("mkdtemp: errno \(errno)") }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        push("remove \(path)") { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    @discardableResult
    private func write(_ path: String, _ text: String, mode: Int = 0o600) throws -> String {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                             attributes: [.posixPermissions: mode])
        else { throw TestFailure("cannot create \(path)") }
        return path
    }

    /// The host's nsswitch.conf with `hosts: files` (users and groups still resolve as
    /// on the host: ip-netns(8) hides the host's file entirely).
    private static func filesOnlyNameService() -> String {
        let host = (try? String(contentsOfFile: "/etc/nsswitch.conf", encoding: .utf8)) ?? "passwd: files\ngroup: files\n"
        let lines = host.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("hosts:") }
        return lines.joined(separator: "\n") + "\nhosts: files\n"
    }
}

// MARK: - Running tools

/// Short synchronous tool runs for setup and teardown (which a `defer` cannot await), and
/// for `Sandbox.copy`.
enum LabTool {
    /// Runs `argv` to completion; its stdout, or a `TestFailure` naming the command and
    /// its stderr when it fails. Output goes through temp files, never pipes: a pipe's
    /// write end inherited by a process forked concurrently would hold the read open.
    @discardableResult
    static func run(_ argv: [String]) throws -> String {
        let capture = try Capture(in: NSTemporaryDirectory())
        defer {
            capture.close()
            capture.remove()
        }
        let process = capture.process(argv, environment: CommandRunner.baseEnvironment)
        try process.run()
        process.waitUntilExit()
        let stdout = (try? capture.stdout()) ?? ""
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let stderr = (try? capture.stderr()) ?? ""
            throw TestFailure("`\(argv.joined(separator: " "))` failed with status \(process.terminationStatus): "
                                  + stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return stdout
    }

    /// SIGKILLs every process in `namespace` (`ip netns pids`), so deleting its name
    /// also ends it: a namespace lives on while any process is in it.
    static func killProcesses(inNamespace namespace: String) {
        let pids = (try? run([NetworkLab.ip, "netns", "pids", namespace])) ?? ""
        for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
    }
}
