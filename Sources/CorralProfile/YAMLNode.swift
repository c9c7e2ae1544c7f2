/// A composed YAML node: what the manifest reader walks. Built by `ManifestComposer` from
/// libyaml's events, with 1-based marks so every value knows its line.
enum Node {
    case scalar(Scalar)
    /// Pairs in document order; repeated keys are kept so the reader can report them.
    case mapping([(Node, Node)], Mark)
    case sequence([Node], Mark)
    /// Aliases are not expanded (no "billion laughs"); a manifest has no use for them.
    case alias(Mark)

    var mark: Mark? {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .mapping(_, let mark), .sequence(_, let mark), .alias(let mark): mark
        }
    }

    /// The resolved type of a scalar (YAML 1.2 core schema); `.string` for collections.
    var tag: ScalarType {
        if case .scalar(let scalar) = self { return scalar.type }
        return .string
    }

    var bool: Bool? {
        guard case .scalar(let scalar) = self, scalar.type == .bool else { return nil }
        return scalar.string.lowercased() == "true"
    }
}

struct Mark: Sendable, Hashable {
    /// 1-based, as editors count.
    var line: Int
    var column: Int
}

enum ScalarType: Sendable, Hashable {
    case null, bool, int, float, string
}

struct Scalar {
    enum Style { case plain, singleQuoted, doubleQuoted, literal, folded }

    var string: String
    var style: Style
    var mark: Mark
    var type: ScalarType

    init(string: String, style: Style, mark: Mark, explicitTag: String?) {
        self.string = string
        self.style = style
        self.mark = mark
        if let explicitTag {
            type = Self.type(ofTag: explicitTag)
        } else {
            type = style == .plain ? Self.resolve(plain: string) : .string
        }
    }

    private static func type(ofTag tag: String) -> ScalarType {
        switch tag {
        case "tag:yaml.org,2002:null": .null
        case "tag:yaml.org,2002:bool": .bool
        case "tag:yaml.org,2002:int": .int
        case "tag:yaml.org,2002:float": .float
        default: .string
        }
    }

    /// YAML 1.2 core schema resolution of a plain scalar.
    static func resolve(plain text: String) -> ScalarType {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "false", "False", "FALSE": return .bool
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN":
            return .float
        default: break
        }
        let bytes = Array(text.utf8)
        func all(_ slice: ArraySlice<UInt8>, _ allowed: (UInt8) -> Bool) -> Bool { !slice.isEmpty && slice.allSatisfy(allowed) }
        let isDigit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        if bytes.count > 2, bytes[0] == 0x30, bytes[1] == 0x6F { return all(bytes[2...]) { $0 >= 0x30 && $0 <= 0x37 } ? .int : .string }
        if bytes.count > 2, bytes[0] == 0x30, bytes[1] == 0x78 {
            return all(bytes[2...]) { isDigit($0) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) } ? .int : .string
        }
        var body = bytes[...]
        if let first = body.first, first == 0x2B || first == 0x2D { body = body.dropFirst() }
        if all(body, isDigit) { return .int }
        // [0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)? with at least one digit before the exponent
        var mantissa = body
        var exponent: ArraySlice<UInt8> = []
        if let e = body.firstIndex(where: { $0 == 0x65 || $0 == 0x45 }) {
            mantissa = body[..<e]
            exponent = body[(e + 1)...]
            if let sign = exponent.first, sign == 0x2B || sign == 0x2D { exponent = exponent.dropFirst() }
            if !all(exponent, isDigit) { return .string }
        }
        let parts = mantissa.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.contains(where: { !$0.isEmpty }),
              parts.allSatisfy({ $0.isEmpty || $0.allSatisfy(isDigit) }) else { return .string }
        return .float
    }
}
