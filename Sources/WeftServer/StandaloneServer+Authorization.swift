import Hummingbird
import Weft

// Bearer tokens: which database a request names, and whether its token covers it.
extension StandaloneServer {
    /// The database the request names, if its bearer token covers it with the access needed.
    static func authorize(
        _ request: Request, _ context: some RequestContext, tokens: [ServerToken], needs: ServerToken.Access,
        scope: ServerToken.Scope = .sync, metrics: ServerMetrics
    ) throws -> String {
        guard let database = context.parameters.get("database"), DatabaseName.isValid(database) else {
            metrics.count(.rejected)
            throw HTTPError(.badRequest, message: "invalid database name")
        }
        // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
        guard let header = request.headers[.authorization], let presented = bearerToken(header) else {
            metrics.count(.unauthorized)
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "a bearer token is required")
        }
        // Compare against every token, in time that does not depend on where they differ.
        var match: ServerToken?
        for token in tokens where constantTimeEqual(Array(token.token.utf8), presented) { match = token }
        guard let token = match else {
            metrics.count(.unauthorized)
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "the token is not valid")
        }
        let allowed = token.access == .readWrite || token.access == needs
        guard token.databases.contains(database), allowed else {
            metrics.count(.forbidden)
            throw HTTPError(.forbidden, message: "the token does not grant \(needs.rawValue) access to \(database)")
        }
        guard token.scopes.contains(scope) else {
            metrics.count(.forbidden)
            throw HTTPError(.forbidden, message: "the token's scopes do not include \(scope.rawValue)")
        }
        return database
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
