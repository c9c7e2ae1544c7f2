// MARK: - Sizes and counts

extension ProfileLoader {
    /// Parses a manifest size: a whole number and a unit, no space: `512MiB`, `5MB`, `64KiB`,
    /// `20kB`, `1GiB`, `100B`. Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal
    /// ones (kB, KB, MB, GB, TB) powers of 1000.
    ///
    /// Returns nil for anything else, including a bare number (is `512` bytes or MiB?) and a
    /// total past `UInt64`.
    public static func parseSize(_ text: String) -> UInt64? {
        let digits = text.prefix { ("0"..."9").contains($0) }
        guard !digits.isEmpty, digits.count <= 20, let number = UInt64(digits) else { return nil }
        let multiplier: UInt64
        switch text.dropFirst(digits.count) {
        case "B": multiplier = 1
        case "kB", "KB": multiplier = 1000
        case "MB": multiplier = 1_000_000
        case "GB": multiplier = 1_000_000_000
        case "TB": multiplier = 1_000_000_000_000
        case "KiB": multiplier = 1 << 10
        case "MiB": multiplier = 1 << 20
        case "GiB": multiplier = 1 << 30
        case "TiB": multiplier = 1 << 40
        default: return nil
        }
        let (total, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : total
    }

    /// A CPU quota: a percentage of one core (`50%`, `250%`) or a number of cores (`0.5`, `2`).
    /// Returns nil for anything else; zero and negative values are the caller's to refuse.
    public static func parseCPUQuota(_ text: String) -> Double? {
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), percent.isFinite else { return nil }
            return percent / 100
        }
        guard let cores = Double(text), cores.isFinite else { return nil }
        return cores
    }
}
