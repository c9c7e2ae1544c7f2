import CCorralLaunch
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

extension MaterializerTests {
    /// A write path named through a symlink (`link -> app`) still makes entries inside the
    /// writable tree no-follow: the walk judges by device and inode, not by the spelling.
    @Test func entriesInsideAWritePathNamedThroughASymlinkAreNoFollow() throws {
        let tree = try Tree()
        let r = tree.root
        let prepared = try Self.prepare("""
            goal: { id: t }
            landlock: best-effort
            filesystem:
              write: [./link]
              read: [./app/keys]
            """, in: tree)
        let noFollow = UInt32(CORRAL_MOUNT_F_NOFOLLOW.rawValue)
        let keys = try #require(prepared.mountOps.first { $0.kind == CORRAL_MOUNT_BIND && $0.target.hasSuffix("app/keys") })
        #expect(keys.target == String(r.dropFirst()) + "/app/keys")
        #expect(keys.flags & noFollow != 0)
    }
}
