import CorralPlan
import CorralSystem

/// The run's cgroup as a `RunMeter`.
final class CgroupMeter: RunMeter, @unchecked Sendable {
    static func create(limits: Limits, goal: String) throws(CorralError) -> CgroupMeter {
        throw CorralError(.kernelUnsupported, operation: "cgroup", message: "the cgroup backend is not built yet")
    }

    func attach(_ pid: Int32) throws(CorralError) {}
    func sample() -> MeterSample { MeterSample() }
    func freeze() -> Bool { false }
    func thaw() {}
    func killAll() {}
    func finish() {}
    var mechanisms: [String: String] { [:] }
}
