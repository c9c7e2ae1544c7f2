/// Lexical path operations. Nothing here looks at the filesystem: symlinks and existence are
/// the plan's business, so `a/link/..` is resolved as text, exactly as written.
public enum PathText {
    /// Characters that make an `exec` entry a pattern.
    static func isGlobCharacter(_ character: Character) -> Bool {
        character == "*" || character == "?" || character == "["
    }

    static func containsGlob(_ text: String) -> Bool {
        text.contains(where: isGlobCharacter)
    }

    /// Joins `path` to `directory` unless it is absolute, then normalises.
    static func absolute(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") ? normalise(path) : normalise(directory + "/" + path)
    }

    /// Resolves `.` and `..`, collapses repeated `/` and drops a trailing `/`. The result is
    /// always absolute; `..` above the root stays at the root, as the kernel does.
    public static func normalise(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".":
                continue
            case "..":
                if !components.isEmpty { components.removeLast() }
            default:
                components.append(component)
            }
        }
        var result = ""
        for component in components {
            result += "/"
            result.append(String(component))
        }
        return result.isEmpty ? "/" : result
    }

    /// True when `path` is `ancestor` or lies inside it. Both must be normalised.
    static func isWithin(_ path: String, _ ancestor: String) -> Bool {
        ancestor == "/" || path == ancestor || path.hasPrefix(ancestor + "/")
    }

    /// The deepest folder every match of `pattern` lies in: the complete components before the
    /// first glob character. `/usr/bin/python3*` gives `/usr/bin`; a literal path gives itself.
    static func literalFolder(of pattern: String) -> String {
        guard let firstGlob = pattern.firstIndex(where: isGlobCharacter) else {
            return pattern
        }
        let prefix = pattern[..<firstGlob]
        guard let lastSlash = prefix.lastIndex(of: "/"), lastSlash != prefix.startIndex else {
            return "/"
        }
        return String(prefix[..<lastSlash])
    }
}
