// The malformed corpus: Fixtures/malformed/<case>.hex, listed in Fixtures/malformed/manifest.tsv
// with the type to decode as, the expected CodecError kind, optional DecodingLimits and a status.
//
// Status `known-issue` marks inputs the decoder accepts today although it should not; those run
// inside `withKnownIssue`, so fixing the decoder makes the test report the issue as resolved.

import Foundation
import Testing
import WeftCRDT

struct CodecMalformedCase: Sendable, CustomTestStringConvertible {
    let file: String
    let type: String
    let expectedKind: String
    let limits: DecodingLimits
    let knownIssue: Bool
    let detail: String

    var testDescription: String { file }

    static func load() throws -> [CodecMalformedCase] {
        let text = try CodecFixtures.readText(CodecFixtures.malformed.appendingPathComponent("manifest.tsv"))
        var cases = [CodecMalformedCase]()
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 6 else { throw CodecManifestError(line: String(line)) }
            var limits = DecodingLimits.default
            if columns[3] != "-" {
                for setting in columns[3].split(separator: ",") {
                    let parts = setting.split(separator: "=")
                    guard parts.count == 2, let value = Int(parts[1]) else {
                        throw CodecManifestError(line: String(line))
                    }
                    switch parts[0] {
                    case "depth": limits.maximumDepth = value
                    case "bytes": limits.maximumInputBytes = value
                    default: throw CodecManifestError(line: String(line))
                    }
                }
            }
            cases.append(
                CodecMalformedCase(
                    file: columns[0], type: columns[1], expectedKind: columns[2], limits: limits,
                    knownIssue: columns[4] == "known-issue", detail: columns[5]))
        }
        return cases
    }

    static var all: [CodecMalformedCase] { (try? load()) ?? [] }
}

struct CodecManifestError: Error, CustomStringConvertible {
    let line: String
    var description: String { "bad manifest line: \(line)" }
}

@Suite("Codec malformed corpus")
struct CodecMalformedTests {
    static let kinds: Set<String> = [
        "truncated", "trailingBytes", "unsupportedVersion", "wrongTypeTag", "invalidTag", "malformedVarint",
        "valueOutOfRange", "invalidUTF8", "invariantViolation", "nonCanonical", "nestingTooDeep", "tooLarge",
    ]

    @Test("the manifest is well-formed and matches the files")
    func manifest() throws {
        let cases = try CodecMalformedCase.load()
        #expect(cases.count >= 25)
        #expect(Set(cases.map(\.file)).count == cases.count, "duplicate file names in the manifest")
        for item in cases {
            #expect(CodecRegistry.subject(named: item.type) != nil, "\(item.file): unknown type \(item.type)")
            #expect(Self.kinds.contains(item.expectedKind), "\(item.file): unknown kind \(item.expectedKind)")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: CodecFixtures.malformed.path)
            .filter { $0.hasSuffix(".hex") }
            .map { String($0.dropLast(4)) }
        #expect(Set(files) == Set(cases.map(\.file)))
        // Every error kind is exercised by at least one case.
        #expect(Set(cases.map(\.expectedKind)) == Self.kinds)
    }

    @Test("malformed input is rejected with the expected error kind", arguments: CodecMalformedCase.all)
    func rejects(_ item: CodecMalformedCase) throws {
        let subject = try #require(CodecRegistry.subject(named: item.type))
        let text = try CodecFixtures.readText(
            CodecFixtures.malformed.appendingPathComponent("\(item.file).hex"))
        let bytes = try #require(CodecHex.decode(text), "\(item.file).hex is not hex")

        let check = { () -> Void in
            do throws(CodecError) {
                let reencoded = try subject.reencode(bytes, item.limits)
                Issue.record(
                    "\(item.file): decoded as \(item.type) without error (re-encodes to \(CodecHex.encode(reencoded))); expected \(item.expectedKind): \(item.detail)"
                )
            } catch {
                #expect(
                    error.kind == item.expectedKind,
                    "\(item.file): \(error) — expected \(item.expectedKind): \(item.detail)")
                #expect(
                    error.offset >= 0 && error.offset <= bytes.count,
                    "\(item.file): error offset \(error.offset) outside the input")
            }
        }
        if item.knownIssue {
            withKnownIssue("decoder accepts a non-canonical encoding: \(item.detail)") { check() }
        } else {
            check()
        }
    }
}
