import ArgumentParser
import Corral

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
            print("# corral explain \(options.profile) (manifest sha256 \(loaded.sha256()))")
            print("# plan digest \(Corral.digest(of: plan))")
            print(plan.description, terminator: "")
        } catch {
            throw fail(error)
        }
    }
}
