import Glibc
import Testing
@testable import CorralSystem

extension MaterializerTests {
    /// A read path that *is* the denied object under another name (a symlink to it) is masked
    /// at that name too.
    @Test func aReadPathThatIsTheDeniedObjectIsMasked() throws {
        let tree = try Tree()
        symlink("\(tree.root)/app/secret.txt", "\(tree.root)/secret-link")
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              read: [./secret-link]
              deny: [./app/secret.txt]
            """, in: tree)
        #expect(Self.ops(prepared).filter { $0.hasPrefix("mask") } == ["mask-file \(tree.root)/secret-link"])
    }
}
