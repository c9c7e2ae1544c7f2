import CCorralLaunch
import Glibc
import SystemPackage

/// A pipe whose write end becomes the command's stdout or stderr, so the supervisor sees
/// (counts, caps, forwards) every byte. The read end is non-blocking and close-on-exec.
public final class OutputPipe: @unchecked Sendable {
    // @unchecked: used by the supervisor's one thread.
    public let readDescriptor: Int32
    /// For the child's stdio; close it in the parent once the child has its copy.
    public private(set) var writeDescriptor: Int32

    public init() throws(CorralError) {
        let ends: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do {
            ends = try FileDescriptor.closeOnExecPipe()
        } catch {
            throw CorralError(.setupFailed, operation: "pipe2 (output)", errno: error)
        }
        _ = fcntl(ends.readEnd.rawValue, F_SETFL, O_NONBLOCK)
        readDescriptor = ends.readEnd.rawValue
        writeDescriptor = ends.writeEnd.rawValue
    }

    deinit {
        Glibc.close(readDescriptor)
        closeWriteEnd()
    }

    public func closeWriteEnd() {
        if writeDescriptor >= 0 { Glibc.close(writeDescriptor) }
        writeDescriptor = -1
    }

    /// What is available now, up to `limit` bytes: nil at end-of-file, empty when nothing is
    /// ready yet.
    public func readAvailable(limit: Int = 65536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: limit)
        let n = unsafe buffer.withUnsafeMutableBytes { raw in
            valueOrErrno { unsafe Glibc.read(readDescriptor, raw.baseAddress!, raw.count) }
        }
        switch n {
        case .success(0): return nil
        case .success(let count): return Array(buffer[..<count])
        case .failure(let error) where error == .resourceTemporarilyUnavailable: return []
        case .failure: return nil
        }
    }
}

extension HostEnvironment {
    /// Writes all of `bytes` to `descriptor`; false when the reader went away.
    @discardableResult
    public static func writeAll(_ descriptor: Int32, _ bytes: some Collection<UInt8>) -> Bool {
        (try? FileDescriptor(rawValue: descriptor).writeFully(Array(bytes))) != nil
    }

    /// Whether a write to `descriptor` would not block now (POLLOUT), waiting at most
    /// `waitMilliseconds`.
    public static func isWritable(_ descriptor: Int32, waitMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        let rc = unsafe poll(&entry, 1, waitMilliseconds)
        return rc == 1 && entry.revents & Int16(POLLOUT) != 0
    }

    public static func isTerminal(_ descriptor: Int32) -> Bool {
        isatty(descriptor) == 1
    }

    /// glob(3)'s matching of one path against a manifest pattern (`*`, `?`, `[…]` within one
    /// path component; a leading dot is matched only explicitly).
    public static func pathMatches(pattern: String, path: String) -> Bool {
        unsafe fnmatch(pattern, path, FNM_PATHNAME | FNM_PERIOD) == 0
    }
}
