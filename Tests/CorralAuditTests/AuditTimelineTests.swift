import CorralSystem
import Foundation
import Testing
@testable import CorralAudit

struct AuditTimelineTests {
    /// Times shown to the microsecond; run ids and types padded into columns.
    @Test func timelineOfOneRun() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        let text = try AuditTimeline.render(log: scratch.log, run: "r-2")
        let rows = text.split(separator: "\n").map { String($0.dropFirst(28)) }
        #expect(rows == [
            "r-2  run.start  goal=build agent=test",
            "r-2  denial     syscall=connect errno=EPERM",
            "r-2  denial     path=/etc/shadow errno=EACCES",
            "r-2  run.end    exit=0 wall=1.25  [signed]",
        ])
        #expect(text.split(separator: "\n").allSatisfy { $0.prefixMatch(of: #/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}  /#) != nil })
    }

    @Test func everyRunWhenNoneIsNamed() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        #expect(try AuditTimeline.render(log: scratch.log).split(separator: "\n").count == 12)
    }

    /// Text from a sandboxed program cannot drive the terminal: ESC, other controls and
    /// bidirectional overrides come out as `\u{…}`.
    @Test func controlCharactersAreEscaped() throws {
        let scratch = try Scratch()
        let log = try scratch.openLog()
        let payload = #"{"cmd":"\u001b[2J\u001b]0;owned\u0007","name":"a\u202eb","nl":"x\ny","c1":"\u009b"}"#
        try log.append([AuditLog.Entry(type: "watch\u{1b}[1m", run: "r\r1", payload: Array(payload.utf8))])
        let text = try AuditTimeline.render(log: scratch.log)
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        #expect(!text.unicodeScalars.contains { $0.value == 0x202E || $0.value == 0x9B })
        #expect(text.contains(#"r\u{d}1  watch\u{1b}[1m  cmd=\u{1b}[2J\u{1b}]0;owned\u{7} name=a\u{202e}b nl=x\u{a}y c1=\u{9b}"#))
    }

    @Test func damagedLinesAreShownAsSuch() throws {
        let scratch = try Scratch()
        _ = try threeRunLog(scratch)
        var lines = try scratch.lines()
        lines[1] = Array("\u{1b}[31m junk\n".utf8)
        try scratch.write(lines: lines)
        let rows = try AuditTimeline.render(log: scratch.log).split(separator: "\n")
        #expect(rows[1].hasPrefix("line 2"))
        #expect(rows[1].hasSuffix("(not an audit event)"))
    }
}
