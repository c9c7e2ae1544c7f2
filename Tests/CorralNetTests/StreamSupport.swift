#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore

// MARK: - Test streams

/// A position-dependent digest of a byte stream, fed in pieces of any size: 64-bit words
/// (little-endian, the last one zero-padded) folded FNV-style, then the length.
struct StreamDigest: Equatable {
    private var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    private var partial: UInt64 = 0
    private var partialCount = 0
    private(set) var count = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        while partialCount > 0 && index < bytes.count {
            add(bytes[index])
            index += 1
        }
        while index + 8 <= bytes.count {
            mix(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index += 8
        }
        while index < bytes.count {
            add(bytes[index])
            index += 1
        }
        count += bytes.count
    }

    private mutating func add(_ byte: UInt8) {
        partial |= UInt64(byte) << (8 * partialCount)
        partialCount += 1
        if partialCount == 8 {
            mix(partial)
            partial = 0
            partialCount = 0
        }
    }

    private mutating func mix(_ word: UInt64) {
        hash = (hash ^ word) &* 0x0000_0100_0000_01B3
        hash ^= hash >> 29
    }

    var value: [UInt64] {
        var copy = self
        if copy.partialCount > 0 { copy.mix(copy.partial) }
        copy.mix(UInt64(count))
        return [copy.hash, UInt64(count)]
    }
}

/// Deterministic test bytes: 1 MiB chunks of xorshift output, each stamped with its number
/// and seed, so that a dropped, repeated or reordered chunk changes the digest (whose
/// words depend on their position, see `StreamDigest`).
enum Pattern {
    static let chunkSize = 1 << 20

    private static let block: [UInt8] = {
        var words = [UInt64](repeating: 0, count: chunkSize / 8)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        words.withUnsafeMutableBufferPointer { buffer in
            for index in buffer.indices {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                buffer[index] = state
            }
        }
        return words.withUnsafeBytes { Array($0) }
    }()

    static func chunk(_ number: Int, seed: UInt64) -> [UInt8] {
        var bytes = block
        withUnsafeBytes(of: (UInt64(number) << 8 | seed).littleEndian) { stamp in
            bytes.withUnsafeMutableBytes { $0.copyMemory(from: stamp) }
        }
        return bytes
    }
}

/// What a test server received, once its client's FIN came.
final class StreamRecord: Sendable {
    private let box = NIOLockedValueBox<(digest: [UInt64]?, bytes: [UInt8])>((nil, []))

    func finish(_ digest: StreamDigest, bytes: [UInt8]) { box.withLockedValue { $0 = (digest.value, bytes) } }

    var digest: [UInt64]? { box.withLockedValue { $0.digest } }

    /// The bytes received, once the FIN came (up to 5 s).
    func wait() async throws -> String? {
        for _ in 0..<500 {
            if let bytes = box.withLockedValue({ $0.digest == nil ? nil : $0.bytes }) {
                return String(decoding: bytes, as: UTF8.self)
            }
            usleep(10_000)
        }
        return nil
    }
}

/// Digests everything up to the client's FIN, then sends `replyBytes` of `Pattern` and
/// shuts its output.
final class StreamServer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let record: StreamRecord
    private let replyBytes: Int
    private let replySeed: UInt64
    private var digest = StreamDigest()

    init(record: StreamRecord, replyBytes: Int, replySeed: UInt64) {
        self.record = record
        self.replyBytes = replyBytes
        self.replySeed = replySeed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unwrapInboundIn(data).withUnsafeReadableBytes { digest.update($0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else { return }
        record.finish(digest, bytes: [])
        var written: EventLoopFuture<Void>?
        for chunk in 0..<replyBytes / Pattern.chunkSize {
            written = context.write(wrapOutboundOut(context.channel.allocator.buffer(
                bytes: Pattern.chunk(chunk, seed: replySeed))))
        }
        context.flush()
        // Once all is written: NIO closes a channel whose input has ended as soon as its
        // output is shut, and a close drops the writes still queued.
        let channel = context.channel
        (written ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

/// Sends `banner\n` and shuts its output at once; records what comes until the FIN.
final class BannerServer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let record: StreamRecord
    private var bytes: [UInt8] = []

    init(record: StreamRecord) { self.record = record }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "banner\n")), promise: nil)
        context.close(mode: .output, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else { return }
        context.close(promise: nil)
    }

    /// NIO closes a channel whose output is shut at its peer's FIN, without `inputClosed`.
    func channelInactive(context: ChannelHandlerContext) {
        record.finish(StreamDigest(), bytes: bytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

/// An upstream that reads and never answers (a long poll): records the bytes, the client's
/// FIN and the end of the connection.
final class SilentRecord: Sendable {
    private let box = NIOLockedValueBox<(bytes: [UInt8], finished: Bool, closed: Bool)>(([], false, false))

    func append(_ bytes: ByteBuffer) { box.withLockedValue { $0.bytes += bytes.readableBytesView } }
    func finish() { box.withLockedValue { $0.finished = true } }
    func close() { box.withLockedValue { $0.closed = true } }

    var closed: Bool { box.withLockedValue { $0.closed } }

    /// The bytes received, once the FIN came (up to 5 s).
    func waitForFIN() -> String? {
        for _ in 0..<500 {
            if let bytes = box.withLockedValue({ $0.finished ? $0.bytes : nil }) {
                return String(decoding: bytes, as: UTF8.self)
            }
            usleep(10_000)
        }
        return nil
    }
}

final class SilentServer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let record: SilentRecord

    init(record: SilentRecord) { self.record = record }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { record.append(unwrapInboundIn(data)) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { record.finish() }
    }

    func channelInactive(context: ChannelHandlerContext) { record.close() }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
