import CSeccomp
import CorralProfile

/// The default base's two seccomp programs, compiled by libseccomp when this file's data was
/// generated. Generating them costs ~2 ms, the largest single cost of a launch; the bytes are
/// fixed for a given policy, libseccomp version and architecture, and living in the binary
/// they cannot be tampered with the way a cache on disk could.
///
/// `PrecompiledSeccompTests` fails when a fresh compile differs (the policy changed) and
/// regenerates `PrecompiledSeccomp+Data.swift` with
/// `CORRAL_UPDATE_GOLDEN=1 swift test --filter PrecompiledSeccompTests`.
enum PrecompiledSeccomp {
    /// The precompiled programs for `spec`, or nil when they do not apply here.
    static func programs(for spec: SyscallSpec) -> [SeccompProgram]? {
        guard spec.base == .default, spec.allow.isEmpty, spec.deny.isEmpty, spec.onDeny == .errno(1),
              !data.isEmpty, HostProbe().architecture() == architecture, libseccompVersion() == version
        else { return nil }
        return data.map { SeccompProgram(bytes: decodeHex($0)) }
    }

    static func libseccompVersion() -> String {
        guard let version = unsafe seccomp_version() else { return "?" }
        return unsafe "\(version.pointee.major).\(version.pointee.minor).\(version.pointee.micro)"
    }

    static func decodeHex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for c in text.utf8 {
            let nibble: UInt8 = c <= 0x39 ? c - 0x30 : c - 0x61 + 10
            if let h = high { bytes.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
        return bytes
    }

    static func encodeHex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
