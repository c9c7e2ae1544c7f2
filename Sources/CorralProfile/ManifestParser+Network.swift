// MARK: - network

extension ManifestParser {
    static let networkKeys = ["mode", "allow", "forward", "ports", "proxy"]
    static let proxyKeys = ["http_port", "socks_port", "idle_timeout", "max_duration", "max_connections"]

    func network(_ field: Field) throws(ProfileError) -> NetworkSpec {
        var spec = NetworkSpec()
        var placed: [MappingEntry] = []
        for entry in try reader.mapping(field) {
            switch entry.key {
            case "mode":
                spec.mode = try networkMode(entry.value)
            case "allow":
                spec.allow = try allowList(entry.value)
            case "forward":
                spec.forward = try forwards(entry.value)
            case "ports":
                spec.ports = try loopbackPorts(entry.value)
            case "proxy":
                spec.proxy = try proxySettings(entry.value)
            case "dns":
                throw reader.error(line: entry.keyLine, keyPath: entry.value.keyPath,
                                   "network.dns is not supported yet by this Corral",
                                   hint: "remove it; the proxy resolves names itself and the sandbox needs no resolver")
            default:
                throw reader.unknownKey(entry, known: Self.networkKeys)
            }
            placed.append(entry)
        }
        try checkNetwork(spec, placed: placed)
        return spec
    }

    private func networkMode(_ field: Field) throws(ProfileError) -> NetworkMode {
        let text = try reader.string(field, expected: "a network mode")
        guard let mode = NetworkMode(rawValue: text) else {
            let near = NameSuggestion.nearest(to: text, among: NetworkMode.allCases.map(\.rawValue))
            throw reader.error(field, "unknown network mode `\(text)`",
                               hint: near.map { "did you mean `\($0)`?" } ?? "use none, loopback, allowlist or host")
        }
        return mode
    }

    private func allowList(_ field: Field) throws(ProfileError) -> [EgressEntry] {
        let items = try reader.list(field, expected: "a list of host:port entries") { text in
            "write a list: [\(text)]"
        }
        var entries: [EgressEntry] = []
        for item in items {
            let text = try reader.string(item, expected: "a host:port entry such as api.example.com:443")
            switch EgressSyntax.entry(text) {
            case .success(var entry):
                entry.location = ManifestLocation(file: reader.file, line: item.line, keyPath: item.keyPath)
                entries.append(entry)
            case .failure(let problem):
                throw reader.error(item, problem.message, hint: problem.hint)
            }
        }
        return entries
    }

    private func forwards(_ field: Field) throws(ProfileError) -> [PortForward] {
        let items = try reader.list(field, expected: "a list of forwards") { _ in
            "write a list: - { listen: 5432, to: db.internal:5432 }"
        }
        var result: [PortForward] = []
        for item in items {
            var listen: UInt16?
            var target: (host: HostPattern, port: UInt16)?
            for entry in try reader.mapping(item, expected: "a forward such as { listen: 5432, to: db.internal:5432 }") {
                switch entry.key {
                case "listen":
                    listen = try port(entry.value)
                case "to":
                    target = try forwardTarget(entry.value)
                default:
                    throw reader.unknownKey(entry, known: ["listen", "to"])
                }
            }
            guard let listen else { throw reader.error(item, "the forward has no `listen` port", hint: "add listen: PORT") }
            guard let target else { throw reader.error(item, "the forward has no `to`", hint: "add to: host:port") }
            result.append(PortForward(listen: listen, host: target.host, port: target.port,
                                      location: ManifestLocation(file: reader.file, line: item.line, keyPath: item.keyPath)))
        }
        return result
    }

    private func forwardTarget(_ field: Field) throws(ProfileError) -> (host: HostPattern, port: UInt16) {
        let text = try reader.string(field, expected: "host:port")
        guard let (hostText, portText) = EgressSyntax.splitHostPort(text) else {
            throw reader.error(field, "`\(text)` names no port", hint: "write host:port, such as db.internal:5432")
        }
        guard let port = EgressSyntax.port(portText) else {
            throw reader.error(field, "`\(portText)` is not a port", hint: "a forward goes to one port, 1 to 65535")
        }
        switch EgressSyntax.hostPattern(hostText) {
        case .success(let host):
            switch host {
            case .name, .address: return (host, port)
            case .subdomains, .network:
                throw reader.error(field, "a forward goes to one host, not `\(hostText)`",
                                   hint: "name the host or its address")
            }
        case .failure(let problem):
            throw reader.error(field, problem.message, hint: problem.hint)
        }
    }

    private func loopbackPorts(_ field: Field) throws(ProfileError) -> [UInt16] {
        let items = try reader.list(field, expected: "a list of ports") { text in "write a list: [\(text)]" }
        var ports: [UInt16] = []
        for item in items {
            let value = try port(item)
            if ports.contains(value) {
                throw reader.error(item, "port \(value) is listed twice", hint: "list each port once")
            }
            ports.append(value)
        }
        return ports
    }

    private func port(_ field: Field) throws(ProfileError) -> UInt16 {
        let text = try reader.string(field, expected: "a port number")
        guard let value = EgressSyntax.port(text) else {
            throw reader.error(field, "`\(text)` is not a port", hint: "write a number from 1 to 65535")
        }
        return value
    }

    private func proxySettings(_ field: Field) throws(ProfileError) -> ProxySettings {
        var settings = ProxySettings()
        for entry in try reader.mapping(field) {
            switch entry.key {
            case "http_port": settings.httpPort = try port(entry.value)
            case "socks_port": settings.socksPort = try port(entry.value)
            case "idle_timeout": settings.idleTimeout = try duration(entry.value, what: "network.proxy.idle_timeout")
            case "max_duration": settings.maxDuration = try duration(entry.value, what: "network.proxy.max_duration")
            case "max_connections":
                let text = try reader.string(entry.value, expected: "a whole number")
                guard let value = Int(text), (1...65536).contains(value) else {
                    throw reader.error(entry.value, "max_connections must be a whole number from 1 to 65536, not \"\(text)\"")
                }
                settings.maxConnections = value
            default:
                throw reader.unknownKey(entry, known: Self.proxyKeys)
            }
        }
        if settings.httpPort == settings.socksPort {
            throw reader.error(field, "the HTTP and SOCKS proxy ports are both \(settings.httpPort)",
                               hint: "give them different ports")
        }
        return settings
    }

    /// Keys that only mean something in one mode are refused in the others, and no two
    /// listeners share a port.
    private func checkNetwork(_ spec: NetworkSpec, placed: [MappingEntry]) throws(ProfileError) {
        let owners: [(key: String, mode: NetworkMode)] = [("allow", .allowlist), ("forward", .allowlist),
                                                          ("proxy", .allowlist), ("ports", .loopback)]
        for (key, mode) in owners where spec.mode != mode {
            guard let entry = placed.first(where: { $0.key == key }) else { continue }
            throw reader.error(line: entry.keyLine, keyPath: entry.value.keyPath,
                               "network.\(key) applies to mode \(mode.rawValue), but the mode is \(spec.mode.rawValue)",
                               hint: "set network.mode: \(mode.rawValue), or remove network.\(key)")
        }
        guard spec.mode == .allowlist else { return }
        // Arrays, not dictionaries: this runs on every launch, where generic metadata costs.
        var taken: [(port: UInt16, owner: String)] = [(spec.proxy.httpPort, "proxy.http_port"),
                                                       (spec.proxy.socksPort, "proxy.socks_port")]
        for (index, forward) in spec.forward.enumerated() {
            if let owner = taken.first(where: { $0.port == forward.listen })?.owner {
                throw reader.error(line: forward.location?.line, keyPath: "network.forward[\(index)].listen",
                                   "port \(forward.listen) is already network.\(owner)",
                                   hint: "listen on another port")
            }
            taken.append((forward.listen, "forward[\(index)].listen"))
        }
    }
}
