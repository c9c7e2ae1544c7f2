import Glibc
import Testing
@testable import CorralSystem

/// The supervisor's clock texts: every event and audit entry carries one.
struct HostEnvironmentTests {
    @Test(arguments: [
        (0, 0, "1970-01-01T00:00:00.000000000Z"),
        (1_796_526_086, 1, "2026-12-06T03:01:26.000000001Z"),
        (951_825_599, 999_999_999, "2000-02-29T11:59:59.999999999Z"),
        (253_402_300_799, 123_456_789, "9999-12-31T23:59:59.123456789Z"),
        (253_402_300_800, 5, "10000-01-01T00:00:00.000000005Z"),
    ])
    func rfc3339(_ seconds: Int, _ nanoseconds: Int, _ expected: String) {
        #expect(HostEnvironment.rfc3339(HostEnvironment.WallTime(seconds: seconds, nanoseconds: nanoseconds)) == expected)
    }

    @Test func nowIsATimestampOfThisCentury() {
        let now = HostEnvironment.rfc3339Now()
        #expect(now.count == 30 && now.hasPrefix("20") && now.hasSuffix("Z"), "\(now)")
    }
}
