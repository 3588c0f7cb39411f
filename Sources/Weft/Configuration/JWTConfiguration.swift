/// `[server.jwt]`: the server accepts JSON Web Tokens issued by the app's own auth provider, as
/// well as the static tokens of `[[server.tokens]]` (services and development).
///
/// A token is accepted when its signature verifies with one of the keys (chosen by the token's
/// `kid` where it names one), it has not expired (`exp`, required) and is already valid (`nbf`),
/// both within ``leewayMilliseconds``, and its `iss` and `aud` are the configured ones (when
/// configured). Its `sub` is the user id. The databases it opens are ``databases``, or, if
/// ``databasesClaim`` is set, those its claim lists (among ``databases`` when both are set);
/// its access and scopes are ``access`` and ``scopes``.
public struct JWTConfiguration: Hashable, Sendable {
    /// A key that verifies tokens.
    public struct Key: Hashable, Sendable {
        /// The signing algorithm.
        public enum Algorithm: String, Hashable, Sendable, CaseIterable {
            case hs256 = "HS256"
            case hs384 = "HS384"
            case hs512 = "HS512"
            case rs256 = "RS256"
            case rs384 = "RS384"
            case rs512 = "RS512"
            case es256 = "ES256"
            case es384 = "ES384"
            case es512 = "ES512"
        }
        /// The key's id (`kid`), which tokens name in their header; `nil`: the key tried for
        /// tokens that name none.
        public var kid: String?
        /// The algorithm.
        public var algorithm: Algorithm
        /// For HMAC: the environment variable holding the shared secret (never the file).
        public var secretVariable: String?
        /// For RSA and ECDSA: a PEM file holding the public key.
        public var publicKeyFile: String?

        /// Creates a key description.
        public init(
            kid: String?, algorithm: Algorithm, secretVariable: String? = nil, publicKeyFile: String? = nil
        ) {
            self.kid = kid
            self.algorithm = algorithm
            self.secretVariable = secretVariable
            self.publicKeyFile = publicKeyFile
        }
    }

    /// `keys`: the keys, several for rotation.
    public var keys: [Key] = []
    /// `jwks_file`: a JSON Web Key Set file of public keys (RSA and EC), each with its `kid`.
    public var jwksFile: String?
    /// `issuer`: the required `iss`, if set.
    public var issuer: String?
    /// `audience`: the accepted `aud` values (a token's `aud` must hold one), if set.
    public var audiences: [String] = []
    /// `databases`: the databases a token may open (all of them without ``databasesClaim``).
    public var databases: [String] = []
    /// `databases_claim`: a claim (an array of names, or one name) listing the databases a token
    /// opens.
    public var databasesClaim: String?
    /// `access`: what tokens may do.
    public var access: ServerToken.Access = .readWrite
    /// `scopes`: the routes tokens open.
    public var scopes: Set<ServerToken.Scope> = [.sync]
    /// `read_channels` and `write_channels`: templates over a token's claims giving the channels
    /// it may read and write (by default every channel).
    public var channels: ChannelGrantTemplates = .everything
    /// `leeway_ms`: how far `exp` and `nbf` may be off the server's clock.
    public var leewayMilliseconds: Int = 60_000

    /// No keys.
    public init() {}
}
