import CCorralLaunch
import Glibc
import SystemPackage

/// Descriptors that wake the supervisor's poll loop when something happens to a run's
/// group, so it can act during the run (then ``RunCgroup/usage()`` says what changed):
///
/// | source | version | poll for | wakes when |
/// |---|---|---|---|
/// | `cgroup.events` | v2 (hybrid too) | `POLLPRI` | the group became empty or populated, frozen or thawed |
/// | `memory.events` | v2 | `POLLPRI` | the memory limit was hit, an OOM kill |
/// | `pids.events` | v2 | `POLLPRI` | a fork was refused at `pids.max` |
/// | `memory.oom_control` | v1 | `POLLIN` | an OOM in the group (an eventfd registered through `cgroup.event_control`) |
///
/// cgroupfs files are always readable, so poll them for `POLLPRI` only; the kernel raises
/// `POLLPRI | POLLERR` once per change (kernfs_notify). The kernel does not notify v1
/// `pids.events`: on v1 a refused fork shows only in `usage()`.
public final class CgroupEvents: Sendable {
    public struct Source: Sendable, Hashable {
        public var descriptor: Int32
        /// What to ask `poll(2)` for: `POLLPRI` for a cgroupfs file, `POLLIN` for an eventfd.
        public var events: Int16
        /// The file it reports on (`cgroup.events`, `memory.events`, `pids.events`,
        /// `memory.oom_control`).
        public var name: String
    }

    public let sources: [Source]

    init(sources: [Source]) { self.sources = sources }

    deinit {
        for source in sources { FileDescriptor(rawValue: source.descriptor).closeChecked() }
    }

    /// Re-arms `source` after `poll` reported it: a cgroupfs file is read again from its
    /// start (the kernel wakes a poller for each change the reader has not yet seen), an
    /// eventfd is drained.
    public func acknowledge(_ source: Source) {
        Self.drain(source.descriptor, fromStart: source.events != Int16(POLLIN))
    }

    /// The corresponding C functions are `pread` (a file, from offset 0) and `read` (an eventfd).
    static func drain(_ descriptor: Int32, fromStart: Bool) {
        var buffer = [UInt8](repeating: 0, count: 512)
        _ = unsafe buffer.withUnsafeMutableBytes { raw in
            valueOrErrno {
                fromStart ? unsafe pread(descriptor, raw.baseAddress!, raw.count, 0)
                          : unsafe Glibc.read(descriptor, raw.baseAddress!, raw.count)
            }
        }
    }
}

extension RunCgroup {
    /// Opens the event sources this run's group offers on this host (see ``CgroupEvents``).
    /// Each call opens new descriptors; they close with the returned object.
    ///
    /// - Throws: `CorralError` (`.setupFailed`) when a file cannot be opened or the v1 OOM
    ///   notification cannot be registered.
    public func openEvents() throws(CorralError) -> CgroupEvents {
        var sources: [CgroupEvents.Source] = []
        func fail(_ operation: String, _ path: String, _ errno: Errno) -> CorralError {
            for source in sources { FileDescriptor(rawValue: source.descriptor).closeChecked() }
            return CorralError(.setupFailed, operation: operation, path: path, errno: errno, hint: CgroupHints.hint(for: errno))
        }
        func watch(_ directory: String, _ file: String) throws(CorralError) {
            let path = directory + "/" + file
            let fd: Int32
            switch valueOrErrno({ unsafe Glibc.open(path, O_RDONLY | O_CLOEXEC) }) {
            case .success(let value): fd = value
            case .failure(let errno): throw fail("open", path, errno)
            }
            sources.append(CgroupEvents.Source(descriptor: fd, events: Int16(POLLPRI), name: file))
            CgroupEvents.drain(fd, fromStart: true)  // only changes after this read wake the poller
        }
        if let unifiedDirectory { try watch(unifiedDirectory, "cgroup.events") }
        if let memory {
            if memory.version == 2 {
                try watch(memory.directory, "memory.events")
            } else {
                try registerOOMEventFD(memory.directory, into: &sources, fail: fail)
            }
        }
        if let pids, pids.version == 2 { try watch(pids.directory, "pids.events") }
        return CgroupEvents(sources: sources)
    }

    /// cgroup v1 OOM notification (Documentation/admin-guide/cgroup-v1/memory.rst, "OOM
    /// Control"): write "<eventfd> <fd of memory.oom_control>" to `cgroup.event_control`.
    /// The kernel keeps the registration until the eventfd is closed or the group removed.
    private func registerOOMEventFD(_ directory: String, into sources: inout [CgroupEvents.Source],
                                    fail: (String, String, Errno) -> CorralError) throws(CorralError) {
        let control = directory + "/memory.oom_control"
        let oomFD: Int32
        switch valueOrErrno({ unsafe Glibc.open(control, O_RDONLY | O_CLOEXEC) }) {
        case .success(let value): oomFD = value
        case .failure(let errno): throw fail("open", control, errno)
        }
        defer { FileDescriptor(rawValue: oomFD).closeChecked() }
        let eventFD = corral_eventfd_cloexec()
        guard eventFD >= 0 else { throw fail("eventfd for", control, Errno(rawValue: -eventFD)) }
        sources.append(CgroupEvents.Source(descriptor: eventFD, events: Int16(POLLIN), name: "memory.oom_control"))
        let registration = directory + "/cgroup.event_control"
        do { try CgroupFS.write(registration, "\(eventFD) \(oomFD)") } catch {
            throw fail("write `\(eventFD) \(oomFD)` to", registration, error)
        }
    }
}
