import ArgumentParser
import Corral

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command under a profile (the manifest's run.command when none is given).")

    @OptionGroup var options: ProfileOption

    @Option(help: "Write the JSON run report to this file.")
    var report: String?

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after `--`.")
    var command: [String] = []

    func run() throws {
        let status = Self.execute(profile: options.profile, report: report, command: command)
        throw ExitCode(status)
    }

    /// The whole of `corral run`, shared by ArgumentParser's path and the fast path in main.swift.
    /// Returns the exit status (the command's, 128+signal, or 125/126/127 for Corral's own failures).
    static func execute(profile: String, report: String?, command: [String]) -> Int32 {
        let forwarded: [Int32] = [1, 2, 3, 15]  // SIGHUP, SIGINT, SIGQUIT, SIGTERM
        Corral.blockForwardedSignals(forwarded)
        let result: RunResult
        do throws(CorralError) {
            let loaded = try Corral.loadProfile(at: profile)
            var runOptions = RunOptions(command: command, environment: HostEnvironment.environment())
            runOptions.forwardSignals = forwarded
            runOptions.includeDigests = report != nil
            result = try Corral.runBlocking(loaded, options: runOptions)
        } catch {
            return fail(error).rawValue
        }
        if let report {
            do throws(CorralError) {
                let json = try result.report.jsonData()
                do { try HostEnvironment.writeFile(report, json) } catch {
                    throw CorralError(.supervisionFailed, operation: "write report", path: report, errno: error)
                }
            } catch {
                return fail(error).rawValue
            }
        }
        return result.termination.exitStatus
    }

    /// Recognises exactly `run (--profile|-p) P [--report F] [-- CMD…]` (options in either
    /// order, each once); nil for anything else, which then goes through ArgumentParser.
    struct FastPath {
        var profile: String
        var report: String?
        var command: [String]

        init?(_ arguments: some Collection<String>) {
            var rest = arguments[...]
            guard rest.popFirst() == "run" else { return nil }
            var profile: String?, report: String?
            while let token = rest.popFirst() {
                if token == "--" { break }
                guard let value = rest.popFirst(), !value.hasPrefix("-") else { return nil }
                switch token {
                case "--profile", "-p":
                    guard profile == nil else { return nil }
                    profile = value
                case "--report":
                    guard report == nil else { return nil }
                    report = value
                default: return nil
                }
            }
            guard let profile else { return nil }
            self.profile = profile
            self.report = report
            self.command = Array(rest)
        }
    }
}
