// corral-egress: the egress proxy of a sandboxed run, started by corral with the sandbox's
// listening sockets and a control socket inherited. See `EgressArguments` for the command
// line and `Decision` for what it writes to the control socket.
//
// Exit status: 0 after end-of-file on the control socket or SIGTERM; 2 for bad arguments;
// 1 when the descriptors or the hardening fail.
#if canImport(Glibc)
import Glibc
#endif
import CCorralLaunch
import CorralNet

/// One line on standard error, then exit.
func die(_ message: String, status: CInt) -> Never {
    let line = Array("corral-egress: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

let arguments: EgressArguments
switch EgressArguments.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let parsed): arguments = parsed
case .failure(let problem):
    die("\(problem)", status: 2)
}

// Order matters: everything below that binds to threads (signal mask, hardening) happens
// while this is the only thread; `EgressProxy.start` creates the others, which inherit it.
ProcessHardening.raiseOpenFileLimit()
let signals: [CInt] = [SIGTERM, SIGINT]
_ = signals.withUnsafeBufferPointer { corral_block_signals($0.baseAddress, CInt($0.count)) }
signal(SIGPIPE, SIG_IGN)
let signalFD = signals.withUnsafeBufferPointer { corral_signalfd($0.baseAddress, CInt($0.count)) }
do {
    _ = try ProcessHardening.apply()
} catch {
    die("hardening failed: \(error)", status: 1)
}

let proxy: EgressProxy
do {
    proxy = try EgressProxy.start(configuration: arguments.configuration, listeners: arguments.listeners,
                                  controlFD: arguments.controlFD, exitProcessAtEnd: true)
} catch {
    die("cannot serve the inherited descriptors: \(error)", status: 1)
}

// The main thread only waits for SIGTERM (or SIGINT) on the signalfd: the proxy ends the
// process itself at end-of-file on the control socket, after flushing its decision lines.
// No Swift concurrency or Dispatch here: Dispatch's Linux thread pool reads /proc to watch
// its workers, which the Landlock rule above forbids: with it, the proxy trapped (SIGILL)
// now and then under load in tests, and never without it or without the rule.
var pending = pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)
while poll(&pending, 1, -1) < 0 && errno == EINTR {}
_ = proxy
_exit(0)
