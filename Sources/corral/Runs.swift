import ArgumentParser
import Corral

/// `corral runs`, `diff`, `commit`, `discard`, `recover`: the staged writes of runs kept in
/// the state directory ($CORRAL_STATE_DIR, else $XDG_STATE_HOME/corral, else
/// ~/.local/state/corral).
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the runs whose staged writes wait for `corral commit` or `corral discard`.")

    func run() throws {
        do throws(CorralError) {
            let state = try StagedRuns.stateDirectory(environment: HostEnvironment.environment())
            let runs = StagedRuns.list(state: state)
            if runs.isEmpty {
                print("no staged runs in \(CorralError.printable(state))")
                return
            }
            for listing in runs {
                let record = listing.record
                var state = record.state.rawValue
                if listing.interrupted { state = "interrupted-commit" }
                if listing.busy { state += " (in use)" }
                var line = "\(record.id)  \(state)  \(record.startedAt)  goal \(record.goal)"
                if let note = record.note { line += "  \(note)" }
                print(CorralError.printable(line))
                for layer in record.layers { print("    " + CorralError.printable(layer.real)) }
            }
        } catch {
            throw fail(error)
        }
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what committing a pending run would change in its write folders.")

    @Argument(help: ArgumentHelp("The run id (`corral runs` lists them).", valueName: "run"))
    var id: String

    @Flag(help: "Only the list of changed paths.")
    var stat = false

    func run() throws {
        do throws(CorralError) {
            let state = try StagedRuns.stateDirectory(environment: HostEnvironment.environment())
            let (changes, layers) = try StagedRuns.changes(state: state, id: id)
            print(ChangeText.render(changes, layers: layers, unified: !stat), terminator: "")
        } catch {
            throw fail(error)
        }
    }
}

struct Commit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a pending run's staged writes to the real folders (all of them, or none).")

    @Argument(help: ArgumentHelp("The run id (`corral runs` lists them).", valueName: "run"))
    var id: String

    func run() throws {
        do throws(CorralError) {
            let state = try StagedRuns.stateDirectory(environment: HostEnvironment.environment())
            // Tests stop the commit after step N to show that `corral recover` completes it.
            let crashAfter = HostEnvironment.variable("CORRAL_TEST_CRASH_AFTER_STEP").flatMap { Int($0) }
            let summary = try StagedRuns.commit(state: state, id: id, afterStep: crashAfter.map { limit in
                { step in if step >= limit { HostEnvironment.killSelf() } }
            })
            print("committed \(id): \(summary.changes.count) change\(summary.changes.count == 1 ? "" : "s")")
        } catch {
            throw fail(error)
        }
    }
}

struct Discard: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Throw a pending run's staged writes away.")

    @Argument(help: ArgumentHelp("The run id (`corral runs` lists them).", valueName: "run"))
    var id: String

    func run() throws {
        do throws(CorralError) {
            let state = try StagedRuns.stateDirectory(environment: HostEnvironment.environment())
            let changes = try StagedRuns.discard(state: state, id: id)
            print("discarded \(id): \(changes.count) change\(changes.count == 1 ? "" : "s")")
        } catch {
            throw fail(error)
        }
    }
}

struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Finish commits a crash interrupted, and discard runs whose corral died (also done at each run's start).")

    func run() throws {
        do throws(CorralError) {
            let state = try StagedRuns.stateDirectory(environment: HostEnvironment.environment())
            let done = try StagedRuns.recover(state: state)
            if done.isEmpty { print("nothing to recover") }
            for item in done { print("\(item.run): \(item.action.rawValue)") }
        } catch {
            throw fail(error)
        }
    }
}

/// Changes as `corral diff` prints them: one line per change (`--stat`), then unified diffs
/// of the text files. Every path and line comes from the sandbox: control characters are
/// shown escaped (tabs and newlines kept), never sent to the terminal.
enum ChangeText {
    static func render(_ changes: [StagedChange], layers: [WriteLayer], unified: Bool) -> String {
        var text = ""
        for change in changes {
            let kind = change.kind.rawValue
            text += kind + String(repeating: " ", count: max(1, 9 - kind.count)) + CorralError.printable(change.path)
            text += detail(change) + "\n"
        }
        guard unified else { return text }
        for change in changes {
            guard let layer = layers.first(where: { change.path == $0.real || change.path.hasPrefix($0.real + "/") }),
                  let diff = Transaction.unifiedDiff(change, layer: layer) else { continue }
            text += "\n" + escaped(diff)
        }
        return text
    }

    /// What else changed: permissions, a link's target, a type.
    private static func detail(_ change: StagedChange) -> String {
        func octal(_ mode: UInt32) -> String {
            let digits = String(mode, radix: 8)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
        var parts: [String] = []
        if change.kind == .replaced, let old = change.oldType, old != change.type {
            parts.append("\(old.rawValue) -> \(change.type.rawValue)")
        } else if change.type == .directory, change.kind != .mode {
            parts.append("folder")
        }
        if let old = change.oldMode, let new = change.newMode, old != new { parts.append("\(octal(old)) -> \(octal(new))") }
        if let target = change.linkTarget, change.kind != .deleted {
            parts.append("-> " + CorralError.printable(target))
        }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
    }

    /// Control characters but tab and newline shown as \xNN.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if (v < 0x20 && v != 0x09 && v != 0x0A) || v == 0x7F || (0x80..<0xA0).contains(v) {
                let hex = String(v, radix: 16)
                out += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
