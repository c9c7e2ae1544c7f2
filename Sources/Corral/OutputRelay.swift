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
        pipes.indices.filter { open[$0] }.map { pipes[$0].readDescriptor }
    }

    /// The child holds its copies now; the supervisor's would keep the pipes from ever ending.
    func childHasItsEnds() {
        for pipe in pipes { pipe.closeWriteEnd() }
    }

    /// Moves what is ready on `ready` descriptors.
    func pump(_ ready: [Int32]) -> Pumped {
        for (index, pipe) in pipes.enumerated() where open[index] && ready.contains(pipe.readDescriptor) {
            if move(index) == .capReached { return .capReached }
        }
        return .ok
    }

    /// After the run: what is left in the pipes (every writer is gone, so this ends).
    func drain() {
        for index in pipes.indices where open[index] {
            while open[index], move(index) == .ok, pipes[index].readAvailable(limit: 0) != nil {}
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
            if allowed > 0 { HostEnvironment.writeAll(destinations[index], bytes.prefix(allowed)) }
            open = [false, false]
            return .capReached
        }
        HostEnvironment.writeAll(destinations[index], bytes)
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
        if let cpu = sample?.cpuSeconds { parts.append("cpu \(MonitorEngine.seconds(cpu))") }
        if let memory = sample?.memoryBytes { parts.append("mem \(memory >> 20)MiB") }
        if let processes = sample?.processes { parts.append("\(processes) procs") }
        HostEnvironment.writeStandardError("\r\u{1B}[2Kcorral: " + parts.joined(separator: " · "))
        drawn = true
    }

    mutating func clear() {
        if drawn { HostEnvironment.writeStandardError("\r\u{1B}[2K") }
        drawn = false
    }
}
