import Glibc
import SystemPackage
import Testing
@testable import CorralSystem

/// The commit engine against upper layers built by hand: what `changes` lists, what
/// `commit` leaves in the real tree, conflicts, and the journal format.
struct TransactionTests {
    /// A run that creates, modifies, deletes, replaces, renames, chmods and symlinks.
    static func mixedRun() throws -> TransactionScratch {
        umask(0o022)
        let s = try TransactionScratch()
        let (r, u) = (s.real, s.upper)
        s.file(r, "keep.txt", "keep\n")
        s.file(r, "mod.txt", "old line 1\nold line 2\n")
        s.file(r, "del.txt", "bye")
        s.file(r, "chm.txt", "same")
        s.file(r, "dir/x", "x")
        s.file(r, "dir/sub/y", "y")
        s.file(r, "gone/z", "z")
        s.symlink(r, "link", to: "keep.txt")
        s.file(r, "f2d", "was a file")
        s.file(r, "d2f/q", "q")
        s.file(r, "touched.txt", "t")

        s.file(u, "mod.txt", "old line 1\nnew line 2\n")
        s.whiteout("del.txt")
        s.file(u, "chm.txt", "same", mode: 0o600)
        s.file(u, "new.txt", "new", mode: 0o640)
        var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 123), timespec(tv_sec: 1_000_000_000, tv_nsec: 456)]
        utimensat(AT_FDCWD, u + "/new.txt", &times, 0)
        s.folder(u, "newdir", mode: 0o750)
        s.file(u, "tree/inner/deep.txt", "deep")
        s.folder(u, "dir")
        try s.opaque("dir")
        s.file(u, "dir/fresh.txt", "fresh")
        s.whiteout("gone")
        s.symlink(u, "link", to: "mod.txt")
        s.symlink(u, "newlink", to: "new.txt")
        s.folder(u, "f2d")
        try s.opaque("f2d")
        s.file(u, "f2d/inside.txt", "inside")
        s.file(u, "d2f", "now a file")
        s.file(u, "touched.txt", "t")
        s.file(u, "suid.bin", "#!/bin/sh\n", mode: 0o4755)
        return s
    }

    static let mixedRunChanges = [
        "mode file chm.txt", "replaced file d2f", "deleted file del.txt", "replaced directory dir",
        "added file dir/fresh.txt", "deleted directory dir/sub", "deleted file dir/x", "replaced directory f2d",
        "added file f2d/inside.txt", "deleted directory gone", "modified symlink link", "modified file mod.txt",
        "added file new.txt", "added directory newdir", "added symlink newlink", "added file suid.bin",
        "added directory tree", "added directory tree/inner", "added file tree/inner/deep.txt",
    ]

    static let mixedRunAfter = [
        "f 600 chm.txt = same", "f 644 d2f = now a file", "d 755 dir", "f 644 dir/fresh.txt = fresh", "d 755 f2d",
        "f 644 f2d/inside.txt = inside", "f 644 keep.txt = keep\n", "l link -> mod.txt",
        "f 644 mod.txt = old line 1\nnew line 2\n", "f 640 new.txt = new", "d 750 newdir", "l newlink -> new.txt",
        "f 755 suid.bin = #!/bin/sh\n", "f 644 touched.txt = t", "d 755 tree", "d 755 tree/inner",
        "f 644 tree/inner/deep.txt = deep",
    ]

    static func summary(_ changes: [StagedChange], real: String) -> [String] {
        changes.map { "\($0.kind.rawValue) \($0.type.rawValue) \($0.path.dropFirst(real.count + 1))" }
    }

    @Test func changesListExactlyWhatTheRunDid() throws {
        let s = try Self.mixedRun()
        let changes = try Transaction.changes([s.layer])
        #expect(Self.summary(changes, real: s.real) == Self.mixedRunChanges)
        let chmod = try #require(changes.first { $0.path.hasSuffix("/chm.txt") })
        #expect(chmod.oldMode == 0o644 && chmod.newMode == 0o600)
        let suid = try #require(changes.first { $0.path.hasSuffix("/suid.bin") })
        #expect(suid.newMode == 0o755)
        let link = try #require(changes.first { $0.path.hasSuffix("/link") })
        #expect(link.oldLinkTarget == "keep.txt" && link.linkTarget == "mod.txt")
        let d2f = try #require(changes.first { $0.path.hasSuffix("/d2f") })
        #expect(d2f.oldType == .directory && d2f.type == .file)
        #expect(Transaction.digest(of: changes) == Transaction.digest(of: try Transaction.changes([s.layer])))
        #expect(Transaction.digest(of: changes) != Transaction.digest(of: Array(changes.dropLast())))
    }

    @Test func commitLeavesExactlyTheExpectedTree() throws {
        let s = try Self.mixedRun()
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        let summary = try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == Self.mixedRunAfter)
        #expect(Self.summary(summary.changes, real: s.real) == Self.mixedRunChanges)
        #expect(summary.digest == Transaction.digest(of: summary.changes))
        #expect(access(s.journal, F_OK) != 0)
        // Times kept as cp -a keeps them; nothing committed twice.
        let st = try #require(lstatOf(s.real + "/new.txt"))
        #expect(st.st_mtim.tv_sec == 1_000_000_000 && st.st_mtim.tv_nsec == 456)
        let again = try Transaction.changes([s.layer]).map(\.description)
        #expect(again == [])
        #expect(try Transaction.recover(journal: s.journal) == .nothingPending)
    }

    @Test func nothingToCommitTakesNoStep() throws {
        let s = try TransactionScratch()
        s.file(s.real, "a", "a")
        s.file(s.upper, "a", "a")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        let summary = try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(summary.changes.isEmpty && summary.steps == 0)
    }

    @Test func aChangedRealFileIsAConflictAndNothingChanges() throws {
        let s = try Self.mixedRun()
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        s.file(s.real, "mod.txt", "someone else's edit\n")
        s.file(s.real, "gone/added-meanwhile", "new")  // inside a folder the run deletes
        s.file(s.real, "unrelated.txt", "not the run's business")
        let before = treeListing(s.real)
        #expect(try Transaction.conflicts([s.layer], baseline: s.baseline)
            == [s.real + "/gone/added-meanwhile", s.real + "/mod.txt"])
        let error = #expect(throws: CorralError.self) {
            try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        }
        #expect(error?.message?.contains("mod.txt") == true)
        #expect(error?.message?.contains("the real files changed since the run began") == true)
        #expect(treeListing(s.real) == before)
        #expect(access(s.journal, F_OK) != 0)
    }

    @Test func aTouchedFileChangedOnTheHostIsAConflict() throws {
        // The upper holds the old contents (copied up by a touch): committing would revert
        // the host's edit.
        let s = try TransactionScratch()
        s.file(s.real, "f", "v1")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        s.file(s.upper, "f", "v1")
        s.file(s.real, "f", "v2")
        #expect(try Transaction.conflicts([s.layer], baseline: s.baseline) == [s.real + "/f"])
    }

    @Test func hardLinksInTheUpperBecomeSeparateFiles() throws {
        let s = try TransactionScratch()
        s.file(s.upper, "a", "shared")
        link(s.upper + "/a", s.upper + "/b")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        let a = try #require(lstatOf(s.real + "/a")), b = try #require(lstatOf(s.real + "/b"))
        #expect(a.st_ino != b.st_ino && a.st_nlink == 1 && b.st_nlink == 1)
        #expect(treeListing(s.real) == ["f 644 a = shared", "f 644 b = shared"])
    }

    @Test func namesWithNewlinesAndControlCharactersRoundTrip() throws {
        let s = try TransactionScratch()
        s.file(s.upper, "line\nbreak", "1")
        s.file(s.upper, "tab\tand space ", "2")
        s.file(s.upper, "12:colon", "3")
        s.file(s.real, "del\u{1b}[31m", "4")
        s.whiteout("del\u{1b}[31m")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == ["f 644 12:colon = 3", "f 644 line\nbreak = 1", "f 644 tab\tand space  = 2"])
    }

    @Test func journalEncodingIsUnambiguousAndChecked() throws {
        let op = CommitOperation(kind: .file, layer: 0, path: Array("a b\n3:x/y".utf8), staged: 7, mode: 0o640,
                                 owner: .init(uid: 1000, gid: 100), accessTime: 1, modifyTime: -2)
        let symlink = CommitOperation(kind: .symlink, layer: 0, path: Array("l".utf8), staged: 8,
                                      target: Array("../t\nx".utf8))
        let journal = Journal(stagingName: Array(".corral-commit-abc".utf8),
                              layers: [WriteLayer(real: "/r 1", upper: "/u\n2")], operations: [op, symlink])
        let bytes = journal.encoded()
        #expect(try Journal.decode(bytes, path: "j") == journal)
        var committed = journal
        committed.committed = true
        #expect(try Journal.decode(bytes + Journal.commitMark, path: "j") == committed)
        #expect(try Journal.decode(bytes + Array("comm".utf8), path: "j") == journal)  // a torn mark
        var flipped = bytes
        flipped[40] ^= 1
        #expect(throws: CorralError.self) { try Journal.decode(flipped, path: "j") }
        #expect(throws: CorralError.self) { try Journal.decode(Array(bytes.dropLast(3)), path: "j") }
        let escaping = CommitOperation(kind: .remove, layer: 0, path: Array("../etc".utf8))
        let bad = Journal(stagingName: Array(".s".utf8), layers: journal.layers, operations: [escaping]).encoded()
        #expect(throws: CorralError.self) { try Journal.decode(bad, path: "j") }
    }

    @Test func removeTreeRemovesEverythingAndFollowsNothing() throws {
        let s = try TransactionScratch()
        s.file(s.real, "outside/keep", "keep")
        s.file(s.upper, "a/b/c", "c")
        s.symlink(s.upper, "a/escape", to: s.real + "/outside")
        s.symlink(s.upper, "a/escape-file", to: s.real + "/outside/keep")
        s.folder(s.upper, "work/work", mode: 0o000)  // as overlayfs leaves it
        s.file(s.upper, "ro/f", "f")
        chmod(s.upper + "/ro", 0o500)
        mkdir(s.upper + "/deep", 0o755)
        var fd = open(s.upper + "/deep", O_RDONLY | O_DIRECTORY)
        for _ in 0..<300 {  // deeper than a descriptor-per-level walk would go
            mkdirat(fd, "d", 0o755)
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        close(fd)
        try Transaction.removeTree(s.upper)
        #expect(access(s.upper, F_OK) != 0)
        #expect(treeListing(s.real) == ["d 755 outside", "f 644 outside/keep = keep"])
        try Transaction.removeTree(s.upper)  // nothing there: fine
    }

    @Test func setuidAndSetgidAreNeverTakenFromTheUpper() throws {
        let s = try TransactionScratch()
        s.file(s.real, "kept-suid", "same", mode: 0o4755)
        s.file(s.real, "changed-suid", "old", mode: 0o4755)
        s.file(s.upper, "kept-suid", "same", mode: 0o4755)  // a touch: no change
        s.file(s.upper, "changed-suid", "new", mode: 0o4755)
        s.file(s.upper, "new-suid", "x", mode: 0o4711)
        s.file(s.upper, "new-sgid", "x", mode: 0o2755)
        s.folder(s.upper, "sgid-dir", mode: 0o2775)
        s.file(s.real, "gained", "g", mode: 0o755)
        s.file(s.upper, "gained", "g", mode: 0o6755)
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == [
            "f 755 changed-suid = new", "f 755 gained = g", "f 4755 kept-suid = same", "f 755 new-sgid = x",
            "f 711 new-suid = x", "d 775 sgid-dir",
        ])
    }

    @Test func devicesFifosAndSocketsAreListedButRefused() throws {
        let s = try TransactionScratch()
        s.file(s.upper, "ok.txt", "fine")
        mkfifo(s.upper + "/pipe", 0o644)
        mknod(s.upper + "/null", S_IFCHR | 0o666, (1 << 8) | 3)  // makedev(1, 3): /dev/null
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        let changes = try Transaction.changes([s.layer])
        #expect(Self.summary(changes, real: s.real) == ["added other null", "added file ok.txt", "added other pipe"])
        let error = #expect(throws: CorralError.self) {
            try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        }
        #expect(error?.message?.contains("device file \(s.real)/null") == true)
        #expect(error?.message?.contains("fifo \(s.real)/pipe") == true)
        #expect(treeListing(s.real).isEmpty)
    }

    @Test func metacopyAndRedirectEntriesAreRefused() throws {
        let s = try TransactionScratch()
        s.folder(s.upper, "moved")
        let fd = try FileDescriptor.openFolder(s.upper + "/moved")
        try fd.setExtendedAttribute("user.overlay.redirect", Array("/elsewhere".utf8))
        fd.closeChecked()
        let error = #expect(throws: CorralError.self) { try Transaction.changes([s.layer]) }
        #expect(error?.message?.contains("redirect") == true)

        let m = try TransactionScratch()
        m.file(m.real, "big", "real data")
        m.file(m.upper, "new", "fine")
        m.file(m.upper, "big", "")
        let folder = try FileDescriptor.openFolder(m.upper)
        let file = try folder.openEntry(Array("big".utf8), O_RDONLY)
        try file.setExtendedAttribute("user.overlay.metacopy", [])
        file.closeChecked()
        folder.closeChecked()
        try Transaction.recordBaseline([m.layer], to: m.baseline)
        let refused = #expect(throws: CorralError.self) {
            try Transaction.commit([m.layer], baseline: m.baseline, journal: m.journal)
        }
        #expect(refused?.message?.contains("metacopy") == true)
        #expect(treeListing(m.real) == ["f 644 big = real data"])
        #expect(access(m.journal, F_OK) != 0)
    }

    @Test func aPendingJournalMustBeRecoveredFirst() throws {
        let s = try Self.mixedRun()
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        s.file(s.runFolder, "journal", "whatever")
        let error = #expect(throws: CorralError.self) {
            try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        }
        #expect(error?.message == "an interrupted commit is pending")
        #expect(throws: CorralError.self) { try Transaction.recover(journal: s.journal) }  // not a journal
    }

    /// Without root (an exit test that becomes `nobody`): files belong to the committing
    /// user, an upper file its owner cannot read is still committed, and overlayfs's mode-000
    /// `work/work` is discarded.
    @Test(.enabled(if: geteuid() == 0, "switching to another user needs root"))
    func rootlessCommitAndDiscard() async throws {
        let s = try TransactionScratch()
        s.file(s.real, "mine.txt", "old")
        s.file(s.upper, "mine.txt", "new", mode: 0o200)
        s.file(s.upper, "sub/new.txt", "n")
        s.folder(s.root, "work/work", mode: 0)
        #expect(shell("chown -R 65534:65534 '\(s.root)'") == 0)
        await #expect(processExitsWith: .success) {
            [layer = s.layer as WriteLayer, baseline = s.baseline as String, journal = s.journal as String,
             work = (s.root + "/work") as String] in
            #expect(setgroups(0, nil) == 0 && setgid(65534) == 0 && setuid(65534) == 0)
            try Transaction.recordBaseline([layer], to: baseline)
            try Transaction.commit([layer], baseline: baseline, journal: journal)
            try Transaction.removeTree(work)
        }
        #expect(treeListing(s.real) == ["f 200 mine.txt = new", "d 755 sub", "f 644 sub/new.txt = n"])
        #expect(lstatOf(s.real + "/sub/new.txt")?.st_uid == 65534)
        #expect(access(s.root + "/work", F_OK) != 0)
    }

    @Test func severalLayersCommitTogether() throws {
        let a = try TransactionScratch(), b = try TransactionScratch()
        a.file(a.upper, "one", "1")
        b.file(b.real, "two", "old")
        b.whiteout("two")
        let layers = [a.layer, b.layer]
        try Transaction.recordBaseline(layers, to: a.baseline)
        let summary = try Transaction.commit(layers, baseline: a.baseline, journal: a.journal)
        #expect(summary.changes.count == 2 && Set(summary.changes.map(\.kind)) == [.added, .deleted])
        #expect(treeListing(a.real) == ["f 644 one = 1"] && treeListing(b.real).isEmpty)
    }
}
