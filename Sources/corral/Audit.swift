import ArgumentParser
import Corral
import CorralAudit

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check or show the tamper-evident audit log.",
        subcommands: [Verify.self, Show.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain, every signature and the signed head; name the first bad line.",
            discussion: """
                Exit status: 0 when the log is intact; 1 when it is not, with the first bad line \
                and why on stderr; 125 when the log or key cannot be read.
                """)

        @Argument(help: "The log (default: audit.jsonl in Corral's state directory).")
        var log: String?

        @Option(help: ArgumentHelp("The public key file that must have signed the log (default: the state directory's).",
                                   valueName: "pub"))
        var key: String?

        func run() throws {
            let log: String, publicKey: [UInt8]?, verification: AuditVerification
            do throws(CorralError) {
                log = try AuditPaths.log(self.log)
                publicKey = try AuditPaths.publicKey(explicit: key)
                verification = try AuditVerifier.verify(log: log, publicKey: publicKey)
            } catch {
                throw fail(error)
            }
            switch verification {
            case .valid(let summary):
                let signatures = publicKey.map { "\(count(summary.signatures, "signature")) and the head checked with key "
                    + AuditKey.identity(of: $0) }
                    ?? "\(count(summary.uncheckedSignatures, "signature")) and the head NOT checked (no key; pass --key)"
                print("ok: \(CorralError.printable(log)): \(count(summary.events, "event")), \(count(summary.runs, "run")); "
                      + signatures)
            case .invalid(let line, let problem):
                printError("corral: audit log \(CorralError.printable(log)):\(line): "
                           + AuditTimeline.terminalSafe(problem.description))
                throw ExitCode(1)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the log as a timeline: time, run, event type and a summary of each event.",
            discussion: "Shows the log as it is; `corral audit verify` checks it.")

        @Option(name: .customLong("run"), help: "Only this run's events.")
        var runID: String?

        @Argument(help: "The log (default: audit.jsonl in Corral's state directory).")
        var log: String?

        func run() throws {
            do throws(CorralError) {
                print(try AuditTimeline.render(log: try AuditPaths.log(log), run: runID), terminator: "")
            } catch {
                throw fail(error)
            }
        }
    }
}

/// "1 run", "3 runs".
private func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)" + (n == 1 ? "" : "s") }

/// Where the audit commands look when not told.
enum AuditPaths {
    static func stateDirectory() throws(CorralError) -> String {
        guard let state = StateDirectory.current() else {
            throw CorralError(.setupFailed, operation: "find Corral's state directory",
                              hint: "set CORRAL_STATE_DIR (or HOME), or name the log")
        }
        return state
    }

    /// The log named on the command line, else the state directory's.
    static func log(_ explicit: String?) throws(CorralError) -> String {
        if let explicit { return explicit }
        return StateDirectory.auditLog(state: try stateDirectory())
    }

    /// The key named by `--key`; else the state directory's, when there is one; else nil.
    static func publicKey(explicit: String?) throws(CorralError) -> [UInt8]? {
        if let explicit { return try AuditKey.readPublicKey(path: explicit) }
        guard let state = StateDirectory.current() else { return nil }
        let path = AuditKey.publicKeyPath(folder: StateDirectory.keyFolder(state: state))
        guard (try? StateFiles.kind(of: path)) == .regular else { return nil }
        return try AuditKey.readPublicKey(path: path)
    }
}
