import CorralProfile
import Testing

/// The launch path's own sort and join agree with the standard library's.
struct LaunchPathCollectionsTests {
    @Test(arguments: [0, 1, 2, 3, 7, 8, 9, 31, 64, 300])
    func stableSortedAgreesWithTheStandardSort(count: Int) {
        var generator = SystemRandomNumberGenerator()
        // Few distinct keys, so equal keys are many: their order must be kept.
        let pairs = (0..<count).map { index in (key: Int.random(in: 0..<5, using: &generator), index: index) }
        let ours = stableSorted(pairs) { $0.key < $1.key }
        let standard = pairs.sorted { $0.key < $1.key }  // stable too (documented since Swift 5)
        #expect(ours.map(\.index) == standard.map(\.index))
        let names = (0..<count).map { _ in String(Int.random(in: 0..<1000, using: &generator)) }
        #expect(stableSorted(names) == names.sorted())
    }

    @Test func joinedStringsAgreesWithJoined() {
        for parts in [[], [""], ["a"], ["a", "b"], ["", "x", ""], ["read", "write", "exec"]] {
            #expect(joinedStrings(parts, separator: ", ") == parts.joined(separator: ", "))
            #expect(joinedStrings(parts, separator: "") == parts.joined())
        }
    }
}
