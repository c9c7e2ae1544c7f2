import CYAML

/// Turns manifest text into a node tree with libyaml's event parser, converting YAML
/// errors into `ProfileError`s that name the line.
enum ManifestComposer {
    /// The node tree of the first document, or nil when the text holds no document.
    static func compose(_ contents: String, file: String) throws(ProfileError) -> Node? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw ProfileError(file: file, line: nil, keyPath: "", message: "cannot start the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(contents.utf8)
        return try bytes.withUnsafeBufferPointer { buffer throws(ProfileError) -> Node? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var builder = TreeBuilder()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { throw syntaxError(parser, text: contents, file: file) }
                defer { yaml_event_delete(&event) }
                if builder.consume(event) { return builder.root }
            }
        }
    }

    private static let syntaxHint = "check the indentation and quoting near this line"

    /// `invalid YAML: did not find expected key (while parsing a block mapping that starts on line 2)`
    static func syntaxError(_ parser: yaml_parser_t, text: String, file: String) -> ProfileError {
        let problem = parser.problem.map { String(cString: $0) } ?? "malformed document"
        if parser.error == YAML_READER_ERROR {
            let offset = Int(parser.problem_offset)
            let line = 1 + text.utf8.prefix(offset).count(where: { $0 == 0x0A })
            return ProfileError(file: file, line: line, keyPath: "", message: "invalid YAML: \(problem)", hint: syntaxHint)
        }
        let line = Int(parser.problem_mark.line) + 1
        var message = "invalid YAML: \(problem)"
        if let context = parser.context.map({ String(cString: $0) }) {
            let contextLine = Int(parser.context_mark.line) + 1
            message += contextLine == line ? " (\(context))" : " (\(context) that starts on line \(contextLine))"
        }
        return ProfileError(file: file, line: line, keyPath: "", message: message, hint: syntaxHint)
    }
}

/// Builds the tree from the event stream; stops at the end of the first document.
private struct TreeBuilder {
    enum Open {
        case mapping([(Node, Node)], pendingKey: Node?, Mark)
        case sequence([Node], Mark)
    }

    var stack: [Open] = []
    var root: Node?

    /// Returns true when the first document (or the stream) has ended.
    mutating func consume(_ event: yaml_event_t) -> Bool {
        let mark = Mark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        switch event.type {
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: data.value, count: data.length), as: UTF8.self)
            let style: Scalar.Style = switch data.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: .literal
            case YAML_FOLDED_SCALAR_STYLE: .folded
            default: .plain
            }
            let tag = data.tag.map { String(cString: $0) }
            add(.scalar(Scalar(string: text, style: style, mark: mark, explicitTag: tag == "!" ? nil : tag)))
        case YAML_ALIAS_EVENT:
            add(.alias(mark))
        case YAML_SEQUENCE_START_EVENT:
            stack.append(.sequence([], mark))
        case YAML_MAPPING_START_EVENT:
            stack.append(.mapping([], pendingKey: nil, mark))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            switch stack.removeLast() {
            case .sequence(let items, let start): add(.sequence(items, start))
            case .mapping(let pairs, _, let start): add(.mapping(pairs, start))
            }
        case YAML_DOCUMENT_END_EVENT, YAML_STREAM_END_EVENT:
            return true
        default:
            break
        }
        return false
    }

    private mutating func add(_ node: Node) {
        guard let top = stack.popLast() else {
            root = node
            return
        }
        switch top {
        case .sequence(var items, let mark):
            items.append(node)
            stack.append(.sequence(items, mark))
        case .mapping(var pairs, let key, let mark):
            if let key {
                pairs.append((key, node))
                stack.append(.mapping(pairs, pendingKey: nil, mark))
            } else {
                stack.append(.mapping(pairs, pendingKey: node, mark))
            }
        }
    }
}
