import Foundation
import Testing
@testable import CorralProfile

/// Loading manifests the way the CLI would, from a fixed folder and home.
enum Manifest {
    static let directory = "/srv/agents/profiles"
    static let home = "/home/ada"

    static func load(_ text: String, file: String = "profiles/x.yaml", home: String? = Manifest.home)
        throws(ProfileError) -> Profile
    {
        try ProfileLoader.load(contents: text, file: file, directory: directory, home: home)
    }

    /// The text of `Tests/CorralProfileTests/Fixtures/<name>`.
    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The error's full description, or "loaded" when the manifest is valid; exact-string
    /// comparisons then show both texts when they differ.
    static func failure(_ text: String, file: String = "profiles/x.yaml", home: String? = Manifest.home) -> String {
        do {
            _ = try load(text, file: file, home: home)
            return "loaded"
        } catch {
            return error.description
        }
    }
}

/// One manifest and the exact error it must produce.
struct BadManifest: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var expected: String
    var home: String? = Manifest.home

    var testDescription: String { name }
}

