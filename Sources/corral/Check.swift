import ArgumentParser
import Corral

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
            // Staging layers are made by a run; checking the paths needs none.
            let prepared = try Materializer.prepare(plan, environment: [:],
                                                    staging: { _ in StagingFolders(upper: "", work: "") })
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
