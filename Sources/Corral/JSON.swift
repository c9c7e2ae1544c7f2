import FoundationEssentials

extension Encodable {
    /// Pretty, key-sorted JSON (stable for diffs and tests).
    public func jsonData() throws(CorralError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(self)) + [0x0A]
        } catch {
            throw CorralError(.supervisionFailed, operation: "encode JSON", message: "\(error)")
        }
    }
}

extension Encodable {
    /// Compact, key-sorted JSON and a newline: one line of a JSON-lines stream.
    func jsonLine() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(self)).map(Array.init) ?? Array("{}".utf8)) + [0x0A]
    }
}
