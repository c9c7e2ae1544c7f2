import ArgumentParser
import Corral

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command under a profile (the manifest's run.command when none is given).")

    @OptionGroup var options: ProfileOption

    @Option(help: "Write the JSON run report to this file.")
    var report: String?

    @Option(help: ArgumentHelp("Stream events as JSON lines to this file while the run goes (- for stdout).",
                               valueName: "file"))
    var events: String?

    @Flag(help: "No warnings, pause notices or live status line on stderr.")
    var quiet = false

    @Option(help: ArgumentHelp("After a forwarded SIGINT/SIGTERM/SIGHUP, how long the run may take to end before it is killed.",
                               valueName: "duration"))
    var grace: String = "5s"

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after `--`.")
    var command: [String] = []

    func run() throws {
        guard let grace = ProfileLoader.parseDuration(grace) else {
            throw ValidationError("--grace: invalid duration \"\(grace)\"; write 500ms, 5s or 1m")
        }
        let status = Self.execute(Invocation(profile: options.profile, report: report, events: events, quiet: quiet,
                                             grace: grace, command: command))
        throw ExitCode(status)
    }

    /// What `corral run` was asked to do.
    struct Invocation {
        var profile: String
        var report: String?
        var events: String?
        var quiet = false
        var grace: Duration = .seconds(5)
        var command: [String]
    }

    /// The whole of `corral run`, shared by ArgumentParser's path and the fast path in main.swift.
    /// Returns the exit status (the command's, 128+signal, or 125/126/127 for Corral's own failures).
    static func execute(_ invocation: Invocation) -> Int32 {
        // SIGHUP, SIGINT, SIGQUIT, SIGTERM are forwarded; SIGCONT resumes a paused run.
        let forwarded: [Int32] = [1, 2, 3, 15, 18]
        Corral.blockForwardedSignals(forwarded)
        let result: RunResult
        var eventFile: Int32?
        var reportFile: Int32?
        do throws(CorralError) {
            let loaded = try Corral.loadProfile(at: invocation.profile)
            let writable = loaded.profile.filesystem.write.map(\.path)
            if let report = invocation.report {
                reportFile = try HostEnvironment.createOutputFile(report, operation: "open report file", key: "report",
                                                                  sandboxWritable: writable)
            }
            var runOptions = RunOptions(command: invocation.command, environment: HostEnvironment.environment())
            runOptions.forwardSignals = forwarded
            runOptions.includeDigests = invocation.report != nil
            runOptions.quiet = invocation.quiet
            runOptions.gracePeriod = invocation.grace
            runOptions.statusLine = !invocation.quiet && HostEnvironment.isTerminal(2)
            if let events = invocation.events {
                eventFile = events == "-" ? 1 : try HostEnvironment.createOutputFile(
                    events, operation: "open events file", key: "events file", sandboxWritable: writable)
                runOptions.eventDescriptor = eventFile
            }
            result = try Corral.runBlocking(loaded, options: runOptions)
        } catch {
            // No run, no report: the file opened for it goes (its folder is not the sandbox's).
            if reportFile != nil, let report = invocation.report { HostEnvironment.removeFile(report) }
            return fail(error).rawValue
        }
        if let transaction = result.report.transaction, !invocation.quiet {
            noteTransaction(transaction)
        }
        if let report = invocation.report, let reportFile {
            do throws(CorralError) {
                let json = try result.report.jsonData()
                try HostEnvironment.writeOutput(reportFile, json, operation: "write report", path: report)
            } catch {
                return fail(error).rawValue
            }
        }
        return result.termination.exitStatus
    }

    /// One line on stderr when a run's writes did not simply land: pending, or refused.
    static func noteTransaction(_ transaction: TransactionSummary) {
        let run = transaction.run
        switch transaction.outcome {
        case .pending:
            var line = "corral: run \(run) is pending (\(transaction.changes) changes): corral diff \(run), corral commit \(run) or corral discard \(run)"
            if let conflicts = transaction.conflicts, !conflicts.isEmpty {
                line = "corral: run \(run) not committed: changed since it began: "
                    + conflicts.map { CorralError.printable($0) }.joined(separator: ", ")
                    + "\n  hint: corral diff \(run) shows its changes; corral commit \(run) once resolved, or corral discard \(run)"
            }
            printError(line)
        case .committed, .discarded:
            break
        }
    }

    /// Recognises exactly `run (--profile|-p) P [--report F] [--events F] [--quiet] [-- CMD…]`
    /// (options in any order, each once); nil for anything else, which then goes through
    /// ArgumentParser.
    struct FastPath {
        var invocation: Invocation

        init?(_ arguments: some Collection<String>) {
            var rest = arguments[...]
            guard rest.popFirst() == "run" else { return nil }
            var profile: String?, report: String?, events: String?, quiet = false
            while let token = rest.popFirst() {
                if token == "--" { break }
                if token == "--quiet" {
                    guard !quiet else { return nil }
                    quiet = true
                    continue
                }
                guard let value = rest.popFirst(), !value.hasPrefix("-") || value == "-" else { return nil }
                switch token {
                case "--profile", "-p":
                    guard profile == nil, value != "-" else { return nil }
                    profile = value
                case "--report":
                    guard report == nil, value != "-" else { return nil }
                    report = value
                case "--events":
                    guard events == nil else { return nil }
                    events = value
                default: return nil
                }
            }
            guard let profile else { return nil }
            invocation = Invocation(profile: profile, report: report, events: events, quiet: quiet, command: Array(rest))
        }
    }
}
