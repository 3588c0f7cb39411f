import Hummingbird
import Weft

/// The bearer tokens a server accepts: the static tokens of `[[server.tokens]]`, and JSON Web
/// Tokens when `[server.jwt]` is configured.
struct Credentials: Sendable {
    let tokens: [ServerToken]
    /// The JWT authenticator, loaded once (its keys are read when the server is built).
    let jwt: Task<JWTAuthenticator, any Error>?

    init(tokens: [ServerToken], jwt: JWTConfiguration?, authenticator: JWTAuthenticator?) {
        self.tokens = tokens
        if let authenticator {
            self.jwt = Task { authenticator }
        } else if let jwt {
            self.jwt = Task { try await JWTAuthenticator.make(jwt) }
        } else {
            self.jwt = nil
        }
    }
}

// Bearer tokens: which database a request names, and whether its token covers it.
extension StandaloneServer {
    /// The database the request names, if its bearer token (a static token or a JWT) covers it
    /// with the access and scope needed.
    static func authorize(
        _ request: Request, _ context: some RequestContext, credentials: Credentials,
        needs: ServerToken.Access,
        scope: ServerToken.Scope = .sync, metrics: ServerMetrics
    ) async throws -> String {
        try await authorizePrincipal(
            request, context, credentials: credentials, needs: needs, scope: scope, metrics: metrics
        ).database
    }

    /// ``authorize(_:_:credentials:needs:scope:metrics:)``, answering the principal too.
    static func authorizePrincipal(
        _ request: Request, _ context: some RequestContext, credentials: Credentials,
        needs: ServerToken.Access,
        scope: ServerToken.Scope = .sync, metrics: ServerMetrics
    ) async throws -> (database: String, principal: Principal) {
        guard let database = context.parameters.get("database"), DatabaseName.isValid(database) else {
            metrics.count(.rejected)
            throw HTTPError(.badRequest, message: "invalid database name")
        }
        // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
        guard let header = request.headers[.authorization], let presented = bearerToken(header) else {
            metrics.count(.unauthorized)
            throw HTTPError(
                .unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "a bearer token is required")
        }
        let principal = try await self.principal(presented, credentials: credentials, metrics: metrics)
        let allowed = principal.access == .readWrite || principal.access == needs
        guard principal.databases.contains(database), allowed else {
            metrics.count(.forbidden)
            throw HTTPError(
                .forbidden, message: "the token does not grant \(needs.rawValue) access to \(database)")
        }
        guard principal.scopes.contains(scope) else {
            metrics.count(.forbidden)
            throw HTTPError(.forbidden, message: "the token's scopes do not include \(scope.rawValue)")
        }
        // The document API reads and writes any document: it is for backends, whose tokens may
        // read and write every channel.
        guard scope != .documents || (principal.readChannels == .all && principal.writeChannels == .all)
        else {
            metrics.count(.forbidden)
            throw HTTPError(
                .forbidden,
                message: "the document API needs a token that may read and write every channel (*)")
        }
        return (database, principal)
    }

    /// Who `presented` speaks for: a static token (compared with every one, in time that does
    /// not depend on where they differ), else a JSON Web Token.
    static func principal(_ presented: [UInt8], credentials: Credentials, metrics: ServerMetrics) async throws
        -> Principal
    {
        var match: ServerToken?
        for token in credentials.tokens where constantTimeEqual(Array(token.token.utf8), presented) {
            match = token
        }
        if let token = match {
            let grants = token.channels.grants(claims: [:])
            return Principal(
                user: nil, databases: Set(token.databases), access: token.access, scopes: token.scopes,
                readChannels: grants.read,
                writeChannels: grants.write)
        }
        if let jwt = credentials.jwt, JWTAuthenticator.looksLikeJWT(presented) {
            let authenticator: JWTAuthenticator
            do {
                authenticator = try await jwt.value
            } catch {
                // What failed names the server's files: it stays out of the answer.
                metrics.count(.unauthorized)
                throw HTTPError(
                    .serviceUnavailable,
                    message: "the server could not load its JWT keys; its operator must fix [server.jwt]")
            }
            do {
                return try await authenticator.principal(String(decoding: presented, as: UTF8.self))
            } catch {
                metrics.count(.unauthorized)
                throw HTTPError(
                    .unauthorized, headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#],
                    message: error.reason)
            }
        }
        metrics.count(.unauthorized)
        throw HTTPError(
            .unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "the token is not valid")
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    /// The token of an `Authorization` header value with the `Bearer` scheme, in any case, or
    /// `nil` for another scheme or an empty token.
    static func bearerToken(_ header: String) -> [UInt8]? {
        let bytes = Array(header.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count, bytes[scheme.count] == UInt8(ascii: " ") else { return nil }
        for (index, letter) in scheme.enumerated() where bytes[index] | 0x20 != letter { return nil }
        let token = bytes[(scheme.count + 1)...].drop { $0 == UInt8(ascii: " ") }
        return token.isEmpty ? nil : Array(token)
    }
}
