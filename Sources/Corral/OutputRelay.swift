import CorralSystem

/// The command's stdout and stderr, through the supervisor: counted, forwarded to where they
/// would have gone (Corral's own 1 and 2, or the caller's descriptors), and cut at
/// `limits.output` bytes (the two together). Off, the command writes to them directly.
final class OutputRelay {
    enum Pumped { case ok, capReached }

    private let pipes: [OutputPipe]
    private let destinations: [Int32]
    private let cap: UInt64?
    /// Bytes seen per stream (stdout, stderr), including any cut past the cap.
    private(set) var counts: [UInt64] = [0, 0]
    private(set) var total: UInt64 = 0
    private var open: [Bool] = [true, true]
    /// Read but not yet written: the destination was not ready. While a stream has pending
    /// bytes it is not read (the command blocks on a full pipe), and the supervisor never
    /// blocks on a slow or stopped reader (a terminal with output suspended, a stalled pipe).
    private var pending: [[UInt8]] = [[], []]
    /// What the child gets as its 0, 1, 2.
    let childStdio: [Int32]

    init(cap: UInt64?, stdio: [Int32], enabled: Bool) throws(CorralError) {
        self.cap = cap
        guard enabled else {
            pipes = []
            destinations = []
            childStdio = stdio
            return
        }
        pipes = [try OutputPipe(), try OutputPipe()]
        destinations = [stdio[1] >= 0 ? stdio[1] : 1, stdio[2] >= 0 ? stdio[2] : 2]
        childStdio = [stdio[0], pipes[0].writeDescriptor, pipes[1].writeDescriptor]
    }

    var isActive: Bool { !pipes.isEmpty }

    var pollDescriptors: [Int32] {
        pipes.indices.filter { open[$0] && pending[$0].isEmpty }.map { pipes[$0].readDescriptor }
    }

    /// Whether bytes wait for a destination to become writable (poll again soon).
    var hasPending: Bool { pending.contains { !$0.isEmpty } }

    /// The child holds its copies now; the supervisor's would keep the pipes from ever ending.
    func childHasItsEnds() {
        for pipe in pipes { pipe.closeWriteEnd() }
    }

    /// Writes what it can without blocking, then reads what is ready on `ready` descriptors.
    func pump(_ ready: [Int32]) -> Pumped {
        for index in pipes.indices { flush(index) }
        for (index, pipe) in pipes.enumerated() where open[index] && pending[index].isEmpty
            && ready.contains(pipe.readDescriptor) {
            if move(index) == .capReached { return .capReached }
            flush(index)
        }
        return .ok
    }

    /// After the run: what is left in the pipes (every writer is gone, so reads end), written
    /// out with a bounded wait for a reader that has stalled.
    func drain() {
        for index in pipes.indices {
            var patience = 20  // × 50 ms for a stalled reader, then the rest is dropped
            while true {
                flush(index, waitMilliseconds: 50)
                if !pending[index].isEmpty {
                    patience -= 1
                    if patience == 0 { break }
                    continue
                }
                guard open[index], move(index) == .ok else { break }
                if pending[index].isEmpty && open[index] { break }  // nothing more to read
            }
        }
    }

    /// Writes pending bytes while the destination takes them, 4 KiB (PIPE_BUF) at a time.
    private func flush(_ index: Int, waitMilliseconds: Int32 = 0) {
        while !pending[index].isEmpty, HostEnvironment.isWritable(destinations[index], waitMilliseconds: waitMilliseconds) {
            let chunk = pending[index].prefix(4096)
            guard HostEnvironment.writeAll(destinations[index], chunk) else {
                pending[index] = []  // the reader is gone: nothing will take these bytes
                return
            }
            pending[index].removeFirst(chunk.count)
        }
    }

    private func move(_ index: Int) -> Pumped {
        guard let bytes = pipes[index].readAvailable() else {
            open[index] = false
            return .ok
        }
        guard !bytes.isEmpty else { return .ok }
        counts[index] += UInt64(bytes.count)
        let before = total
        total += UInt64(bytes.count)
        if let cap, total > cap {
            let allowed = Int(cap > before ? cap - before : 0)
            pending[index] += bytes.prefix(allowed)
            open = [false, false]
            return .capReached
        }
        pending[index] += bytes
        return .ok
    }
}

/// A one-line live status on a terminal's stderr (elapsed, cpu, memory, processes), redrawn
/// at most once a second after the first second; cleared at the end.
struct StatusLine {
    let enabled: Bool
    private var lastDrawn = -1
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    mutating func update(elapsed: Double, sample: MeterSample?) {
        guard enabled, elapsed >= 1, Int(elapsed) != lastDrawn else { return }
        lastDrawn = Int(elapsed)
        var parts = ["\(Int(elapsed))s"]
        if let cpu = sample?.cpuSeconds { parts.append("cpu \(MonitorEngine.formatSeconds(cpu))") }
        if let memory = sample?.memoryBytes { parts.append("mem \(memory >> 20)MiB") }
        if let processes = sample?.processes { parts.append("\(processes) procs") }
        // Only when the terminal takes it now: a command can suspend the terminal's output,
        // and the supervisor must not stop with it.
        guard HostEnvironment.isWritable(2, waitMilliseconds: 0) else { return }
        HostEnvironment.writeStandardError("\r\u{1B}[2Kcorral: " + parts.joined(separator: " · "))
        drawn = true
    }

    mutating func clear() {
        if drawn, HostEnvironment.isWritable(2, waitMilliseconds: 100) { HostEnvironment.writeStandardError("\r\u{1B}[2K") }
        drawn = false
    }
}
