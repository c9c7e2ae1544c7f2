import CorralPlan
import CorralProfile
import Glibc
import Testing
@testable import CorralSystem

/// The compiled-program cache: a hit returns exactly what was compiled, and anything that
/// is not this user's own, intact entry for the same key is ignored.
struct SeccompCacheTests {
    static func plan(_ configure: (inout SyscallSpec) -> Void = { _ in }) throws -> SeccompPlan {
        var profile = Profile(goal: Goal(id: "t"), source: ProfileSource(file: "t.yaml", directory: "/"))
        configure(&profile.syscalls)
        profile.run.command = ["/bin/true"]
        return try PlanCompiler.compile(profile, host: HostFacts(uid: 0, gid: 0, landlockABI: 7)).seccomp
    }

    static func tempDirectory() -> String {
        var template = Array("/tmp/corral-cache-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    @Test func aHitReturnsTheCompiledPrograms() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        let cache = SeccompCache(directory: root + "/corral/seccomp")
        let plan = try Self.plan()
        let compiled = try SeccompCompiler.compile(plan)
        #expect(try cache.programs(for: plan, architecture: "x86_64") == compiled)
        let key = SeccompCache.key(for: plan, architecture: "x86_64")
        let path = cache.directory + "/" + SeccompCache.fileName(for: key)
        #expect(cache.load(path, key: key) == compiled)
        #expect(cache.root == root + "/corral")
    }

    @Test func anotherPolicyOrArchitectureMisses() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        let cache = SeccompCache(directory: root + "/seccomp")
        let plan = try Self.plan()
        _ = try cache.programs(for: plan, architecture: "x86_64")
        let key = SeccompCache.key(for: plan, architecture: "x86_64")
        let path = cache.directory + "/" + SeccompCache.fileName(for: key)
        #expect(cache.load(path, key: SeccompCache.key(for: plan, architecture: "aarch64")) == nil)
        let other = try Self.plan { $0.deny = ["getcwd"] }
        #expect(cache.load(path, key: SeccompCache.key(for: other, architecture: "x86_64")) == nil)
        #expect(SeccompCache.key(for: other, architecture: "x86_64") != key)
    }

    @Test func untrustedOrDamagedEntriesAreIgnored() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        let cache = SeccompCache(directory: root + "/seccomp")
        let plan = try Self.plan()
        _ = try cache.programs(for: plan, architecture: "x86_64")
        let key = SeccompCache.key(for: plan, architecture: "x86_64")
        let path = cache.directory + "/" + SeccompCache.fileName(for: key)
        #expect(cache.load(path, key: key) != nil)

        chmod(path, 0o620)  // group-writable: someone else could have written it
        #expect(cache.load(path, key: key) == nil)
        chmod(path, 0o600)
        chmod(cache.directory, 0o770)
        #expect(cache.load(path, key: key) == nil)
        chmod(cache.directory, 0o700)

        truncate(path, 100)  // a torn or damaged file
        #expect(cache.load(path, key: key) == nil)
        // …and the next lookup compiles again and repairs it.
        #expect(try cache.programs(for: plan, architecture: "x86_64") == SeccompCompiler.compile(plan))
        #expect(cache.load(path, key: key) != nil)
    }
}
