import Glibc
import Testing
@testable import CorralSystem

/// A commit (and a recovery) SIGKILLed at every step, in a child process (exit tests), then
/// recovered in the test: the real tree is always exactly the tree before the commit or
/// exactly the tree after it.
struct TransactionCrashTests {
    /// The step numbers of the mixed run's commit: the last step before the point of no
    /// return (the commit mark), and the total.
    static func steps() throws -> (lastBeforeMark: Int, operations: Int, total: Int) {
        let s = try TransactionTests.mixedRun()
        let plan = try CommitPlan.build([s.layer])
        // journal, staged copies, mark, operations, sync, staging removed, journal removed
        let total = 1 + plan.stagedCount + 1 + plan.operations.count + 3
        return (1 + plan.stagedCount, plan.operations.count, total)
    }

    @Test func aCommitKilledAtAnyStepIsRecoveredToAllOrNothing() async throws {
        let (lastBeforeMark, operations, total) = try Self.steps()
        #expect((lastBeforeMark, operations, total) == (10, 24, 38))  // 9 staged copies, 24 operations
        let reference = try TransactionTests.mixedRun()
        let before = treeListing(reference.real)
        #expect(before.count == 15)
        for step in 1...total {
            let s = try TransactionTests.mixedRun()
            try Transaction.recordBaseline([s.layer], to: s.baseline)
            await #expect(processExitsWith: .signal(SIGKILL)) {
                [layer = s.layer as WriteLayer, baseline = s.baseline as String, journal = s.journal as String,
                 step = step as Int] in
                _ = try? Transaction.commit([layer], baseline: baseline, journal: journal) { done in
                    if done == step { kill(getpid(), SIGKILL) }
                }
            }
            let outcome = try Transaction.recover(journal: s.journal)
            let after = treeListing(s.real)
            if step <= lastBeforeMark {
                #expect(outcome == .rolledBack, "step \(step)")
                #expect(after == before, "step \(step)")
            } else {
                #expect(outcome == (step == total ? .nothingPending : .completed(operations: operations)), "step \(step)")
                #expect(after == TransactionTests.mixedRunAfter, "step \(step)")
            }
            #expect(access(s.journal, F_OK) != 0, "step \(step)")
            #expect(try Transaction.recover(journal: s.journal) == .nothingPending)
        }
    }

    @Test func aRecoveryKilledAtAnyStepIsRecoveredAgain() async throws {
        let (lastBeforeMark, operations, _) = try Self.steps()
        // Recovery steps: each operation, the sync, the staging removal, the journal removal.
        for recoveryStep in 1...(operations + 2) {
            let s = try TransactionTests.mixedRun()
            try Transaction.recordBaseline([s.layer], to: s.baseline)
            await #expect(processExitsWith: .signal(SIGKILL)) {
                [layer = s.layer as WriteLayer, baseline = s.baseline as String, journal = s.journal as String,
                 step = (lastBeforeMark + 4) as Int] in
                _ = try? Transaction.commit([layer], baseline: baseline, journal: journal) { done in
                    if done == step { kill(getpid(), SIGKILL) }
                }
            }
            await #expect(processExitsWith: .signal(SIGKILL)) { [journal = s.journal as String, step = recoveryStep as Int] in
                _ = try? Transaction.recover(journal: journal) { done in
                    if done == step { kill(getpid(), SIGKILL) }
                }
            }
            #expect(try Transaction.recover(journal: s.journal) != .rolledBack, "recovery step \(recoveryStep)")
            #expect(treeListing(s.real) == TransactionTests.mixedRunAfter, "recovery step \(recoveryStep)")
        }
    }

    @Test func aRollBackKilledHalfwayRollsBackAgain() async throws {
        let s = try TransactionTests.mixedRun()
        let before = treeListing(s.real)
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        await #expect(processExitsWith: .signal(SIGKILL)) {
            [layer = s.layer as WriteLayer, baseline = s.baseline as String, journal = s.journal as String] in
            _ = try? Transaction.commit([layer], baseline: baseline, journal: journal) { done in
                if done == 3 { kill(getpid(), SIGKILL) }  // two staged copies made
            }
        }
        await #expect(processExitsWith: .signal(SIGKILL)) { [journal = s.journal as String] in
            _ = try? Transaction.recover(journal: journal) { done in
                if done == 1 { kill(getpid(), SIGKILL) }  // staging removed, journal not yet
            }
        }
        #expect(try Transaction.recover(journal: s.journal) == .rolledBack)
        #expect(treeListing(s.real) == before)
        // The run is still pending and commits normally afterwards.
        try Transaction.commit([s.layer], baseline: s.baseline, journal: s.journal)
        #expect(treeListing(s.real) == TransactionTests.mixedRunAfter)
    }

    @Test func namesWithNewlinesSurviveARecovery() async throws {
        let s = try TransactionScratch()
        s.file(s.upper, "first\nsecond", "1")
        s.file(s.upper, "sub dir/ 5:x", "2")
        s.symlink(s.upper, "link\n", to: "first\nsecond")
        try Transaction.recordBaseline([s.layer], to: s.baseline)
        await #expect(processExitsWith: .signal(SIGKILL)) {
            [layer = s.layer as WriteLayer, baseline = s.baseline as String, journal = s.journal as String] in
            _ = try? Transaction.commit([layer], baseline: baseline, journal: journal) { done in
                if done == 6 { kill(getpid(), SIGKILL) }  // after the mark and one operation
            }
        }
        #expect(try Transaction.recover(journal: s.journal) == .completed(operations: 5))
        #expect(treeListing(s.real) == [
            "f 644 first\nsecond = 1", "l link\n -> first\nsecond", "d 755 sub dir", "f 644 sub dir/ 5:x = 2",
        ])
    }
}
