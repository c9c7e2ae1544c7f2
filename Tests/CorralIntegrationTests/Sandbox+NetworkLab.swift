import Foundation

/// Running this sandbox's user inside a `NetworkLab`'s client namespace.
///
/// The order is fixed: `ip netns exec` must run as root (it calls setns and mounts the
/// /etc/netns overrides), so it comes first and the user switch second:
/// `ip netns exec CLIENT setpriv --reuid=65534 … corral …` for the unprivileged variant,
/// `ip netns exec CLIENT corral …` for root. `RunAs.commandPrefix + lab.wrap(…)` would
/// fail: nobody cannot enter a namespace.
extension Sandbox {
    /// `corral ARGUMENTS…` as this sandbox's user, inside `lab`'s client namespace.
    func corral(_ arguments: [String], in lab: NetworkLab, environment: [String: String] = [:],
                timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await command([Products.corral] + arguments, in: lab, environment: environment, timeout: timeout)
    }

    /// `corral run --profile MANIFEST [--report R] -- ARGV…` inside `lab`'s client namespace.
    func run(_ manifest: String, _ argv: [String], in lab: NetworkLab, report: String? = nil,
             environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let reportOption = report.map { ["--report", $0] } ?? []
        return try await corral(["run", "--profile", manifest] + reportOption + ["--"] + argv, in: lab,
                                environment: environment, timeout: timeout)
    }

    /// Any command as this sandbox's user inside `lab`'s client namespace, without Corral
    /// (the tests' controls).
    func command(_ argv: [String], in lab: NetworkLab, environment: [String: String] = [:],
                 timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let environment = ["CORRAL_STATE_DIR": stateDirectory].merging(environment) { _, test in test }
        return try await CommandRunner.run(lab.wrap(runAs.commandPrefix + argv), environment: environment,
                                           captureFolder: scratch, timeout: timeout)
    }
}
