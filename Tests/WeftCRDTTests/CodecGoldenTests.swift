// Golden encodings: the exact bytes of one small value per type, pinned in Fixtures/golden.
//
// A change to any golden file is a change of the wire/storage format and needs a bump of
// BinaryFormat.version (see Docs/Encoding.md). To rewrite the files deliberately:
//
//     WEFT_REGENERATE_FIXTURES=1 swift test --filter CodecGolden

import Foundation
import Testing
import WeftCRDT

@Suite("Codec golden encodings")
struct CodecGoldenTests {
    static var goldenNames: [String] { CodecGoldenValues.all.map(\.file) }

    @Test(
        "golden value encodes to the fixture bytes and decodes back",
        arguments: CodecGoldenValues.all.map(\.file))
    func golden(file: String) throws {
        let golden = try #require(CodecGoldenValues.all.first { $0.file == file })
        let url = CodecFixtures.golden.appendingPathComponent("\(file).hex")
        let produced = golden.encode()

        if CodecFixtures.regenerate {
            try CodecFixtures.writeText(CodecHex.encode(produced) + "\n", to: url)
        }

        let text = try CodecFixtures.readText(url)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "\(file).hex must hold exactly one line")
        #expect(text == text.lowercased(), "\(file).hex must be lowercase hex")
        let fixture = try #require(CodecHex.decode(text), "\(file).hex is not hex")

        #expect(
            CodecHex.encode(produced) == CodecHex.encode(fixture),
            "encoding of \(file) changed: this is a format change (bump BinaryFormat.version, then regenerate)"
        )
        #expect(
            try golden.decodesToValue(fixture), "decoding \(file).hex does not give the golden value back")

        // The envelope: the format version, then the type's tag.
        let subject = try #require(CodecRegistry.subject(named: golden.subject))
        #expect(fixture.count >= 2)
        #expect(fixture[0] == BinaryFormat.version)
        #expect(fixture[1] == subject.tag)
        // And the canonical round trip through the registry entry.
        #expect(try subject.reencode(fixture, .default) == fixture)
    }

    @Test("every golden file has a golden value")
    func noOrphanFixtures() throws {
        if CodecFixtures.regenerate {
            // Runs in parallel with the per-file test: write every file here too, and drop stale ones.
            for golden in CodecGoldenValues.all {
                let url = CodecFixtures.golden.appendingPathComponent("\(golden.file).hex")
                try CodecFixtures.writeText(CodecHex.encode(golden.encode()) + "\n", to: url)
            }
            for name in try FileManager.default.contentsOfDirectory(atPath: CodecFixtures.golden.path)
            where name.hasSuffix(".hex") && !Self.goldenNames.contains(String(name.dropLast(4))) {
                try FileManager.default.removeItem(at: CodecFixtures.golden.appendingPathComponent(name))
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: CodecFixtures.golden.path)
            .filter { $0.hasSuffix(".hex") }
            .map { String($0.dropLast(4)) }
        #expect(Set(files) == Set(Self.goldenNames))
    }

    @Test("the type tags are the documented ones")
    func typeTags() {
        #expect(VersionVector.binaryTypeTag == 1)
        #expect(CausalContext.binaryTypeTag == 2)
        #expect(LWWRegister<String>.binaryTypeTag == 3)
        #expect(MVRegister<String>.binaryTypeTag == 4)
        #expect(GCounter.binaryTypeTag == 5)
        #expect(PNCounter.binaryTypeTag == 6)
        #expect(ORSet<String>.binaryTypeTag == 7)
        #expect(LWWMap<String, Int>.binaryTypeTag == 8)
        #expect(ORMap<String, GCounter>.binaryTypeTag == 9)
        #expect(Document.binaryTypeTag == 10)
        #expect(String.binaryTypeTag == 0)
        #expect(BinaryFormat.version == 2)
        #expect(BinaryFormat.supportedVersions == 1...2)
    }

    /// A document written in format version 1 (the golden document of that version) is read,
    /// converted to one causal context, and shows the same content; the conversion is pinned,
    /// so every implementation converts to the same bytes.
    @Test("a version 1 document converts to the pinned version 2 document")
    func legacyDocument() throws {
        let folder = CodecFixtures.golden.deletingLastPathComponent().appendingPathComponent("legacy")
        let legacy = try #require(CodecHex.decode(try CodecFixtures.readText(folder.appendingPathComponent("Document_v1.hex"))))
        #expect(legacy.first == 1)
        let converted = try Document(encoded: legacy)
        #expect(converted.string("title") == "Pump 7")
        #expect(converted.counter("visits") == 2)
        #expect(converted.set("tags") == ["valve"])
        #expect(converted.map("specs")?.int("rpm") == 1450)
        #expect(converted.map("specs")?.bool("ok") == true)
        let url = folder.appendingPathComponent("Document_v1_converted.hex")
        if CodecFixtures.regenerate { try CodecFixtures.writeText(CodecHex.encode(converted.encoded()) + "\n", to: url) }
        let pinned = try #require(CodecHex.decode(try CodecFixtures.readText(url)))
        #expect(CodecHex.encode(converted.encoded()) == CodecHex.encode(pinned))
        #expect(try Document(encoded: pinned) == converted)
        // The converted document goes on like any other: a new edit and a removal keep
        // every other field, and its dots are new.
        var edited = converted
        edited.increment("visits", by: 1, at: CodecIDs.stamp(10, 0, CodecIDs.a))
        edited.removeField("tags")
        edited.insert("seal", intoSet: "tags", at: CodecIDs.stamp(11, 0, CodecIDs.a))
        let merged = edited.merged(with: converted)
        #expect(merged.counter("visits") == 3 && merged.set("tags") == ["seal"] && merged.string("title") == "Pump 7")
        #expect(try Document(encoded: merged.encoded()) == merged)
    }

    /// Spot checks of the primitives, independent of any fixture file.
    @Test("primitive encodings")
    func primitives() {
        func body(_ fill: (inout BinaryWriter) -> Void) -> String {
            var writer = BinaryWriter()
            fill(&writer)
            return CodecHex.encode(writer.bytes)
        }
        #expect(body { $0.writeVarint(0) } == "00")
        #expect(body { $0.writeVarint(127) } == "7f")
        #expect(body { $0.writeVarint(128) } == "8001")
        #expect(body { $0.writeVarint(300) } == "ac02")
        #expect(body { $0.writeVarint(.max) } == "ffffffffffffffffff01")
        #expect(body { $0.writeSignedVarint(0) } == "00")
        #expect(body { $0.writeSignedVarint(-1) } == "01")
        #expect(body { $0.writeSignedVarint(1) } == "02")
        #expect(body { $0.writeSignedVarint(-64) } == "7f")
        #expect(body { $0.writeSignedVarint(64) } == "8001")
        #expect(body { $0.writeSignedVarint(.min) } == "ffffffffffffffffff01")
        #expect(body { $0.writeDouble(1.0) } == "000000000000f03f")
        #expect(body { $0.writeString("hé") } == "0368c3a9")
        #expect(
            body { w in
                w.writeReplica(CodecIDs.a)
                w.writeReplica(CodecIDs.b)
                w.writeReplica(CodecIDs.a)
            }
                == "00" + "00000000000000010000000000000001" + "00" + "00000000000000020000000000000002"
                + "01")
        #expect(CodecHex.encode(true.encoded()) == "020001")
        #expect(CodecHex.encode(Int64(-3).encoded()) == "020005")
        #expect(CodecHex.encode(Optional<Bool>.none.encoded()) == "020000")
        #expect(CodecHex.encode(Optional(false).encoded()) == "02000100")
        #expect(
            CodecHex.encode(CodecIDs.stamp(0, 2, CodecIDs.a).encoded())
                == "0200" + "80d095ffbc31" + "02" + "00" + "00000000000000010000000000000001")
    }
}
