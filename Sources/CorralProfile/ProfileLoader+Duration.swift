// MARK: - Durations

extension ProfileLoader {
    /// Parses a manifest duration: whole numbers with units `h`, `m`, `s` and `ms`, largest unit
    /// first, each unit at most once, no spaces: `250ms`, `30s`, `5m`, `1h`, `1m30s`, `2s500ms`.
    ///
    /// Returns nil for anything else, including a bare number and a total past `Int64`
    /// milliseconds. `0s` parses to `.zero`; whether zero is allowed is the caller's choice.
    public static func parseDuration(_ text: String) -> Duration? {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return nil }
        var total: Int64 = 0
        var previousRank = Int.max
        var index = 0
        while index < scalars.count {
            var number: Int64 = 0
            let digitsStart = index
            while index < scalars.count, let digit = asciiDigit(scalars[index]) {
                let (shifted, overflowA) = number.multipliedReportingOverflow(by: 10)
                let (sum, overflowB) = shifted.addingReportingOverflow(digit)
                guard !overflowA, !overflowB else { return nil }
                number = sum
                index += 1
            }
            let unitStart = index
            while index < scalars.count, ("a"..."z").contains(scalars[index]) { index += 1 }
            guard unitStart > digitsStart,
                  let unit = DurationUnit(scalars[unitStart..<index]),
                  unit.rank < previousRank
            else { return nil }
            previousRank = unit.rank
            let (scaled, overflowA) = number.multipliedReportingOverflow(by: unit.milliseconds)
            let (sum, overflowB) = total.addingReportingOverflow(scaled)
            guard !overflowA, !overflowB else { return nil }
            total = sum
        }
        return .milliseconds(total)
    }

    private static func asciiDigit(_ scalar: Unicode.Scalar) -> Int64? {
        ("0"..."9").contains(scalar) ? Int64(scalar.value - 48) : nil
    }
}

private struct DurationUnit {
    /// Larger units rank higher; they must come first.
    var rank: Int
    var milliseconds: Int64

    init?(_ name: ArraySlice<Unicode.Scalar>) {
        switch (name.first, name.count) {
        case ("h", 1): (rank, milliseconds) = (3, 3_600_000)
        case ("m", 1): (rank, milliseconds) = (2, 60_000)
        case ("s", 1): (rank, milliseconds) = (1, 1000)
        case ("m", 2) where name.last == "s": (rank, milliseconds) = (0, 1)
        default: return nil
        }
    }
}
