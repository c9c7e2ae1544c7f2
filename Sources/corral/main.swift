import Corral

HostEnvironment.defaultCrashSignals()

// `corral run --profile P -- CMD…` is on the path of every sandboxed tool call, and
// ArgumentParser's reflection-based set-up costs about 3 ms of it. That one exact shape is
// recognised directly; everything else (help, errors, other spellings) goes through
// ArgumentParser, which defines the interface. Both paths share `Run.execute`.
if let fast = Run.FastPath(CommandLine.arguments.dropFirst()) {
    HostEnvironment.exit(Run.execute(fast.invocation))
}
CorralCommand.main()
