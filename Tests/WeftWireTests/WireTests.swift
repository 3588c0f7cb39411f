import Foundation
import Testing
import WeftCRDT
import WeftTesting
import WeftWire

#if canImport(CZstd)
    import CZstd
#endif

private let replicaA = ReplicaID(high: 0xA, low: 1)
private let replicaB = ReplicaID(high: 0xB, low: 2)

private func record(_ field: String, _ value: Int64, wall: UInt64, replica: ReplicaID = replicaA)
    -> DocumentRecord
{
    let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
    var body = Document()
    body.set(field, to: .int(value), at: stamp)
    var version = VersionVector()
    version[replica] = 1
    return DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version)
}

enum WireSamples {
    static let push = PushRequest(
        replica: replicaA,
        changes: [
            WireChange(
                sequence: 7, key: WireKey(collection: "orders", id: "o1"),
                record: record("qty", 3, wall: 1_700_000_000_000)),
            WireChange(
                sequence: 9, key: WireKey(collection: "orders", id: "o2"),
                record: record("qty", 5, wall: 1_700_000_000_001)),
        ])
    static let pushResponse = PushResponse(
        appliedThrough: 9, rejected: [.init(sequence: 8, reason: "document too large")])
    static let pullRequest = PullRequest(
        after: 41, afterTag: 300, maximumChanges: 500, maximumBytes: 65_536, waitMilliseconds: 25_000)
    static let pullResponse = PullResponse(
        changes: [
            WireChange(
                sequence: 42, key: WireKey(collection: "orders", id: "o1"),
                record: record("qty", 3, wall: 1_700_000_000_000)),
            WireChange(
                sequence: 45, key: WireKey(collection: "orders", id: "o3"),
                record: record("qty", 1, wall: 1_700_000_000_002, replica: replicaB)),
        ], cursor: 45, cursorTag: 7, hasMore: true)

    static func big(_ count: Int) -> PushRequest {
        PushRequest(
            replica: replicaA,
            changes: (1...count).map { index in
                WireChange(
                    sequence: UInt64(index), key: WireKey(collection: "readings", id: "sensor-\(index % 50)"),
                    record: record("celsius", Int64(index % 40), wall: 1_700_000_000_000 + UInt64(index)))
            })
    }
}

@Suite("Wire")
struct WireTests {
    @Test func formerIdentitiesRoundTripAndAreBounded() throws {
        let push = PushRequest(
            replica: replicaA, epoch: 5, formerIdentities: [replicaB, replicaA], changes: [])
        #expect(try WireMessage.decode(PushRequest.self, from: WireMessage.encode(push)) == push)
        let tooMany = PushRequest(
            replica: replicaA, epoch: 5,
            formerIdentities: Array(repeating: replicaB, count: PushRequest.maximumFormerIdentities + 1),
            changes: [])
        #expect(throws: WireError.self) {
            try WireMessage.decode(PushRequest.self, from: WireMessage.encode(tooMany))
        }
    }

    @Test func everyMessageRoundTrips() throws {
        #expect(
            try WireMessage.decode(PushRequest.self, from: WireMessage.encode(WireSamples.push))
                == WireSamples.push)
        #expect(
            try WireMessage.decode(PushResponse.self, from: WireMessage.encode(WireSamples.pushResponse))
                == WireSamples.pushResponse)
        #expect(
            try WireMessage.decode(PullRequest.self, from: WireMessage.encode(WireSamples.pullRequest))
                == WireSamples.pullRequest)
        // The replica is a trailing field: present, it round-trips; absent, the message ends
        // after the wait (the golden frame), and a truncated replica is malformed.
        var named = WireSamples.pullRequest
        named.replica = ReplicaID(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10)
        #expect(try WireMessage.decode(PullRequest.self, from: WireMessage.encode(named)) == named)
        let payload = BinaryFormat.encode(named)
        #expect(payload.count == BinaryFormat.encode(WireSamples.pullRequest).count + 17)
        #expect(throws: WireError.self) {
            try WireMessage.decode(PullRequest.self, from: WireFrame.encode(Array(payload.dropLast(3))))
        }
        #expect(
            try WireMessage.decode(PullResponse.self, from: WireMessage.encode(WireSamples.pullResponse))
                == WireSamples.pullResponse)
        let big = WireSamples.big(2_000)
        #expect(try WireMessage.decode(PushRequest.self, from: WireMessage.encode(big)) == big)
    }

    /// Issue #15, forgetting tombstones: the hello's and the pull's flags bytes (`02` handles
    /// collection, `04` resyncing with its cursor), and the page's resync extension (`00`, then
    /// flags, then the indices of documents created again). Without them each message is byte
    /// for byte what older peers send and read, and malformed forms are refused.
    @Test func collectionFieldsRoundTripAndAreOptional() throws {
        var hello = HelloRequest(replica: replicaA, confirmedEpoch: 3, epoch: 4, acknowledgedThrough: 9)
        let older = BinaryFormat.encode(hello)
        hello.handlesCollection = true
        #expect(BinaryFormat.encode(hello) == older + [2])
        hello.offersDeltaPushes = true
        #expect(BinaryFormat.encode(hello) == older + [3])
        #expect(try WireMessage.decode(HelloRequest.self, from: WireMessage.encode(hello)) == hello)
        var answer = HelloResponse(
            status: .accepted, appliedThrough: 9, defaultPolicy: WirePolicy(name: "crdt"), collections: [])
        let olderAnswer = BinaryFormat.encode(answer)
        answer.collectsTombstones = true
        #expect(BinaryFormat.encode(answer) == olderAnswer + [2])
        #expect(try WireMessage.decode(HelloResponse.self, from: WireMessage.encode(answer)) == answer)

        let named = PullRequest(after: 41, afterTag: 300, replica: replicaA)
        let plain = BinaryFormat.encode(named)
        let deltas = PullRequest(after: 41, afterTag: 300, replica: replicaA, acceptsDeltas: true)
        #expect(BinaryFormat.encode(deltas) == plain + [1], "the delta flag is the byte older servers read")
        let handles = PullRequest(
            after: 41, afterTag: 300, replica: replicaA, acceptsDeltas: true, handlesCollection: true)
        #expect(BinaryFormat.encode(handles) == plain + [3])
        let resyncing = PullRequest(after: 0, replica: replicaA, resyncingFrom: 300)
        #expect(resyncing.handlesCollection, "a resyncing pull handles collection")
        #expect(try WireMessage.decode(PullRequest.self, from: WireMessage.encode(resyncing)) == resyncing)
        #expect(try WireMessage.decode(PullRequest.self, from: WireMessage.encode(handles)) == handles)
        #expect(
            PullRequest(after: 41, resyncingFrom: 9).resyncingFrom == nil, "collection flags need a replica")
        for bad: [UInt8] in [[0], [4, 1], [8], [6]] {
            #expect(throws: WireError.self, "pull flags \(bad)") {
                try WireMessage.decode(PullRequest.self, from: WireFrame.encode(plain + bad))
            }
        }

        var page = WireSamples.pullResponse
        let olderPage = BinaryFormat.encode(page)
        page.resync = PullResponse.ResyncAnswer(tooFarBehind: true, createdAgain: [0, 1])
        #expect(Array(BinaryFormat.encode(page).prefix(olderPage.count)) == olderPage)
        #expect(BinaryFormat.encode(page) == olderPage + [0, 1, 2, 0, 1])
        #expect(try WireMessage.decode(PullResponse.self, from: WireMessage.encode(page)) == page)
        page.changes[1].deltaBase = 77
        #expect(
            try WireMessage.decode(PullResponse.self, from: WireMessage.encode(page)) == page,
            "a delta section, then the extension")
        page.resync = PullResponse.ResyncAnswer(tooFarBehind: false)
        #expect(try WireMessage.decode(PullResponse.self, from: WireMessage.encode(page)) == page)
        for bad: [UInt8] in [[0], [0, 2, 0], [0, 1, 1, 9], [0, 1, 2, 1, 0], [0, 0, 3, 0, 1, 2]] {
            #expect(throws: WireError.self, "resync extension \(bad)") {
                try WireMessage.decode(PullResponse.self, from: WireFrame.encode(olderPage + bad))
            }
        }
    }

    /// Delta pushes are trailing additions: a push with deltas ends with the delta section, a
    /// hello that offers them with a byte `01`, and the answer says so with a byte `01` too;
    /// without them each message is byte for byte what older peers send and read.
    @Test func deltaPushFieldsRoundTripAndAreOptional() throws {
        var push = WireSamples.push
        push.changes[1].deltaBase = 0xDEAD_BEEF_0123
        #expect(try WireMessage.decode(PushRequest.self, from: WireMessage.encode(push)) == push)
        let plain = BinaryFormat.encode(WireSamples.push)
        let withDelta = BinaryFormat.encode(push)
        #expect(Array(withDelta.prefix(plain.count)) == plain, "the delta section trails the older layout")
        // The section: count 1, index 1, the digest as a varint.
        #expect(withDelta.count == plain.count + 2 + varintLength(0xDEAD_BEEF_0123))
        for bad: [UInt8] in [[0], [1, 2, 5], [2, 1, 5, 0, 6]] {
            #expect(throws: WireError.self, "delta section \(bad)") {
                try WireMessage.decode(PushRequest.self, from: WireFrame.encode(plain + bad))
            }
        }

        var hello = HelloRequest(replica: replicaA, confirmedEpoch: 3, epoch: 4, acknowledgedThrough: 9)
        let older = BinaryFormat.encode(hello)
        hello.offersDeltaPushes = true
        #expect(BinaryFormat.encode(hello) == older + [1])
        #expect(try WireMessage.decode(HelloRequest.self, from: WireMessage.encode(hello)).offersDeltaPushes)
        #expect(try !WireMessage.decode(HelloRequest.self, from: WireFrame.encode(older)).offersDeltaPushes)
        #expect(throws: WireError.self) {
            try WireMessage.decode(HelloRequest.self, from: WireFrame.encode(older + [8]))
        }
        #expect(throws: WireError.self) {
            try WireMessage.decode(HelloRequest.self, from: WireFrame.encode(older + [0]))
        }

        var answer = HelloResponse(
            status: .accepted, appliedThrough: 9, defaultPolicy: WirePolicy(name: "crdt"), collections: [])
        let olderAnswer = BinaryFormat.encode(answer)
        answer.acceptsDeltaPushes = true
        #expect(BinaryFormat.encode(answer) == olderAnswer + [1])
        #expect(try WireMessage.decode(HelloResponse.self, from: WireMessage.encode(answer)) == answer)
        #expect(throws: WireError.self) {
            try WireMessage.decode(HelloResponse.self, from: WireFrame.encode(olderAnswer + [0]))
        }
    }

    /// The channel fields: a hello offers them (`04`) and the answer says so (`04`); a pull
    /// that handles channels sends its view and subscription; a page says which changes left
    /// the view and carries the next view; a push's answer says which rejections withdraw the
    /// replica's copy. Without them, each message is what older peers send and read.
    @Test func channelFieldsRoundTripAndAreOptional() throws {
        var hello = HelloRequest(replica: replicaA, confirmedEpoch: 3, epoch: 4, acknowledgedThrough: 9)
        let older = BinaryFormat.encode(hello)
        hello.handlesChannels = true
        #expect(BinaryFormat.encode(hello) == older + [4])
        #expect(try WireMessage.decode(HelloRequest.self, from: WireMessage.encode(hello)).handlesChannels)
        var answer = HelloResponse(
            status: .accepted, appliedThrough: 9, defaultPolicy: WirePolicy(name: "crdt"), collections: [])
        let olderAnswer = BinaryFormat.encode(answer)
        answer.filtersChannels = true
        #expect(BinaryFormat.encode(answer) == olderAnswer + [4])
        #expect(try WireMessage.decode(HelloResponse.self, from: WireMessage.encode(answer)) == answer)

        let pull = PullRequest(
            after: 7, afterTag: 99, replica: replicaA, handlesChannels: true, view: [1, 2, 3],
            subscription: ["site:7", "site:10", "site:7"])
        let decoded = try WireMessage.decode(PullRequest.self, from: WireMessage.encode(pull))
        #expect(decoded.handlesChannels && decoded.view == [1, 2, 3])
        #expect(decoded.subscription == ["site:10", "site:7"], "sorted by bytes, without repeats")
        let everything = PullRequest(after: 7, replica: replicaA, handlesChannels: true)
        #expect(
            try WireMessage.decode(PullRequest.self, from: WireMessage.encode(everything)).subscription == nil
        )
        let plainPull = BinaryFormat.encode(PullRequest(after: 7, replica: replicaA))
        // Flag 08, an empty view, then a subscription whose names do not increase.
        var unordered = BinaryWriter()
        unordered.writeVarint(3)
        unordered.writeString("b")
        unordered.writeString("a")
        #expect(throws: WireError.self) {
            try WireMessage.decode(
                PullRequest.self, from: WireFrame.encode(plainPull + [8, 0] + unordered.bytes))
        }
        #expect(throws: WireError.self) {
            try WireMessage.decode(PullRequest.self, from: WireFrame.encode(plainPull + [8, 0, 200]))
        }

        let key = WireKey(collection: "orders", id: "o1")
        let record = WireSamples.push.changes[0].record
        let page = PullResponse(
            changes: [
                WireChange(sequence: 3, key: key, record: record),
                WireChange(sequence: 5, key: key, record: record),
            ], cursor: 9,
            cursorTag: 1, hasMore: false, channels: .init(view: [9, 9], left: [1]))
        #expect(try WireMessage.decode(PullResponse.self, from: WireMessage.encode(page)) == page)
        // A view change's page numbers changes by their place in the pass, above the cursor.
        let pass = PullResponse(
            changes: [WireChange(sequence: 30, key: key, record: record)], cursor: 9, hasMore: true,
            channels: .init(view: [1], isViewChange: true))
        #expect(try WireMessage.decode(PullResponse.self, from: WireMessage.encode(pass)) == pass)
        var notPass = pass
        notPass.channels?.isViewChange = false
        #expect(throws: WireError.self) {
            try WireMessage.decode(PullResponse.self, from: WireMessage.encode(notPass))
        }
        let withResync = PullResponse(
            changes: [WireChange(sequence: 3, key: key, record: record)], cursor: 9, hasMore: false,
            resync: .init(tooFarBehind: true, createdAgain: [0]), channels: .init(view: [], left: [0]))
        #expect(try WireMessage.decode(PullResponse.self, from: WireMessage.encode(withResync)) == withResync)
        let plainPage = BinaryFormat.encode(PullResponse(changes: [], cursor: 9, hasMore: false))
        for bad: [UInt8] in [[0, 16], [0, 5], [0, 8 | 4], [0, 2 | 4, 0, 1, 0]] {
            #expect(throws: WireError.self, "extension \(bad)") {
                try WireMessage.decode(PullResponse.self, from: WireFrame.encode(plainPage + bad))
            }
        }

        let refused = PushResponse(
            appliedThrough: 4,
            rejected: [
                .init(sequence: 2, reason: "too large"),
                .init(sequence: 3, reason: "channels", withdrawn: true),
            ])
        #expect(try WireMessage.decode(PushResponse.self, from: WireMessage.encode(refused)) == refused)
        let plainRefusal = PushResponse(
            appliedThrough: 4, rejected: [.init(sequence: 2, reason: "too large")])
        let plainBytes = BinaryFormat.encode(plainRefusal)
        #expect(try WireMessage.decode(PushResponse.self, from: WireFrame.encode(plainBytes)) == plainRefusal)
        for bad: [UInt8] in [[0], [1, 1], [2, 0, 0]] {
            #expect(throws: WireError.self, "withdrawn \(bad)") {
                try WireMessage.decode(PushResponse.self, from: WireFrame.encode(plainBytes + bad))
            }
        }
    }

    @Test func largePayloadsAreCompressedAndSmallOnesAreNot() throws {
        let small = WireMessage.encode(WireSamples.pullRequest)
        #expect(small[4] == 0, "a small payload goes raw")
        let bigMessage = WireSamples.big(2_000)
        let raw = BinaryFormat.encode(bigMessage)
        let framed = WireMessage.encode(bigMessage)
        #expect(framed[4] == 1, "a large payload is compressed")
        #expect(
            framed.count * 3 < raw.count,
            "zstd shrinks repetitive changes: \(framed.count) of \(raw.count) bytes")
    }

    @Test func aDecompressionBombIsRefusedBeforeAllocating() throws {
        // 8 MiB of zeros compress to a few hundred bytes.
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let frame = WireFrame.encode(zeros)
        #expect(frame.count < 2_048)
        let limits = WireLimits(maximumDecompressedBytes: 1 << 20)
        do {
            _ = try WireFrame.decode(frame, limits: limits)
            Issue.record("the bomb was decompressed")
        } catch {
            #expect(error.isTooLarge)
        }
        // A header that lies about the size (small) while the zstd frame says 8 MiB is malformed.
        var lying = Array(frame[0..<5])
        var header = BinaryWriter()
        header.writeVarint(1_000)
        lying += header.bytes
        lying += frame[(5 + varintLength(UInt64(8 << 20)))...]
        #expect(throws: WireError.self) { try WireFrame.decode(lying, limits: limits) }
    }

    #if canImport(CZstd)
        @Test func zstdFramesWithoutAContentSizeAreRefused() throws {
            let payload = [UInt8](repeating: 7, count: 4_096)
            let context = ZSTD_createCCtx()
            defer { ZSTD_freeCCtx(context) }
            ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0)
            var compressed = [UInt8](repeating: 0, count: ZSTD_compressBound(payload.count))
            let capacity = compressed.count
            let size = payload.withUnsafeBytes { source in
                compressed.withUnsafeMutableBytes { target in
                    ZSTD_compress2(context, target.baseAddress, capacity, source.baseAddress, payload.count)
                }
            }
            #expect(ZSTD_isError(size) == 0)
            var frame: [UInt8] = [0x57, 0x46, 0x54, 0x31, 1]
            var header = BinaryWriter()
            header.writeVarint(UInt64(payload.count))
            frame += header.bytes + compressed[0..<size]
            #expect(throws: WireError.self) { try WireFrame.decode(frame) }
        }
    #endif

    @Test func malformedFramesAreRefused() throws {
        let good = WireMessage.encode(WireSamples.big(300))
        var cases: [(String, [UInt8])] = [
            ("empty", []),
            ("bad magic", [0x58] + good.dropFirst()),
            ("unknown codec", Array(good[0..<4]) + [9] + good[5...]),
            ("trailing bytes after zstd", good + [0, 1, 2]),
            ("truncated", Array(good.prefix(good.count / 2))),
        ]
        let raw = WireMessage.encode(WireSamples.pullRequest)
        cases.append(("raw length mismatch", raw + [0]))
        for (name, bytes) in cases {
            #expect(throws: WireError.self, "\(name)") {
                try WireMessage.decode(PushRequest.self, from: bytes)
            }
        }
        #expect(throws: WireError.self) {
            try WireMessage.decode(
                PushRequest.self, from: good, limits: WireLimits(maximumFrameBytes: good.count - 1))
        }
        #expect(throws: WireError.self) {
            try WireMessage.decode(PushRequest.self, from: good, limits: WireLimits(maximumChanges: 299))
        }
        // The wrong message type.
        #expect(throws: WireError.self) { try WireMessage.decode(PullRequest.self, from: good) }
    }

    @Test func randomMutationsNeverCrash() {
        var random = SplitMix64(seed: 0xF00D)
        let seeds = [
            WireMessage.encode(WireSamples.push), WireMessage.encode(WireSamples.pullResponse),
            WireMessage.encode(WireSamples.big(300)), WireMessage.encode(WireSamples.pushResponse),
        ]
        var accepted = 0
        for round in 0..<20_000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[index] ^= UInt8.random(in: 1...255, using: &random)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
                }
            }
            if (try? WireMessage.decode(PushRequest.self, from: bytes)) != nil { accepted += 1 }
            if (try? WireMessage.decode(PullResponse.self, from: bytes)) != nil { accepted += 1 }
        }
        #expect(accepted < 20_000)
    }

    @Test func goldenFrames() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/wire")
        let samples: [(String, [UInt8])] = [
            ("PushRequest", WireMessage.encode(WireSamples.push)),
            ("PushResponse", WireMessage.encode(WireSamples.pushResponse)),
            ("PullRequest", WireMessage.encode(WireSamples.pullRequest)),
            ("PullResponse", WireMessage.encode(WireSamples.pullResponse)),
        ]
        for (name, bytes) in samples {
            let url = fixtures.appendingPathComponent("\(name).hex")
            let hex = bytes.map {
                String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
            }.joined()
            if ProcessInfo.processInfo.environment["WEFT_REGENERATE_FIXTURES"] == "1" {
                try (hex + "\n").write(to: url, atomically: true, encoding: .utf8)
            }
            let stored = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
            #expect(
                stored == hex,
                "\(name): the wire format changed; bump the frame or message version and regenerate")
        }
    }
}

private func varintLength(_ value: UInt64) -> Int {
    var writer = BinaryWriter()
    writer.writeVarint(value)
    return writer.bytes.count
}
