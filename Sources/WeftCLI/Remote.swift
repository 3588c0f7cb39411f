import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Weft
import WeftCRDT

/// `weft remote …`: the document API of a running server, for operators.
struct Remote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read and write the documents of a running server through its document API (a token with the documents scope).",
        subcommands: [RemoteGet.self, RemotePut.self, RemoteDelete.self, RemoteList.self, RemoteChanges.self])
}

/// Where the server is and how to speak to it.
struct RemoteOptions: ParsableArguments {
    @Option(name: .long, help: "The server's base URL, such as http://127.0.0.1:20000.")
    var server: String

    @Option(name: .long, help: "The database.")
    var database: String

    @Option(name: .long, help: "The environment variable holding the bearer token (a token with the documents scope).")
    var tokenVariable = "WEFT_TOKEN"

    /// The URL of `path` under `/v1/DATABASE`, with `query`.
    func url(_ path: [String], query: [(String, String)] = []) throws -> String {
        guard DatabaseName.isValid(database) else { throw fail("\(database.debugDescription) is not a database name") }
        let trimmed = server.hasSuffix("/") ? String(server.dropLast()) : server
        guard trimmed.hasPrefix("http://") || trimmed.hasPrefix("https://") else { throw fail("--server must be an http:// or https:// URL") }
        // RFC 3986's unreserved characters, ASCII only: everything else is percent-encoded.
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        let encode = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text }
        var url = trimmed + "/v1/" + database + "/" + path.map(encode).joined(separator: "/")
        if !query.isEmpty { url += "?" + query.map { encode($0.0) + "=" + encode($0.1) }.joined(separator: "&") }
        return url
    }

    /// Sends a request; answers the body of a 2xx answer, and fails with the server's sentence
    /// otherwise.
    func call(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = []) async throws -> JSONValue {
        guard let token = ProcessInfo.processInfo.environment[tokenVariable], !token.isEmpty else {
            throw fail("set \(tokenVariable) to a token with the documents scope")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(90))
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw fail("\(url): \(error)")
        }
        let value = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes))
        guard (200..<300).contains(Int(response.status.code)) else {
            var message = String(buffer: bytes)
            if case .object(let members)? = value, case .object(let error)? = members["error"], case .string(let text)? = error["message"] {
                message = text
            }
            throw fail("\(response.status.code) \(response.status.reasonPhrase): \(message)")
        }
        guard let value else { throw fail("the server's answer is not JSON") }
        return value
    }
}

/// A document of an answer as one line: its fields, with `_id` (and `_version`).
func remoteLine(_ document: JSONValue) -> String {
    guard case .object(let members) = document else { return document.text }
    var line = [String: JSONValue]()
    if case .object(let fields)? = members["doc"] { line = fields }
    line["_id"] = members["id"]
    line["_version"] = members["version"]
    if members["deleted"] == .bool(true) { line["_deleted"] = .bool(true) }
    return JSONValue.object(line).text
}

struct RemoteGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Print one live document as JSON, with its _id and _version.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The document's id.") var id: String

    func run() async throws {
        print(remoteLine(try await remote.call(.GET, try remote.url(["documents", collection, id]))))
    }
}

struct RemotePut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put", abstract: "Write a document from a JSON object: replace it (creating it if needed), or patch it with --patch.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The document's id.") var id: String
    @Argument(help: "The JSON object; - or nothing reads it from standard input.") var json: String?
    @Flag(name: .long, help: "Apply the object as a JSON merge patch (RFC 7396: null removes a field) to a live document.") var patch = false
    @Flag(name: .long, help: "Create only: fail if the document exists.") var create = false
    @Option(name: .long, help: "Write only if the document is at this version (as get printed it).") var ifVersion: String?

    func run() async throws {
        var text = json ?? "-"
        if text == "-" { text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
        var headers = [(String, String)]()
        if let ifVersion { headers.append(("If-Match", "\"\(ifVersion)\"")) }
        if create { headers.append(("If-None-Match", "*")) }
        let answer = try await remote.call(patch ? .PATCH : .PUT, try remote.url(["documents", collection, id]), body: text, headers: headers)
        print(remoteLine(answer))
    }
}

struct RemoteDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a live document.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The document's id.") var id: String
    @Option(name: .long, help: "Delete only if the document is at this version.") var ifVersion: String?

    func run() async throws {
        let headers = ifVersion.map { [("If-Match", "\"\($0)\"")] } ?? []
        print(remoteLine(try await remote.call(.DELETE, try remote.url(["documents", collection, id]), headers: headers)))
    }
}

struct RemoteList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Print the live documents of a collection as a JSON array, one a line, in the order of their ids.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The collection.") var collection: String
    @Option(name: .customLong("where"), help: "A condition FIELD=VALUE on the projection (a dotted path; a JSON scalar or text); repeat for more.")
    var conditions: [String] = []
    @Option(name: .long, help: "At most this many documents (all by default).") var limit: Int?

    func run() async throws {
        var query = [(String, String)]()
        for condition in conditions {
            guard let equals = condition.firstIndex(of: "="), equals != condition.startIndex else {
                throw fail("--where needs FIELD=VALUE, got \(condition.debugDescription)")
            }
            query.append(("where[\(condition[..<equals])]", String(condition[condition.index(after: equals)...])))
        }
        var after: String?
        var printed = 0
        var separator = "["
        // Page by page, printing as it reads: memory follows the page, not the collection.
        while limit.map({ printed < $0 }) ?? true {
            let size = min(1_000, limit.map { $0 - printed } ?? 1_000)
            var pageQuery = query + [("limit", "\(size)")]
            if let after { pageQuery.append(("after", after)) }
            let page = try await remote.call(.GET, try remote.url(["documents", collection], query: pageQuery))
            guard case .object(let members) = page, case .array(let documents)? = members["documents"] else { throw fail("unexpected answer") }
            for document in documents {
                print(separator + remoteLine(document))
                separator = ","
                printed += 1
            }
            guard case .string(let next)? = members["next"] else { break }
            after = next
        }
        print(separator == "[" ? "[]" : "]")
    }
}

struct RemoteChanges: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changes", abstract: "Print the change feed after a cursor, one change a line, and the cursor to read on from.")
    @OptionGroup var remote: RemoteOptions
    @Option(name: .long, help: "The cursor to read after (0: everything).") var after = "0"
    @Flag(name: .long, help: "Keep waiting for changes (until interrupted).") var follow = false

    func run() async throws {
        var cursor = after
        while true {
            var query = [("after", cursor)]
            if follow { query.append(("wait", "25000")) }
            let page = try await remote.call(.GET, try remote.url(["changes"], query: query))
            guard case .object(let members) = page, case .array(let changes)? = members["changes"], case .string(let next)? = members["cursor"] else {
                throw fail("unexpected answer")
            }
            for change in changes { print(change.text) }
            cursor = next
            if members["hasMore"] == .bool(true) { continue }
            if !follow { break }
        }
        FileHandle.standardError.write(Data("cursor \(cursor)\n".utf8))
    }
}
