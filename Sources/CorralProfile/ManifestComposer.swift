import Yams

/// Turns manifest text into a Yams node tree, converting YAML errors into `ProfileError`s.
enum ManifestComposer {
    /// The node tree of the first document, or nil when the text holds no document.
    ///
    /// Yams rejects a mapping with a repeated key but reports only the first occurrence's
    /// position, not where the repeat is nor the key path. So each first occurrence it reports
    /// is renamed (see `DuplicateKeys`) and the text composed again; `ManifestReader.mapping`
    /// then sees both keys and reports the second one with its full key path.
    static func compose(_ contents: String, file: String) throws(ProfileError) -> Node? {
        var text = contents
        var serial = 0
        while true {
            do {
                return try Yams.compose(yaml: text)
            } catch let error as YamlError {
                if case .duplicatedKeysInMapping(let duplicates, let context) = error,
                   let name = duplicates.first
                {
                    if serial < DuplicateKeys.maximumRenames,
                       let renamed = DuplicateKeys.renaming(name, at: context.mark, in: text, serial: serial)
                    {
                        text = renamed
                        serial += 1
                        continue
                    }
                    throw ProfileError(file: file, line: context.mark.line, keyPath: "",
                                       message: "duplicate key `\(name)`", hint: "give each key once")
                }
                throw syntaxError(error, text: text, file: file)
            } catch {
                throw ProfileError(file: file, line: nil, keyPath: "", message: "cannot read the manifest: \(error)")
            }
        }
    }

    private static let syntaxHint = "check the indentation and quoting near this line"

    /// `invalid YAML: did not find expected key (while parsing a block mapping that starts on line 2)`
    static func syntaxError(_ error: YamlError, text: String, file: String) -> ProfileError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context {
                message += context.mark.line == mark.line
                    ? " (\(context.text))"
                    : " (\(context.text) that starts on line \(context.mark.line))"
            }
            return ProfileError(file: file, line: mark.line, keyPath: "", message: message, hint: syntaxHint)
        case .reader(let problem, let offset, _, _):
            let line = offset.map { offset in 1 + text.prefix(offset).count(where: { $0 == "\n" }) }
            return ProfileError(file: file, line: line, keyPath: "", message: "invalid YAML: \(problem)",
                                hint: line == nil ? nil : syntaxHint)
        default:
            return ProfileError(file: file, line: nil, keyPath: "", message: "invalid YAML: \(error)")
        }
    }
}

/// Renaming of repeated mapping keys so Yams accepts the document and the reader can report them.
///
/// A renamed key gets a prefix of Unicode private-use characters, which YAML allows in plain
/// and quoted scalars and which no manifest key contains: U+E000, a serial number, U+E001.
enum DuplicateKeys {
    static let maximumRenames = 64
    private static let open: Unicode.Scalar = "\u{E000}"
    private static let close: Unicode.Scalar = "\u{E001}"

    /// The key as written in the manifest.
    static func originalName(_ key: String) -> String {
        guard key.unicodeScalars.first == open,
              let end = key.unicodeScalars.firstIndex(of: close)
        else { return key }
        return String(key.unicodeScalars[key.unicodeScalars.index(after: end)...])
    }

    /// `text` with the key scalar starting at `mark` renamed, or nil when `mark` does not point
    /// at a scalar spelled `name` (plain) or at a quote.
    static func renaming(_ name: String, at mark: Mark, in text: String, serial: Int) -> String? {
        var scalars = Array(text.unicodeScalars)
        // libyaml counts lines at \n, \r\n, \r, NEL, LS and PS, and columns in scalars.
        var index = 0, line = 1, column = 1
        while index < scalars.count, line != mark.line || column != mark.column {
            switch scalars[index] {
            case "\r":
                if index + 1 < scalars.count, scalars[index + 1] == "\n" { index += 1 }
                line += 1
                column = 1
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1
                column = 1
            default:
                column += 1
            }
            index += 1
        }
        guard index < scalars.count else { return nil }
        if scalars[index] == "\"" || scalars[index] == "'" {
            index += 1
        } else {
            let spelled = Array(name.unicodeScalars)
            guard scalars.count - index >= spelled.count,
                  Array(scalars[index..<index + spelled.count]) == spelled
            else { return nil }
        }
        let prefix = [open] + Array(String(serial).unicodeScalars) + [close]
        scalars.insert(contentsOf: prefix, at: index)
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars)
        return String(result)
    }
}
