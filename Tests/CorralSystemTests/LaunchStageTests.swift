import Testing
@testable import CorralSystem

struct LaunchStageTests {
    /// The Swift enum mirrors `enum corral_stage`: values 1…N-1 with no gap, N = CORRAL_STAGE_COUNT.
    @Test func mirrorsTheCEnum() {
        let raw = LaunchStage.allCases.map(\.rawValue)
        #expect(raw == Array(1..<LaunchStage.cCount))
    }

    @Test func everyStageNamesAnOperation() {
        for stage in LaunchStage.allCases {
            #expect(!stage.operation.isEmpty)
            #expect(!stage.description.contains(" "))
        }
    }

    @Test func errorDescriptionNamesStagePathAndErrno() {
        let error = CorralError(.setupFailed, stage: .mounts, index: 3, operation: "mount", path: "/proc",
                                errno: .permissionDenied)
        #expect(error.description == "mount `/proc` (stage mounts #3): Permission denied (EACCES)")
        let exec = CorralError(.execFailed, stage: .exec, operation: "execve", path: "nosuch", errno: .noSuchFileOrDirectory)
        #expect(exec.description == "execve `nosuch` (stage exec): No such file or directory (ENOENT)\n"
                    + "  hint: the program, or its ELF interpreter (ld.so, via /lib64 and /lib), is not visible inside the sandbox: "
                    + "add its folder to filesystem.read, or give a full path")
    }
}

struct CorralErrorPrintingTests {
    @Test func controlCharactersInPathsCannotDriveTheTerminal() {
        let error = CorralError(.execFailed, stage: .exec, operation: "execve", path: "\u{1b}]0;owned\u{07}x",
                                errno: .noSuchFileOrDirectory)
        #expect(error.description.hasPrefix("execve `\\x1b]0;owned\\x07x` (stage exec)"))
        #expect(!error.description.contains("\u{1b}"))
    }
}
