import Glibc
import Testing
@testable import CorralSystem

/// The engine against an upper layer written by overlayfs itself: mounted with `userxattr`
/// in a user and mount namespace (`unshare -Urm`), as Corral mounts write paths, a script
/// makes every kind of change in the merged folder and copies the merged view (`cp -a`);
/// committing the upper must make the real folder equal that view.
struct TransactionOverlayTests {
    static let overlayWorks: Bool = {
        guard let s = try? TransactionScratch("probe") else { return false }
        for folder in ["work", "merged"] { mkdir(s.root + "/" + folder, 0o755) }
        return shell("cd '\(s.root)' && unshare -Urm sh -c 'mount -t overlay overlay "
            + "-o lowerdir=real,upperdir=upper,workdir=work,userxattr merged' 2>/dev/null") == 0
    }()

    @Test(.enabled(if: overlayWorks, "needs overlayfs with userxattr in a user namespace"))
    func theUpperOverlayfsWritesCommitsToTheMergedView() throws {
        umask(0o022)
        let s = try TransactionScratch("overlay")
        for folder in ["work", "merged", "expected"] { mkdir(s.root + "/" + folder, 0o755) }
        let r = s.real
        s.file(r, "mod.txt", "one\ntwo\n")
        s.file(r, "del.txt", "bye")
        s.file(r, "chm.txt", "same")
        s.file(r, "touched.txt", "t")
        s.file(r, "gone/z", "z")
        s.file(r, "dir/a", "a")
        s.file(r, "dir/sub/b", "b")
        s.file(r, "repl/old", "old")
        s.file(r, "f2d", "file")
        s.file(r, "d2f/q", "q")
        s.file(r, "renamed-file", "r")
        s.symlink(r, "link", to: "mod.txt")
        let script = """
            set -e
            mount -t overlay overlay -o lowerdir=real,upperdir=upper,workdir=work,userxattr merged
            cd merged
            echo new > new.txt
            echo three >> mod.txt
            rm del.txt
            chmod 600 chm.txt
            touch touched.txt
            rm -r gone
            mv dir moved
            rm -r repl && mkdir repl && echo fresh > repl/f
            rm f2d && mkdir f2d && echo in > f2d/x
            rm -r d2f && echo file > d2f
            mv renamed-file renamed-now
            ln -s new.txt lnk
            ln -sfn chm.txt link
            mkdir -p empty deep/er
            cd .. && cp -a merged/. expected/
            """
        #expect(shell("cd '\(s.root)' && unshare -Urm sh -c '\(script)'") == 0)

        let changes = try Transaction.changes([s.layer])
        #expect(TransactionTests.summary(changes, real: s.real).sorted() == [
            "mode file chm.txt", "replaced file d2f", "deleted file del.txt", "deleted directory dir",
            "added directory empty", "replaced directory f2d", "added file f2d/x", "deleted directory gone",
            "added directory deep", "added directory deep/er", "modified symlink link", "added symlink lnk",
            "modified file mod.txt", "added directory moved", "added file moved/a", "added directory moved/sub",
            "added file moved/sub/b", "added file new.txt", "deleted file renamed-file", "added file renamed-now",
            "replaced directory repl", "added file repl/f", "deleted file repl/old",
        ].sorted())
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == treeListing(s.root + "/expected"))
        try Transaction.removeTree(s.root + "/work")  // overlayfs's work/work is mode 000
        #expect(access(s.root + "/work", F_OK) != 0)
    }
}
