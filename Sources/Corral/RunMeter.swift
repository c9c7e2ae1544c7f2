import CorralPlan
import CorralSystem

/// One sample of a run's resource use; nil where the meter cannot tell.
struct MeterSample {
    var memoryBytes: UInt64?
    var memoryPeakBytes: UInt64?
    var processes: UInt64?
    var processLimitHits: UInt64?
    var oomKills: UInt64?
    var cpuSeconds: Double?
}

/// Accounting and enforcement of a run's memory, processes and CPU: its cgroup. Created
/// before the clone (so `limits.enforce: required` can refuse before anything runs); the
/// sandbox's init starts inside it (`openJoin`).
protocol RunMeter: AnyObject, Sendable {
    /// What the launcher needs to start init inside the group (see `RunCgroup.openJoin`).
    func openJoin() throws(CorralError) -> CgroupJoin
    func sample() -> MeterSample
    /// Freezes every process of the run; false when this meter cannot.
    func freeze() -> Bool
    func thaw()
    /// Kills every process of the run.
    func killAll()
    /// Removes what the meter created (after the run is gone).
    func finish()
    /// Removes what earlier, killed supervisors left behind.
    func removeStale()
    /// How each limit it took on is enforced, by limit name (`memory`, `processes`, …).
    var mechanisms: [String: String] { get }
}
