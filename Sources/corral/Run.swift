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
                case "--profile", "-p" where profile == nil: profile = value
                case "--report" where report == nil: report = value
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

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a profile and resolve its paths on this host, without running anything.")

    @OptionGroup var options: ProfileOption

    @Option(help: ArgumentHelp("Write the allow-list seccomp program (raw BPF) to this file.", visibility: .hidden))
    var emitSeccomp: String?

    func run() throws {
        do throws(CorralError) {
            let loaded = try Corral.loadProfile(at: options.profile)
            let plan = try Corral.plan(loaded, command: ["/bin/true"])
            let prepared = try Materializer.prepare(plan, environment: [:])
            if let emitSeccomp, let program = prepared.seccompPrograms.first {
                do { try HostEnvironment.writeFile(emitSeccomp, program.bytes) } catch {
                    throw CorralError(.supervisionFailed, operation: "write", path: emitSeccomp, errno: error)
                }
            }
            print("ok: \(options.profile): goal \(plan.goalID); \(plan.mounts.count) mount steps, "
                  + "\(plan.landlock.rules.count) Landlock rules (ABI \(plan.landlock.abi)), "
                  + "seccomp \(prepared.seccompPrograms.map { $0.instructionCount }) BPF instructions")
        } catch {
            throw fail(error)
        }
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the compiled launch plan: every mount, right and syscall rule, one per line.")

    @OptionGroup var options: ProfileOption

    @Argument(parsing: .postTerminator, help: "A command to explain instead of run.command.")
    var command: [String] = []

    func run() throws {
        do throws(CorralError) {
            let loaded = try Corral.loadProfile(at: options.profile)
            let plan = try Corral.plan(loaded, command: command.isEmpty ? nil : command)
            print("# corral explain \(options.profile) (manifest sha256 \(try loaded.sha256()))")
            print("# plan digest \(try Corral.digest(of: plan))")
            print(plan.description, terminator: "")
        } catch {
            throw fail(error)
        }
    }
}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report what this host supports.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let report = HostProbe().report()
        if json {
            print(String(decoding: try report.jsonData(), as: UTF8.self))
            return
        }
        let facts = report.facts
        print("kernel: \(report.kernel) (\(facts.architecture))")
        print("user namespaces: \(facts.userNamespaces ? "yes" : "no") (uid \(facts.uid))")
        print("landlock: " + (facts.landlockABI > 0 ? "ABI \(facts.landlockABI)" : "unavailable"))
        print("seccomp: filters yes; kill-process \(report.seccompKillProcess ? "yes" : "no"); "
              + "user notification \(facts.seccompUserNotification ? "yes" : "no")")
        print("capabilities: last cap \(report.capLastCap)")
        let controllers = report.cgroupControllers.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        print("cgroups: \(report.cgroupVersion); " + controllers.joined(separator: " "))
        print("overlayfs: \(report.overlayfs ? "yes" : "no")")
        print("dynamic loaders: " + facts.dynamicLoaders.joined(separator: " "))
    }
}
