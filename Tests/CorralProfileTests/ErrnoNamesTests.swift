import Testing
@testable import CorralProfile

@Suite("ErrnoNames")
struct ErrnoNamesTests {
    @Test func wellKnownValues() {
        #expect(ErrnoNames.value(named: "EPERM") == 1)
        #expect(ErrnoNames.value(named: "ENOENT") == 2)
        #expect(ErrnoNames.value(named: "EACCES") == 13)
        #expect(ErrnoNames.value(named: "ENOSYS") == 38)
        #expect(ErrnoNames.value(named: "EHWPOISON") == 133)
        #expect(ErrnoNames.name(of: 1) == "EPERM")
        #expect(ErrnoNames.name(of: 2) == "ENOENT")
        #expect(ErrnoNames.name(of: 13) == "EACCES")
        #expect(ErrnoNames.name(of: 38) == "ENOSYS")
        #expect(ErrnoNames.name(of: 133) == "EHWPOISON")
    }

    @Test func aliases() {
        #expect(ErrnoNames.value(named: "EWOULDBLOCK") == ErrnoNames.value(named: "EAGAIN"))
        #expect(ErrnoNames.value(named: "EDEADLOCK") == ErrnoNames.value(named: "EDEADLK"))
        #expect(ErrnoNames.name(of: 11) == "EAGAIN")
        #expect(ErrnoNames.name(of: 35) == "EDEADLK")
    }

    @Test func unknown() {
        #expect(ErrnoNames.name(of: 0) == nil)
        #expect(ErrnoNames.name(of: 41) == nil)
        #expect(ErrnoNames.name(of: 58) == nil)
        #expect(ErrnoNames.name(of: 134) == nil)
        #expect(ErrnoNames.name(of: -1) == nil)
        #expect(ErrnoNames.value(named: "ENOTANERRNO") == nil)
        #expect(ErrnoNames.value(named: "eperm") == nil)
    }

    @Test func allIsCompleteSortedAndUnique() {
        let values = ErrnoNames.all.map(\.value)
        #expect(values == values.sorted())
        #expect(Set(values).count == values.count)
        #expect(Set(ErrnoNames.all.map(\.name)).count == values.count)
        #expect(Set(values) == Set(Int32(1)...133).subtracting([41, 58]))
    }

    @Test func roundTripForAll() {
        for entry in ErrnoNames.all {
            #expect(ErrnoNames.name(of: entry.value) == entry.name)
            #expect(ErrnoNames.value(named: entry.name) == entry.value)
        }
    }
}
