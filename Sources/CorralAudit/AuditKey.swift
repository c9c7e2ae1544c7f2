import CorralSystem
import Crypto
import FoundationEssentials
import Synchronization

/// The Ed25519 key that signs run ends and the log's head.
///
/// Files, in the key folder (created 0700): `audit-ed25519.key`, the 32-byte private key as
/// 64 hex digits and a newline (0600), and `audit-ed25519.pub`, the public key in the same
/// form (0644). `corral audit verify --key` takes the `.pub` file.
public enum AuditKey {
    public static let privateKeyName = "audit-ed25519.key"
    public static let publicKeyName = "audit-ed25519.pub"
    /// Hex digits of a key identity: the first 16 bytes of SHA-256 over the raw public key.
    static let identityLength = 32

    public static func privateKeyPath(folder: String) -> String { folder + "/" + privateKeyName }
    public static func publicKeyPath(folder: String) -> String { folder + "/" + publicKeyName }

    /// The identity written into signed events (`key`): hex of the first 16 bytes of SHA-256
    /// over the 32-byte public key.
    public static func identity(of publicKey: [UInt8]) -> String {
        JSONWriter.hex(AuditFormat.sha256(publicKey).prefix(identityLength / 2))
    }

    /// Reads a public key file (64 hex digits, an optional newline).
    /// - Throws: `CorralError` when the file cannot be read or holds no Ed25519 public key.
    public static func readPublicKey(path: String) throws(CorralError) -> [UInt8] {
        let text: [UInt8]
        do { text = try HostEnvironment.readFile(path) } catch {
            throw CorralError(.setupFailed, operation: "read audit public key", path: path, errno: error)
        }
        guard let key = decodeKeyFile(text), (try? Curve25519.Signing.PublicKey(rawRepresentation: key)) != nil else {
            throw CorralError(.setupFailed, operation: "read audit public key", path: path,
                              message: "not an Ed25519 public key (64 hex digits)",
                              hint: "pass the `\(publicKeyName)` file from Corral's key folder")
        }
        return key
    }

    /// 64 hex digits and an optional newline, as 32 bytes.
    static func decodeKeyFile(_ text: [UInt8]) -> [UInt8]? {
        var digits = text[...]
        if digits.last == 0x0A { digits.removeLast() }
        guard digits.count == 64, let bytes = JSONWriter.bytes(fromHex: String(decoding: digits, as: UTF8.self)) else {
            return nil
        }
        return bytes
    }

    /// Whether `signature` (hex) is `publicKey`'s Ed25519 signature of `message`.
    static func isValid(signature: String, of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard let bytes = JSONWriter.bytes(fromHex: signature),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(bytes, for: message)
    }
}

/// The private half, loaded (or created on first use) by `AuditLog`.
struct AuditSigningKey: Sendable {
    let privateKey: Curve25519.Signing.PrivateKey
    let publicKey: [UInt8]
    let identity: String

    init(_ privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKey = privateKey
        self.publicKey = Array(privateKey.publicKey.rawRepresentation)
        self.identity = AuditKey.identity(of: publicKey)
    }

    /// Hex of the Ed25519 signature of `message`.
    func sign(_ message: [UInt8]) throws(CorralError) -> String {
        do {
            return JSONWriter.hex(try privateKey.signature(for: message))
        } catch {
            throw CorralError(.supervisionFailed, operation: "sign audit event", message: "\(error)")
        }
    }

    /// A key being loaded ahead of its use (`AuditLog.preloadKey`): the folder, and the
    /// thread that loads it.
    private static let preloading = Mutex<(folder: String, thread: HostEnvironment.JoinableThread)?>(nil)
    private static let preloaded = Mutex<(folder: String, key: AuditSigningKey)?>(nil)

    /// Starts loading the key in `folder` on a thread of its own (reading it and deriving its
    /// public half costs a quarter of a millisecond, which `corral run` spends while it reads
    /// the manifest). A key that does not exist yet is left to `loadOrCreate`, as is any error.
    static func preload(folder: String) {
        if let earlier = preloading.withLock({ slot in defer { slot = nil }; return slot }) {
            HostEnvironment.join(earlier.thread)  // a preload nobody took: its thread ends first
        }
        let thread = HostEnvironment.startJoinableThread {
            if let key = try? read(AuditKey.privateKeyPath(folder: folder)) {
                preloaded.withLock { $0 = (folder, key) }
            }
        }
        preloading.withLock { $0 = (folder, thread) }
    }

    /// The key `preload` loaded from `folder`, if it did.
    private static func takePreloaded(folder: String) -> AuditSigningKey? {
        guard let pending = preloading.withLock({ slot in defer { slot = nil }; return slot }) else { return nil }
        HostEnvironment.join(pending.thread)
        guard pending.folder == folder else { return nil }
        return preloaded.withLock { slot in defer { slot = nil }; return slot?.folder == folder ? slot?.key : nil }
    }

    /// The key in `folder`, created when there is none. Concurrent first uses agree on one
    /// key: each writes a complete candidate under a temporary name and `link`s it into
    /// place; `link` fails with EEXIST for all but the first, and those read the winner's.
    static func loadOrCreate(folder: String) throws(CorralError) -> AuditSigningKey {
        let path = AuditKey.privateKeyPath(folder: folder)
        do { try StateFiles.createFolders(folder, mode: 0o700) } catch {
            throw CorralError(.setupFailed, operation: "create audit key folder", path: folder, errno: error)
        }
        let key: AuditSigningKey
        var existing = takePreloaded(folder: folder)
        if existing == nil { existing = try read(path) }
        if let existing {
            key = existing
        } else {
            let candidate = Curve25519.Signing.PrivateKey()
            let text = Array((JSONWriter.hex(candidate.rawRepresentation) + "\n").utf8)
            do {
                try StateFiles.createOnce(path, text, mode: 0o600)
                key = AuditSigningKey(candidate)
            } catch .fileExists {
                guard let winner = try read(path) else {
                    throw CorralError(.setupFailed, operation: "read audit signing key", path: path,
                                      message: "it vanished while being created")
                }
                key = winner
            } catch {
                throw CorralError(.setupFailed, operation: "create audit signing key", path: path, errno: error)
            }
        }
        try key.publishPublicKey(folder: folder)
        return key
    }

    /// The private key at `path`; nil when there is none.
    private static func read(_ path: String) throws(CorralError) -> AuditSigningKey? {
        let text: [UInt8]
        do { text = try HostEnvironment.readFile(path) } catch .noSuchFileOrDirectory { return nil } catch {
            throw CorralError(.setupFailed, operation: "read audit signing key", path: path, errno: error)
        }
        guard let raw = AuditKey.decodeKeyFile(text),
              let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw CorralError(.setupFailed, operation: "read audit signing key", path: path,
                              message: "not an Ed25519 private key (64 hex digits)",
                              hint: "move the file aside; a new key is made on the next run (signatures then name the new key)")
        }
        return AuditSigningKey(privateKey)
    }

    /// Writes the `.pub` file when it is missing or does not match the private key (always
    /// derived from it, so a stale or edited `.pub` is put right).
    private func publishPublicKey(folder: String) throws(CorralError) {
        let path = AuditKey.publicKeyPath(folder: folder)
        let text = Array((JSONWriter.hex(publicKey) + "\n").utf8)
        if let existing = try? HostEnvironment.readFile(path), existing == text { return }
        do { try StateFiles.replace(path, text, mode: 0o644, durable: true) } catch {
            throw CorralError(.setupFailed, operation: "write audit public key", path: path, errno: error)
        }
    }
}
