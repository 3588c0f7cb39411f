import Foundation
import Testing
import WeftCRDT
import WeftServer

@Suite("The OpenAPI document")
struct OpenAPIDocumentTests {
    @Test("The server serves Docs/openapi.json as it is, and it is JSON naming every route of the document API")
    func theServedDocumentIsTheOneInDocs() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("Docs/openapi.json"), encoding: .utf8)
        #expect(file == StandaloneServer.openAPIDocument, "run python3 scripts/sync-openapi.py")
        guard case .object(let document) = try JSONDecoder().decode(JSONValue.self, from: Data(file.utf8)),
            case .object(let paths)? = document["paths"]
        else {
            Issue.record("not an OpenAPI document")
            return
        }
        #expect(
            Set(paths.keys) == ["/v1/{database}/documents/{collection}", "/v1/{database}/documents/{collection}/{id}", "/v1/{database}/changes"])
    }
}
