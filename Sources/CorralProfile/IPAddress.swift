/// An IPv4 or IPv6 address, parsed without libc so that the manifest, the plan and the
/// proxy read addresses the same way.
///
/// Parsing is strict: IPv4 is four decimal parts without leading zeros (`010.0.0.1` is
/// refused rather than read as octal, as inet_aton would), IPv6 is RFC 4291 text with at
/// most one `::` and an optional dotted IPv4 tail; no zone ids.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    /// High and low 64 bits.
    case v6(UInt64, UInt64)

    public init?(_ text: some StringProtocol) {
        if let v4 = Self.parseV4(text) {
            self = .v4(v4)
        } else if let v6 = Self.parseV6(text) {
            self = .v6(v6.0, v6.1)
        } else {
            return nil
        }
    }

    /// From network-order bytes: 4 for IPv4, 16 for IPv6.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let high = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(high, low)
        default:
            return nil
        }
    }

    public var isV6: Bool { if case .v6 = self { true } else { false } }
    public var bitWidth: Int { isV6 ? 128 : 32 }

    /// Network-order bytes.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    /// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for.
    public var mappedV4: IPAddress? {
        guard case .v6(let high, let low) = self, high == 0, low >> 32 == 0xFFFF else { return nil }
        return .v4(UInt32(truncatingIfNeeded: low))
    }

    /// Dotted quad, or RFC 5952 text (lower case, the longest run of zero groups as `::`).
    public var description: String {
        switch self {
        case .v4:
            return bytes.map { String($0) }.joined(separator: ".")
        case .v6(let high, let low):
            let groups = (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * $0)) }
                + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * $0)) }
            var bestStart = -1, bestLength = 0, runStart = -1
            for index in 0...8 {
                if index < 8, groups[index] == 0 {
                    if runStart < 0 { runStart = index }
                } else if runStart >= 0 {
                    if index - runStart > bestLength, index - runStart > 1 { (bestStart, bestLength) = (runStart, index - runStart) }
                    runStart = -1
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            guard bestStart >= 0 else { return hex.joined(separator: ":") }
            return hex[..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
        }
    }

    /// The `bits` leading bits of this address (as the low bits of the result's words, for
    /// comparing prefixes).
    func prefix(_ bits: Int) -> IPAddress {
        switch self {
        case .v4(let value):
            return .v4(bits == 0 ? 0 : value & (UInt32.max << (32 - bits)))
        case .v6(let high, let low):
            if bits <= 64 { return .v6(bits == 0 ? 0 : high & (UInt64.max << (64 - bits)), 0) }
            return .v6(high, bits == 128 ? low : low & (UInt64.max << (128 - bits)))
        }
    }

    // MARK: Parsing

    static func parseV4(_ text: some StringProtocol) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ ("0"..."9").contains($0) }),
                  part.count == 1 || part.first != "0", let byte = UInt32(part), byte <= 255
            else { return nil }
            value = value << 8 | byte
        }
        return value
    }

    static func parseV6(_ text: some StringProtocol) -> (UInt64, UInt64)? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        let characters = Array(text)
        var halves: [String] = []
        var start = 0, index = 0
        while index < characters.count {
            if characters[index] == ":", index + 1 < characters.count, characters[index + 1] == ":" {
                halves.append(String(characters[start..<index]))
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        halves.append(String(characters[start...]))
        guard halves.count <= 2, !halves.contains(where: { $0.hasPrefix(":") || $0.hasSuffix(":") }) else { return nil }
        func groups(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var result: [UInt16] = []
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, allowV4Tail, piece.contains(".") {
                    guard let v4 = parseV4(piece) else { return nil }
                    result += [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                } else {
                    guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                          let group = UInt16(piece, radix: 16) else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
                  head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], allowV4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        let high = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }
}

/// An address range in CIDR form: `10.0.0.0/8`, `2001:db8::/32`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let base: IPAddress
    public let prefixLength: Int

    /// Refuses host bits set below the prefix (`10.0.0.1/8`): such an entry usually means
    /// something else than it says.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(parts[0]), !parts[1].isEmpty,
              parts[1].allSatisfy({ ("0"..."9").contains($0) }), let length = Int(parts[1]),
              length <= address.bitWidth, address.prefix(length) == address
        else { return nil }
        self.init(base: address, prefixLength: length)
    }

    public init(base: IPAddress, prefixLength: Int) {
        self.base = base.prefix(prefixLength)
        self.prefixLength = prefixLength
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.isV6 == base.isV6 && address.prefix(prefixLength) == base
    }

    public var description: String { "\(base)/\(prefixLength)" }
}

extension Character {
    var isHexDigit: Bool { ("0"..."9").contains(self) || ("a"..."f").contains(self) || ("A"..."F").contains(self) }
}
