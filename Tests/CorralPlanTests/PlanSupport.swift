import Testing
@testable import CorralPlan
import CorralProfile

/// Compiling inline manifests the way the CLI would, from a fixed folder, home and host, so
/// no result depends on the checkout or the machine running the tests.
enum Plans {
    static let directory = "/corral/profiles"
    static let home = "/home/agent"
    static let file = "profiles/t.yaml"

    /// A host with every feature, Landlock at `abi`.
    static func host(landlockABI abi: Int = 7) -> HostFacts {
        HostFacts(uid: 1000, gid: 1000, landlockABI: abi,
                  dynamicLoaders: ["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"])
    }

    /// `body` below a two-line header (`version` and `goal`), so the body's first line is
    /// line 3 of the manifest.
    static func manifest(_ body: String) -> String {
        "version: 1\ngoal: { id: test-goal }\n" + body
    }

    static func profile(_ body: String) throws -> Profile {
        try ProfileLoader.load(contents: manifest(body), file: file, directory: directory, home: home)
    }

    static func compile(_ body: String, command: [String]? = nil, landlockABI abi: Int = 7) throws -> LaunchPlan {
        try PlanCompiler.compile(profile(body), command: command, host: host(landlockABI: abi))
    }

    /// The `ProfileError`'s full description, or "loaded" when the manifest loads.
    static func loadFailure(_ body: String) -> String {
        do {
            _ = try profile(body)
            return "loaded"
        } catch let error as ProfileError {
            return error.description
        } catch {
            return "not a ProfileError: \(error)"
        }
    }

    /// The `PlanError`'s full description, or "compiled" when the plan compiles. The manifest
    /// itself must load; a `ProfileError` fails the calling test.
    static func failure(_ body: String, command: [String]? = nil, landlockABI abi: Int = 7) throws -> String {
        let profile = try profile(body)
        do {
            _ = try PlanCompiler.compile(profile, command: command, host: host(landlockABI: abi))
            return "compiled"
        } catch {
            return error.description
        }
    }
}

extension LaunchPlan {
    /// The mount steps as printed, without Corral's own /dev and /proc steps (identical in
    /// every plan; `MountOrderTests.fixedStepsOfAMinimalPlan` pins them once).
    var manifestMounts: [String] {
        mounts.filter { !PlanCompiler.isBeneath($0.path, "/dev") && !PlanCompiler.isBeneath($0.path, "/proc") }
            .map(\.description)
    }
}

/// One manifest body and the value the compiler must produce for it.
struct Case<Expected: Sendable>: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var expected: Expected

    init(_ name: String, _ yaml: String, _ expected: Expected) {
        self.name = name
        self.yaml = yaml
        self.expected = expected
    }

    var testDescription: String { name }
}
