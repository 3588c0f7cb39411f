import Foundation
import JWTKit
import Weft
import WeftCRDT

/// Who a request speaks for, once its bearer token is accepted: a static token of
/// `[[server.tokens]]`, or a JSON Web Token (`[server.jwt]`).
public struct Principal: Hashable, Sendable {
    /// The user id (a JWT's `sub`); `nil` for a static token.
    public let user: String?
    /// The databases it opens.
    public let databases: Set<String>
    /// What it may do there.
    public let access: ServerToken.Access
    /// The routes it opens.
    public let scopes: Set<ServerToken.Scope>
    /// The channels it may read: a replica pulls only documents in them.
    public let readChannels: ChannelGrant
    /// The channels it may write: a pushed change of a document outside them is refused.
    public let writeChannels: ChannelGrant

    public init(
        user: String?, databases: Set<String>, access: ServerToken.Access, scopes: Set<ServerToken.Scope>,
        readChannels: ChannelGrant = .all,
        writeChannels: ChannelGrant = .all
    ) {
        self.user = user
        self.databases = databases
        self.access = access
        self.scopes = scopes
        self.readChannels = readChannels
        self.writeChannels = writeChannels
    }
}

/// Why a JSON Web Token was refused. The reasons say what to fix without telling a caller
/// anything about the keys.
public struct JWTRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public let reason: String
    public var description: String { reason }
}

/// Verifies JSON Web Tokens issued by the app's own auth provider (`[server.jwt]`,
/// `JWTConfiguration`): HMAC shared secrets and RSA or ECDSA public keys, several for rotation
/// (chosen by the token's `kid`), and a JWKS file.
///
/// A token is accepted when its signature verifies, `exp` is present and not past, `nbf` (if any)
/// is not ahead (both within the leeway), `iss` and `aud` are the configured ones (when
/// configured), and `sub` is a string.
public struct JWTAuthenticator: Sendable {
    let keys: JWTKeyCollection
    let configuration: JWTConfiguration
    let timeSource: any PhysicalTimeSource

    /// Loads the keys `configuration` names: secrets from the environment, PEM and JWKS files.
    /// - Throws: `ConfigurationError` naming the key that cannot be loaded.
    public static func make(
        _ configuration: JWTConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        timeSource: any PhysicalTimeSource = SystemTimeSource()
    ) async throws(ConfigurationError) -> JWTAuthenticator {
        let keys = JWTKeyCollection()
        for (index, key) in configuration.keys.enumerated() {
            let path = "server.jwt.keys[\(index)]"
            let kid = key.kid.map { JWKIdentifier(string: $0) }
            do {
                switch key.algorithm {
                case .hs256, .hs384, .hs512:
                    guard let variable = key.secretVariable, let secret = environment[variable],
                        secret.utf8.count >= 32
                    else {
                        throw ConfigurationError(
                            key: "\(path).secret_env",
                            expected: "an environment variable holding a secret of at least 32 bytes",
                            found: key.secretVariable.map { "\($0), unset or shorter" } ?? "none")
                    }
                    await keys.add(
                        hmac: HMACKey(from: secret), digestAlgorithm: digest(key.algorithm), kid: kid)
                case .rs256, .rs384, .rs512:
                    let pem = try read(key.publicKeyFile, "\(path).public_key_file")
                    await keys.add(
                        rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: digest(key.algorithm),
                        kid: kid)
                case .es256:
                    await keys.add(
                        ecdsa: try ES256PublicKey(
                            pem: try read(key.publicKeyFile, "\(path).public_key_file")), kid: kid)
                case .es384:
                    await keys.add(
                        ecdsa: try ES384PublicKey(
                            pem: try read(key.publicKeyFile, "\(path).public_key_file")), kid: kid)
                case .es512:
                    await keys.add(
                        ecdsa: try ES512PublicKey(
                            pem: try read(key.publicKeyFile, "\(path).public_key_file")), kid: kid)
                }
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw ConfigurationError(
                    key: "\(path).public_key_file",
                    expected: "a PEM public key for \(key.algorithm.rawValue)", found: "\(error)")
            }
        }
        if let file = configuration.jwksFile {
            do {
                _ = try await keys.add(jwksJSON: try read(file, "server.jwt.jwks_file"))
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw ConfigurationError(
                    key: "server.jwt.jwks_file", expected: "a JSON Web Key Set", found: "\(error)")
            }
        }
        return JWTAuthenticator(keys: keys, configuration: configuration, timeSource: timeSource)
    }

    static func digest(_ algorithm: JWTConfiguration.Key.Algorithm) -> DigestAlgorithm {
        switch algorithm {
        case .hs384, .rs384, .es384: .sha384
        case .hs512, .rs512, .es512: .sha512
        default: .sha256
        }
    }

    static func read(_ file: String?, _ key: String) throws(ConfigurationError) -> String {
        guard let file, let data = FileManager.default.contents(atPath: file),
            let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigurationError(key: key, expected: "a readable file", found: file ?? "none")
        }
        return text
    }

    /// Whether `token` looks like a JSON Web Token (three base64url parts), so a static token is
    /// never taken for one.
    static func looksLikeJWT(_ token: [UInt8]) -> Bool {
        token.count <= 16_384 && token.filter { $0 == UInt8(ascii: ".") }.count == 2
            && token.allSatisfy { byte in
                byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                    || (0x30...0x39).contains(byte)
                    || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            }
    }

    /// The principal `token` speaks for.
    /// - Throws: ``JWTRefusal``.
    public func principal(_ token: String) async throws(JWTRefusal) -> Principal {
        let claims: [String: JSONValue]
        do {
            claims = try await keys.verify(token, as: Claims.self).claims
        } catch {
            throw JWTRefusal(
                reason:
                    "the token's signature does not verify with a key this server accepts, or the token is malformed"
            )
        }
        let now = Double(timeSource.currentMilliseconds())
        let leeway = Double(configuration.leewayMilliseconds)
        guard let expiry = Self.seconds(claims["exp"]) else {
            throw JWTRefusal(reason: "the token has no expiry (exp)")
        }
        guard expiry * 1_000 + leeway >= now else { throw JWTRefusal(reason: "the token has expired") }
        if let start = claims["nbf"] {
            guard let notBefore = Self.seconds(start) else {
                throw JWTRefusal(reason: "the token's nbf is not a number")
            }
            guard notBefore * 1_000 - leeway <= now else {
                throw JWTRefusal(reason: "the token is not valid yet (nbf)")
            }
        }
        if let issuer = configuration.issuer, claims["iss"] != .string(issuer) {
            throw JWTRefusal(reason: "the token's issuer (iss) is not the one this server accepts")
        }
        if !configuration.audiences.isEmpty {
            let audiences: [String]
            switch claims["aud"] {
            case .string(let one)?: audiences = [one]
            case .array(let many)?:
                audiences = many.compactMap { if case .string(let name) = $0 { name } else { nil } }
            default: audiences = []
            }
            guard audiences.contains(where: configuration.audiences.contains) else {
                throw JWTRefusal(reason: "the token's audience (aud) is not this server's")
            }
        }
        guard case .string(let user)? = claims["sub"], !user.isEmpty else {
            throw JWTRefusal(reason: "the token has no subject (sub)")
        }
        var databases = Set(configuration.databases)
        if let name = configuration.databasesClaim {
            var named = Set<String>()
            switch claims[name] {
            case .string(let one)?: named = [one]
            case .array(let many)?: for case .string(let database) in many { named.insert(database) }
            default: break
            }
            databases = configuration.databases.isEmpty ? named : databases.intersection(named)
        }
        let grants = configuration.channels.grants(claims: claims)
        return Principal(
            user: user, databases: databases, access: configuration.access, scopes: configuration.scopes,
            readChannels: grants.read,
            writeChannels: grants.write)
    }

    /// A NumericDate (seconds since 1970, possibly fractional).
    static func seconds(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let seconds)?: Double(seconds)
        case .double(let seconds)? where seconds.isFinite: seconds
        default: nil
        }
    }

    /// Every claim of a token, checked by ``principal(_:)`` rather than by the payload type.
    struct Claims: JWTPayload {
        let claims: [String: JSONValue]
        init(from decoder: any Decoder) throws {
            claims = try decoder.singleValueContainer().decode([String: JSONValue].self)
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(claims)
        }
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }
}
