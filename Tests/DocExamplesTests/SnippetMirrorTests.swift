// Every Swift snippet of the DocC articles (Sources/*/*.docc/*.md) and of the doc comments in
// Sources must appear in this target, line for line and in one piece: the files here compile
// and run them, so a snippet that drifts from its mirror (or never had one) fails here.
// Indentation and runs of spaces do not count; the mirror may add setup lines before or after
// a snippet, not inside it.
import Foundation
import Testing

@Suite("Doc examples: every snippet is mirrored")
struct SnippetMirrorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Files whose snippets are not checked (none now).
    static let pending: Set<String> = []

    struct Snippet: CustomStringConvertible {
        var file: String
        var line: Int
        var lines: [String]
        var description: String { "\(file):\(line)" }
    }

    static func normalized(_ line: Substring) -> String? {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return words.isEmpty ? nil : words.joined(separator: " ")
    }

    /// The ```swift blocks of `text`; in a Swift file, only those of `///` comments.
    static func snippets(in text: String, file: String, docComments: Bool) -> [Snippet] {
        var result = [Snippet]()
        var current: Snippet?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if docComments {
                guard line.hasPrefix("///") else {
                    current = nil
                    continue
                }
                line = line.dropFirst(3)
            }
            let fence = line.trimmingCharacters(in: .whitespaces)
            if current == nil {
                if fence == "```swift" { current = Snippet(file: file, line: index + 1, lines: []) }
            } else if fence == "```" {
                if let snippet = current, !snippet.lines.isEmpty { result.append(snippet) }
                current = nil
            } else if let normalized = normalized(line) {
                current?.lines.append(normalized)
            }
        }
        return result
    }

    static func files(under folder: String, suffix: String) throws -> [String] {
        let base = root.appendingPathComponent(folder)
        guard let walker = FileManager.default.enumerator(atPath: base.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(suffix) }.map { "\(folder)/\($0)" }.sorted()
    }

    static func read(_ file: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
    }

    @Test func everySnippetHasAMirror() throws {
        var snippets = [Snippet]()
        for file in try Self.files(under: "Sources", suffix: ".md") where file.contains(".docc/") && !Self.pending.contains(file) {
            snippets += Self.snippets(in: try Self.read(file), file: file, docComments: false)
        }
        for file in try Self.files(under: "Sources", suffix: ".swift") {
            snippets += Self.snippets(in: try Self.read(file), file: file, docComments: true)
        }
        #expect(snippets.count >= 40, "the scan found \(snippets.count) snippets: is the repository root right?")

        var mirror = [String]()
        for file in try Self.files(under: "Tests/DocExamplesTests", suffix: ".swift") {
            mirror += try Self.read(file).split(separator: "\n").compactMap(Self.normalized)
        }
        for snippet in snippets {
            let count = snippet.lines.count
            let found = mirror.count >= count && (0...(mirror.count - count)).contains { Array(mirror[$0..<($0 + count)]) == snippet.lines }
            if !found {
                let missing = snippet.lines.first { !mirror.contains($0) } ?? "(every line is somewhere, but not in one piece)"
                Issue.record("\(snippet): no mirror in Tests/DocExamplesTests; first line not found: \(missing)")
            }
        }
    }
}
