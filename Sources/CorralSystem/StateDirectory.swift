/// Where Corral keeps what outlives a run: staged writes of pending runs (`runs/`), the
/// audit log and its signing key. One place, so every command finds the same state.
public enum StateDirectory {
    /// `$CORRAL_STATE_DIR`, else `$XDG_STATE_HOME/corral`, else `$HOME/.local/state/corral`
    /// (relative values are ignored, as the XDG base directory specification asks).
    public static func path(environment: [String: String]) -> String? {
        path { environment[$0] }
    }

    /// The same, from this process's own environment (three `getenv`s, no dictionary of the
    /// whole environment on the launch path).
    public static func current() -> String? {
        path(HostEnvironment.variable)
    }

    private static func path(_ variable: (String) -> String?) -> String? {
        if let explicit = variable("CORRAL_STATE_DIR"), explicit.hasPrefix("/") { return explicit }
        if let xdg = variable("XDG_STATE_HOME"), xdg.hasPrefix("/") { return xdg + "/corral" }
        if let home = variable("HOME"), home.hasPrefix("/") { return home + "/.local/state/corral" }
        return nil
    }

    /// The folder of one run's staged writes and records.
    public static func runFolder(state: String, run: String) -> String { state + "/runs/" + run }

    /// The default audit log.
    public static func auditLog(state: String) -> String { state + "/audit.jsonl" }

    /// The folder of the audit signing key (owner-only).
    public static func keyFolder(state: String) -> String { state + "/keys" }
}
