import Glibc
import Testing
@testable import CorralSystem

/// The upper layer and the real tree as an attacker would arrange them: nothing is ever
/// written outside the real folder.
struct TransactionSecurityTests {
    static func attackScratch() throws -> (TransactionScratch, outside: String) {
        let s = try TransactionScratch()
        let outside = s.root + "/outside"
        mkdir(outside, 0o755)
        s.file(outside, "secret", "secret")
        s.file(s.real, "a/old.txt", "old")
        s.file(s.upper, "a/new.txt", "planted")
        s.file(s.upper, "a/old.txt", "changed")
        s.whiteout("a/gone")
        return (s, outside)
    }

    static func swapForSymlink(_ s: TransactionScratch, to outside: String) {
        rename(s.real + "/a", s.real + "/a.moved")
        _ = Glibc.symlink(outside, s.real + "/a")
    }

    @Test func aFolderSwappedForASymlinkBeforeCommitIsAConflict() throws {
        let (s, outside) = try Self.attackScratch()
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        Self.swapForSymlink(s, to: outside)
        #expect(try Transaction.conflicts([s.layer], baseline: s.baseline).contains(s.real + "/a"))
        #expect(throws: CorralError.self) { try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal) }
        #expect(treeListing(outside) == ["f 644 secret = secret"])
    }

    @Test func aFolderSwappedForASymlinkDuringCommitStopsIt() throws {
        let (s, outside) = try Self.attackScratch()
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        // After the conflict check and the journal: the swap races the apply phase.
        let error = #expect(throws: CorralError.self) {
            try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal) { step in
                if step == 1 { Self.swapForSymlink(s, to: outside) }
            }
        }
        #expect(error?.errno == .tooManySymbolicLinkLevels)
        #expect(error?.path == s.real + "/a")
        #expect(treeListing(outside) == ["f 644 secret = secret"])
        // The journal stays; recovery refuses the same way until the symlink is gone.
        #expect(access(s.journal, F_OK) == 0)
        #expect(throws: CorralError.self) { try Transaction.recover(journal: s.journal) }
        #expect(treeListing(outside) == ["f 644 secret = secret"])
        unlink(s.real + "/a")
        rename(s.real + "/a.moved", s.real + "/a")
        #expect(try Transaction.recover(journal: s.journal) == .completed(operations: 2))
        #expect(treeListing(s.real) == ["d 755 a", "f 644 a/new.txt = planted", "f 644 a/old.txt = changed"])
    }

    @Test func aSymlinkAsLastComponentIsReplacedNotFollowed() throws {
        let s = try TransactionScratch()
        let outside = s.root + "/outside"
        mkdir(outside, 0o755)
        s.file(outside, "target", "untouched")
        s.file(outside, "dir/inner", "untouched")
        s.symlink(s.real, "file-link", to: outside + "/target")
        s.symlink(s.real, "dir-link", to: outside + "/dir")
        s.file(s.upper, "file-link", "a regular file now")
        s.whiteout("dir-link")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == ["f 644 file-link = a regular file now"])
        #expect(treeListing(outside) == ["d 755 dir", "f 644 dir/inner = untouched", "f 644 target = untouched"])
    }

    @Test func symlinksInTheUpperAreCommittedAsSymlinks() throws {
        let s = try TransactionScratch()
        s.symlink(s.upper, "to-etc", to: "/etc")
        s.symlink(s.upper, "to-parent", to: "../..")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == ["l to-etc -> /etc", "l to-parent -> ../.."])
    }

    /// What lies below a mount point inside a lower folder is not what overlayfs showed the
    /// sandbox (it sees the folder underneath), so a change there is refused. Mounts a tmpfs in
    /// the test's own mount namespace (root only), unmounted at the end.
    @Test(.enabled(if: geteuid() == 0, "mounting needs root"))
    func aMountPointInTheRealTreeIsNotCrossed() throws {
        let s = try TransactionScratch()
        s.folder(s.real, "mnt")
        s.file(s.upper, "mnt/x", "x")
        guard shell("mount -t tmpfs corral-test '\(s.real)/mnt' 2>/dev/null") == 0 else { return }
        defer { shell("umount '\(s.real)/mnt'") }
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        let error = #expect(throws: CorralError.self) {
            try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        }
        #expect(error?.errno == .improperLink)
        #expect(treeListing(s.real + "/mnt").isEmpty)

        // Deleting a folder that holds a mount point is refused before anything changes.
        let d = try TransactionScratch()
        d.file(d.real, "first", "stays")
        d.folder(d.real, "holder/mnt")
        d.whiteout("first")
        d.whiteout("holder")
        guard shell("mount -t tmpfs corral-test '\(d.real)/holder/mnt' 2>/dev/null") == 0 else { return }
        defer { shell("umount '\(d.real)/holder/mnt'") }
        d.file(d.real, "holder/mnt/inside", "on the tmpfs")
        try Transaction.recordBaseline([d.layer], to: d.baseline)
        let refused = #expect(throws: CorralError.self) {
            try Transaction.commit([d.layer], baseline: d.baseline, journal: d.journal)
        }
        #expect(refused?.path == d.real + "/holder/mnt")
        #expect(treeListing(d.real) == ["f 644 first = stays", "d 755 holder", "d 1777 holder/mnt",
                                        "f 644 holder/mnt/inside = on the tmpfs"])
    }
}
