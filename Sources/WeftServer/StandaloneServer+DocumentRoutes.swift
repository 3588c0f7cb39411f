import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Weft
import WeftCRDT
import WeftWire

// The document API for backends (`Docs/DocumentAPI.md`, `Docs/openapi.json`): documents as JSON,
// read, listed by their projection, written through the one merge, and a change feed.
extension StandaloneServer {
    /// The most documents or changes one page holds.
    public static let maximumPageSize = 1_000
    /// The deepest nesting of arrays and objects a written body may have.
    public static let maximumJSONDepth = 64

    static func addDocumentRoutes(
        to router: Router<BasicRequestContext>, service: SyncService, credentials: Credentials, limits: ServerLimits, metrics: ServerMetrics
    ) {
        let documents = "v1/:database/documents/:collection"
        router.get(RouterPath(documents)) { request, context -> Response in
            let database = try await authorize(request, context, credentials: credentials, needs: .read, scope: .documents, metrics: metrics)
            let collection = try collectionName(context)
            var after: DocumentID?
            var limit = 100
            var filters = [ProjectionFilter]()
            // Hummingbird decodes the values of query parameters, not their names.
            for (name, value) in request.uri.queryParameters {
                let name = String(name).removingPercentEncoding ?? String(name)
                let value = String(value)
                switch name {
                case "after": after = try documentID(value, what: "after")
                case "limit": limit = try number(value, "limit", in: 1...maximumPageSize)
                default:
                    guard name.hasPrefix("where[") && name.hasSuffix("]") && name.count > 7 else {
                        throw APIFailure.badRequest("unknown query parameter \(name.prefix(80).debugDescription)")
                    }
                    let path = name.dropFirst(6).dropLast().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                    filters.append(try filter(path, value))
                }
            }
            guard filters.count <= 16 else { throw APIFailure.badRequest("at most 16 where[...] conditions") }
            let page = try await answer { () async throws(DocumentAPIError) in
                try await service.documentPage(database: database, collection: collection, after: after, limit: limit, filters: filters)
            }
            let items = page.documents.map { entry -> JSONValue in
                let key = DocumentKey(collection: collection, id: entry.id)
                return .object([
                    "id": .string(entry.id.rawValue), "version": .string(SyncService.version(of: entry.record)),
                    "doc": service.projector.value(database: database, key: key, record: entry.record) ?? .null,
                ])
            }
            return json(.object(["documents": .array(items), "next": page.next.map { .string($0.rawValue) } ?? .null]))
        }
        let document = documents + "/:id"
        router.get(RouterPath(document)) { request, context -> Response in
            let database = try await authorize(request, context, credentials: credentials, needs: .read, scope: .documents, metrics: metrics)
            let key = try documentKey(context)
            let record = try await answer { () async throws(DocumentAPIError) in try await service.storedRecord(database: database, key: key) }
            guard let record, !record.isDeleted else { throw APIFailure(.notFound, "\(key) does not exist") }
            return documentResponse(service, database, key, record, status: .ok)
        }
        router.put(RouterPath(document)) { request, context -> Response in
            try await write(request, context, service: service, credentials: credentials, limits: limits, metrics: metrics, patch: false)
        }
        router.patch(RouterPath(document)) { request, context -> Response in
            try await write(request, context, service: service, credentials: credentials, limits: limits, metrics: metrics, patch: true)
        }
        router.delete(RouterPath(document)) { request, context -> Response in
            let database = try await authorize(request, context, credentials: credentials, needs: .write, scope: .documents, metrics: metrics)
            let key = try documentKey(context)
            let condition = try writeCondition(request)
            let written = try await answer { () async throws(DocumentAPIError) in
                try await service.write(database: database, key: key, .delete, condition: condition)
            }
            return documentResponse(service, database, key, written.record, status: .ok)
        }
        router.get("v1/:database/changes") { request, context -> Response in
            let database = try await authorize(request, context, credentials: credentials, needs: .read, scope: .documents, metrics: metrics)
            var cursor = (sequence: UInt64(0), tag: UInt64(0))
            var limit = 100
            var wait = 0
            for (name, value) in request.uri.queryParameters {
                switch String(name).removingPercentEncoding ?? String(name) {
                case "after": cursor = try feedCursor(String(value))
                case "limit": limit = try number(String(value), "limit", in: 1...maximumPageSize)
                // Cut to max_long_poll_ms by the pull, as a replica's wait is.
                case "wait": wait = try number(String(value), "wait", in: 0...3_600_000)
                default: throw APIFailure.badRequest("unknown query parameter \(name.prefix(80).debugDescription)")
                }
            }
            let (after, tag, waiting) = (cursor.sequence, cursor.tag, UInt32(wait))
            let page: PullResponse
            if waiting > 0 {
                metrics.longPolls.increment()
                defer { metrics.longPolls.decrement() }
                page = try await request.body.consumeWithCancellationOnInboundClose { _ in
                    try await withGracefulShutdownHandler {
                        try await answer { () async throws(DocumentAPIError) in
                            try await service.feed(database: database, after: after, tag: tag, limit: limit, wait: waiting)
                        }
                    } onGracefulShutdown: {
                        Task { await service.beginShutdown() }
                    }
                }
            } else {
                page = try await answer { () async throws(DocumentAPIError) in
                    try await service.feed(database: database, after: after, tag: tag, limit: limit, wait: 0)
                }
            }
            var changes = [JSONValue]()
            for change in page.changes {
                guard let collection = try? CollectionName(change.key.collection), let id = try? DocumentID(change.key.id) else { continue }
                let key = DocumentKey(collection: collection, id: id)
                changes.append(
                    .object([
                        "sequence": .int(Int64(clamping: change.sequence)), "collection": .string(collection.rawValue), "id": .string(id.rawValue),
                        "deleted": .bool(change.record.isDeleted), "version": .string(SyncService.version(of: change.record)),
                        "doc": service.projector.value(database: database, key: key, record: change.record) ?? .null,
                    ]))
            }
            var response = json(
                .object([
                    "changes": .array(changes), "cursor": .string("\(page.cursor).\(page.cursorTag)"), "hasMore": .bool(page.hasMore),
                ]))
            if waiting > 0 { response.headers[.connection] = "close" }
            return response
        }
    }

    /// A `PUT` (replace or create) or `PATCH` (merge patch) of one document.
    static func write(
        _ request: Request, _ context: BasicRequestContext, service: SyncService, credentials: Credentials, limits: ServerLimits,
        metrics: ServerMetrics, patch: Bool
    ) async throws -> Response {
        let database = try await authorize(request, context, credentials: credentials, needs: .write, scope: .documents, metrics: metrics)
        let key = try documentKey(context)
        let condition = try writeCondition(request)
        let object = try await jsonObject(request, limit: limits.maxRequestBytes, metrics: metrics)
        let operation: DocumentWrite = patch ? .mergePatch(object) : .replace(object)
        let written = try await answer { () async throws(DocumentAPIError) in
            try await service.write(database: database, key: key, operation, condition: condition)
        }
        return documentResponse(service, database, key, written.record, status: written.created ? .created : .ok)
    }

    // MARK: Requests

    /// A refusal with its status and sentence, answered as `{"error":{"message":…}}`.
    struct APIFailure: Error, HTTPResponseError {
        let status: HTTPResponse.Status
        let message: String
        init(_ status: HTTPResponse.Status, _ message: String) {
            self.status = status
            self.message = message
        }
        static func badRequest(_ message: String) -> APIFailure { APIFailure(.badRequest, message) }

        func response(from request: Request, context: some RequestContext) throws -> Response {
            var response = StandaloneServer.json(.object(["error": .object(["message": .string(message)])]))
            response.status = status
            return response
        }
    }

    /// Runs `body`, answering its ``DocumentAPIError`` with the status its kind says.
    static func answer<T>(_ body: () async throws(DocumentAPIError) -> T) async throws(APIFailure) -> T {
        do {
            return try await body()
        } catch {
            let status: HTTPResponse.Status =
                switch error.kind {
                case .badRequest: .badRequest
                case .notFound: .notFound
                case .preconditionFailed: .preconditionFailed
                case .tooLarge: .contentTooLarge
                case .gone: .gone
                case .unavailable: .serviceUnavailable
                }
            throw APIFailure(status, error.message)
        }
    }

    static func collectionName(_ context: BasicRequestContext) throws(APIFailure) -> CollectionName {
        do {
            return try CollectionName(context.parameters.get("collection") ?? "")
        } catch {
            throw .badRequest(error.message)
        }
    }

    static func documentID(_ text: String, what: String) throws(APIFailure) -> DocumentID {
        do {
            return try DocumentID(text)
        } catch {
            throw .badRequest("\(what): \(error.message)")
        }
    }

    static func documentKey(_ context: BasicRequestContext) throws(APIFailure) -> DocumentKey {
        let raw = context.parameters.get("id") ?? ""
        return DocumentKey(collection: try collectionName(context), id: try documentID(raw.removingPercentEncoding ?? raw, what: "id"))
    }

    static func number(_ text: String, _ name: String, in range: ClosedRange<Int>) throws(APIFailure) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw .badRequest("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(text.prefix(40).debugDescription)")
        }
        return value
    }

    /// A feed cursor: `0`, a sequence, or `sequence.tag` as a page's `cursor` gives it.
    static func feedCursor(_ text: String) throws(APIFailure) -> (sequence: UInt64, tag: UInt64) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let sequence = UInt64(parts[0]), sequence <= SyncService.maximumSequence,
            let tag = parts.count == 2 ? UInt64(parts[1]) : 0
        else {
            throw .badRequest("after must be a cursor a page of changes gave (digits, a dot, digits) or 0, not \(text.prefix(60).debugDescription)")
        }
        return (sequence, tag)
    }

    static func filter(_ path: [String], _ text: String) throws(APIFailure) -> ProjectionFilter {
        do {
            return try ProjectionFilter(path: path, value: filterValue(text))
        } catch {
            throw .badRequest(error.message)
        }
    }

    /// A `where[…]` value: JSON if it parses as a JSON scalar (`3`, `true`, `null`, `"3"`), the
    /// text itself otherwise.
    static func filterValue(_ text: String) -> JSONValue {
        if let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) {
            switch value {
            case .array, .object: break
            default: return value
            }
        }
        return .string(text)
    }

    /// The condition of `If-Match` (`"version"`, or `*`) or `If-None-Match: *`.
    static func writeCondition(_ request: Request) throws(APIFailure) -> WriteCondition {
        if let match = request.headers[.ifMatch] {
            let trimmed = match.trimmingCharacters(in: .whitespaces)
            if trimmed == "*" { return .exists }
            var tag = Substring(trimmed)
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            guard tag.count >= 2, tag.first == "\"", tag.last == "\"", !tag.dropFirst().dropLast().contains("\"") else {
                throw .badRequest("If-Match must be one version in quotes, as the ETag gave it, or *")
            }
            return .version(String(tag.dropFirst().dropLast()))
        }
        if let none = request.headers[.ifNoneMatch] {
            guard none.trimmingCharacters(in: .whitespaces) == "*" else { throw .badRequest("If-None-Match must be * (create only)") }
            return .absent
        }
        return .none
    }

    /// The request's body as a JSON object: at most `limit` bytes (413), JSON (400), an object
    /// (400), nested at most ``maximumJSONDepth`` deep (400).
    static func jsonObject(_ request: Request, limit: Int, metrics: ServerMetrics) async throws -> [String: JSONValue] {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            metrics.count(.rejected)
            throw APIFailure(.contentTooLarge, "the body of \(declared) bytes is over max_request_bytes = \(limit)")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limit)
        } catch {
            metrics.count(.rejected)
            throw APIFailure(.contentTooLarge, "the body is over max_request_bytes = \(limit)")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: body))
        } catch {
            metrics.count(.rejected)
            throw APIFailure.badRequest("the body is not JSON: \(String(describing: error).prefix(200))")
        }
        guard case .object(let object) = value else {
            metrics.count(.rejected)
            throw APIFailure.badRequest("the body must be a JSON object (the document's fields)")
        }
        guard depth(value) <= maximumJSONDepth else {
            metrics.count(.rejected)
            throw APIFailure.badRequest("the body nests arrays and objects over \(maximumJSONDepth) deep")
        }
        return object
    }

    static func depth(_ value: JSONValue) -> Int {
        switch value {
        case .array(let elements): return 1 + (elements.map(depth).max() ?? 0)
        case .object(let members): return 1 + (members.values.map(depth).max() ?? 0)
        default: return 0
        }
    }

    // MARK: Answers

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: value.text)))
    }

    /// A document as the API answers it, with its version as the `ETag`.
    static func documentResponse(_ service: SyncService, _ database: String, _ key: DocumentKey, _ record: DocumentRecord, status: HTTPResponse.Status)
        -> Response
    {
        let version = SyncService.version(of: record)
        var members: [String: JSONValue] = [
            "collection": .string(key.collection.rawValue), "id": .string(key.id.rawValue), "version": .string(version),
            "doc": service.projector.value(database: database, key: key, record: record) ?? .null,
        ]
        if record.isDeleted { members["deleted"] = .bool(true) }
        var response = json(.object(members))
        response.status = status
        response.headers[.eTag] = "\"\(version)\""
        return response
    }
}
