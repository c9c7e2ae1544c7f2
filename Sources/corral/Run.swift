import ArgumentParser
import Corral

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command under a profile (the manifest's run.command when none is given).")

    @OptionGroup var options: ProfileOption

    @Option(help: "Write the JSON run report to this file.")
    var report: String?

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after `--`.")
    var command: [String] = []

    func run() async throws {
        let forwarded: [Int32] = [1, 2, 3, 15]  // SIGHUP, SIGINT, SIGQUIT, SIGTERM
        Corral.blockForwardedSignals(forwarded)
        let result: RunResult
        do {
            let loaded = try Corral.loadProfile(at: options.profile)
            var runOptions = RunOptions(command: command, environment: HostEnvironment.environment())
            runOptions.forwardSignals = forwarded
            result = try await Corral.run(loaded, options: runOptions)
        } catch {
            guard let error = error as? CorralError else { throw error }
            throw fail(error)
        }
        if let report {
            do throws(CorralError) {
                let json = try result.report.jsonData()
                do { try HostEnvironment.writeFile(report, json) } catch {
                    throw CorralError(.supervisionFailed, operation: "write report", path: report, errno: error)
                }
            } catch {
                throw fail(error)
            }
        }
        throw ExitCode(result.termination.exitStatus)
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a profile and resolve its paths on this host, without running anything.")

    @OptionGroup var options: ProfileOption

    @Option(help: ArgumentHelp("Write the allow-list seccomp program (raw BPF) to this file.", visibility: .hidden))
    var emitSeccomp: String?

    func run() async throws {
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
                  + "seccomp \(prepared.seccompPrograms.map(\.instructionCount)) BPF instructions")
        } catch {
            throw fail(error)
        }
    }
}

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the compiled launch plan: every mount, right and syscall rule, one per line.")

    @OptionGroup var options: ProfileOption

    @Argument(parsing: .postTerminator, help: "A command to explain instead of run.command.")
    var command: [String] = []

    func run() async throws {
        do throws(CorralError) {
            let loaded = try Corral.loadProfile(at: options.profile)
            let plan = try Corral.plan(loaded, command: command.isEmpty ? nil : command)
            print("# corral explain \(options.profile) (manifest sha256 \(loaded.sha256))")
            print("# plan digest \(Corral.digest(of: plan))")
            print(plan.description, terminator: "")
        } catch {
            throw fail(error)
        }
    }
}

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report what this host supports.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
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
