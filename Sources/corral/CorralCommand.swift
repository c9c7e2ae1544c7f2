import ArgumentParser
import Corral

struct CorralCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corral",
        abstract: "Run a command inside every Linux confinement layer a goal manifest asks for.",
        discussion: """
            Exit status of `corral run`: the command's own status; 128+N when a signal N ended \
            it (137 for SIGKILL, also when limits.wall passes); 125 when Corral itself failed \
            (invalid profile, setup step); 126 when the command could not be executed \
            (permission, not allowed by filesystem.exec); 127 when it was not found.
            """,
        subcommands: [Run.self, Check.self, Explain.self, Probe.self, Runs.self, Diff.self, Commit.self, Discard.self,
                      Recover.self, Audit.self]
    )
}

/// Corral's own failures: one line to stderr, then exit 125/126/127.
func fail(_ error: CorralError) -> ExitCode {
    printError("corral: \(error)")
    if error.code == .execFailed {
        return ExitCode(error.errno == .noSuchFileOrDirectory ? 127 : 126)
    }
    return ExitCode(125)
}

func printError(_ text: String) {
    var stderr = StandardError()
    print(text, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        HostEnvironment.writeStandardError(string)
    }
}

struct ProfileOption: ParsableArguments {
    @Option(name: [.short, .long], help: "The goal manifest (YAML or JSON).")
    var profile: String
}
