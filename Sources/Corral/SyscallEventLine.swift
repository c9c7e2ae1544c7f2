import CorralProfile
import CorralSystem

// MARK: - The JSON line of a watched call's event, written by hand

extension RunEvent {
    /// The compact, key-sorted JSON line of a `syscall` event, as `jsonLine()` gives it but
    /// written directly: a busy program makes thousands of watched calls, each one line in the
    /// event stream and one entry in the audit log, and JSONEncoder's generic path costs
    /// several microseconds a line, on the CPU the sandbox shares. Nil for any other event
    /// (those take `jsonLine()`); a test decodes both and compares.
    func syscallLine() -> [UInt8]? {
        guard type == .syscall, command == nil, rule == nil, action == nil, limit == nil, reason == nil,
              signal == nil, detail == nil, termination == nil, exitStatus == nil, verdict == nil,
              network == nil, transaction == nil else { return nil }
        var object = JSONObjectWriter()
        if let call { object.object("call", call.jsonObject()) }
        object.string("goal", goal)
        object.integer("pid", pid)
        object.integer("seq", seq)
        object.string("syscall", syscall)
        object.string("time", time)
        object.string("type", type.rawValue)
        return object.finished() + [0x0A]
    }
}

extension WatchedCall {
    /// The keys in sorted order, as `JSONEncoder` with `.sortedKeys` writes them.
    fileprivate func jsonObject() -> JSONObjectWriter {
        var object = JSONObjectWriter()
        if let address { object.object("address", address.jsonObject()) }
        if let argv { object.strings("argv", argv) }
        object.object("decision", decision.jsonObject())
        object.integer("dirfd", dirfd)
        object.string("family", family)
        object.integer("fd", fd)
        object.string("flags", flags)
        object.integer("mode", mode)
        object.string("newPath", newPath)
        object.integer("number", number)
        object.string("path", path)
        object.integer("pid", pid)
        object.integer("signal", signal)
        object.string("syscall", syscall)
        object.integer("target", target)
        object.double("time", time)
        if let truncated { object.boolean("truncated", truncated) }
        object.string("unreadable", unreadable)
        return object
    }
}

extension WatchDecision {
    fileprivate func jsonObject() -> JSONObjectWriter {
        var object = JSONObjectWriter()
        switch self {
        case .continue:
            object.string("kind", "continue")
        case .deny(let errno):
            object.string("errno", ErrnoNames.name(of: errno) ?? String(errno))
            object.string("kind", "deny")
        }
        return object
    }
}

extension SocketAddress {
    fileprivate func jsonObject() -> JSONObjectWriter {
        var object = JSONObjectWriter()
        object.string("abstractName", abstractName)
        object.string("address", address)
        object.string("family", family)
        object.string("path", path)
        object.integer("port", port)
        object.integer("scopeID", scopeID)
        return object
    }
}
