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
///
/// Opening a log reads and checks the key files at once, so a run with an unusable key is
/// refused before it starts; the Ed25519 key itself (a scalar multiplication, and swift-crypto's
/// first use in the process) is derived on first use, or by `prepare()`, which a run calls
/// while its sandbox builds its root. The public key file names the public half meanwhile.
final class AuditSigningKey: Sendable {
    private struct Derived {
        let privateKey: Curve25519.Signing.PrivateKey
        let publicKey: [UInt8]
        let identity: String
    }

    private let seed: [UInt8]
    /// The `.pub` file's path, checked against the derived public key (and rewritten when it
    /// does not match) once the key is derived.
    private let publicKeyPath: String
    private let derived = Mutex<Derived?>(nil)
    /// Set when a `.pub` file found wrong at derivation could not be rewritten.
    private let publishFailure = Mutex<CorralError?>(nil)

    private init(seed: [UInt8], publicKeyPath: String) {
        self.seed = seed
        self.publicKeyPath = publicKeyPath
    }

    var publicKey: [UInt8] { derive().publicKey }
    var identity: String { derive().identity }

    /// Derives the key now (it is derived on first use otherwise), which writes the `.pub`
    /// file when it is missing or wrong.
    func prepare() { _ = derive() }

    /// `prepare`, failing when the `.pub` file could not be written.
    func prepareAndPublish() throws(CorralError) {
        prepare()
        if let publishError { throw publishError }
    }

    /// Hex of the Ed25519 signature of `message`.
    func sign(_ message: [UInt8]) throws(CorralError) -> String {
        do {
            return JSONWriter.hex(try derive().privateKey.signature(for: message))
        } catch {
            throw CorralError(.supervisionFailed, operation: "sign audit event", message: "\(error)")
        }
    }

    private func derive() -> Derived {
        var derivedNow = false
        let key = derived.withLock { slot -> Derived in
            if let slot { return slot }
            // Any 32 bytes are an Ed25519 seed; `readSeed` checked the length.
            guard let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
                preconditionFailure("a 32-byte Ed25519 seed was refused")
            }
            let publicKey = Array(privateKey.publicKey.rawRepresentation)
            let made = Derived(privateKey: privateKey, publicKey: publicKey, identity: AuditKey.identity(of: publicKey))
            slot = made
            derivedNow = true
            return made
        }
        if derivedNow {
            do { try Self.publish(key.publicKey, at: publicKeyPath) } catch { publishFailure.withLock { $0 = error } }
        }
        return key
    }

    /// The key in `folder`, created when there is none. Concurrent first uses agree on one
    /// key: each writes a complete candidate under a temporary name and `link`s it into
    /// place; `link` fails with EEXIST for all but the first, and those read the winner's.
    static func loadOrCreate(folder: String) throws(CorralError) -> AuditSigningKey {
        let path = AuditKey.privateKeyPath(folder: folder)
        do { try StateFiles.createFolders(folder, mode: 0o700) } catch {
            throw CorralError(.setupFailed, operation: "create audit key folder", path: folder, errno: error)
        }
        let publicPath = AuditKey.publicKeyPath(folder: folder)
        if let seed = try readSeed(path) {
            let key = AuditSigningKey(seed: seed, publicKeyPath: publicPath)
            // No usable public key file yet: derive and write it now, while a failure can
            // still refuse the run.
            if (try? HostEnvironment.readFile(publicPath)).flatMap(AuditKey.decodeKeyFile) == nil {
                try key.prepareAndPublish()
            }
            return key
        }
        let candidate = Curve25519.Signing.PrivateKey()
        let text = Array((JSONWriter.hex(candidate.rawRepresentation) + "\n").utf8)
        let key: AuditSigningKey
        do {
            try StateFiles.createOnce(path, text, mode: 0o600)
            key = AuditSigningKey(seed: Array(candidate.rawRepresentation), publicKeyPath: publicPath)
        } catch .fileExists {
            guard let winner = try readSeed(path) else {
                throw CorralError(.setupFailed, operation: "read audit signing key", path: path,
                                  message: "it vanished while being created")
            }
            key = AuditSigningKey(seed: winner, publicKeyPath: publicPath)
        } catch {
            throw CorralError(.setupFailed, operation: "create audit signing key", path: path, errno: error)
        }
        try key.prepareAndPublish()
        return key
    }

    /// The 32-byte private key at `path`; nil when there is none.
    private static func readSeed(_ path: String) throws(CorralError) -> [UInt8]? {
        let text: [UInt8]
        do { text = try HostEnvironment.readFile(path) } catch .noSuchFileOrDirectory { return nil } catch {
            throw CorralError(.setupFailed, operation: "read audit signing key", path: path, errno: error)
        }
        guard let raw = AuditKey.decodeKeyFile(text), raw.count == 32 else {
            throw CorralError(.setupFailed, operation: "read audit signing key", path: path,
                              message: "not an Ed25519 private key (64 hex digits)",
                              hint: "move the file aside; a new key is made on the next run (signatures then name the new key)")
        }
        return raw
    }

    /// Writes the `.pub` file when it is missing or does not match the private key (always
    /// derived from it, so a stale or edited `.pub` is put right).
    private static func publish(_ publicKey: [UInt8], at path: String) throws(CorralError) {
        let text = Array((JSONWriter.hex(publicKey) + "\n").utf8)
        if let existing = try? HostEnvironment.readFile(path), existing == text { return }
        do { try StateFiles.replace(path, text, mode: 0o644, durable: true) } catch {
            throw CorralError(.setupFailed, operation: "write audit public key", path: path, errno: error)
        }
    }

    /// A `.pub` file that was found wrong when the key was derived and could not be rewritten.
    var publishError: CorralError? { publishFailure.withLock { $0 } }
}
