// A transport wrapper that times every push and pull and, when asked, tallies the bytes each
// push puts on the wire against the same changes as plain REST JSON.

import Foundation
import Synchronization
import Weft
import WeftCRDT
import WeftWire

/// Bytes of the pushes seen, in Weft's format and as the JSON a plain REST API would send.
struct WireTally: Sendable {
    var requests = 0
    var changes = 0
    /// `WireMessage.encode(request)`: the HTTP request bodies.
    var framedBytes = 0
    /// `BinaryFormat.encode(request)`: the message before the zstd frame.
    var payloadBytes = 0
    /// Requests that went out zstd-compressed (the rest were too small to gain).
    var compressedRequests = 0
    /// One JSON object per change, each with the replica id and a timestamp (REST, one change per call).
    var jsonPerChangeBytes = 0
    /// One JSON object per request: the replica id once, then the changes with their timestamps.
    var jsonBatchedBytes = 0
    /// The batched JSON bodies compressed with the same zstd level as the frames.
    var jsonBatchedZstdBytes = 0
}

/// What a ``MeasuringTransport`` saw; shared by every transport of a phase.
final class TransportRecorder: Sendable {
    struct State {
        var pushLatencies: [Double] = []
        /// When each push was on the wire (pushes overlap: the engine keeps two in flight).
        var pushIntervals: [Range<ContinuousClock.Instant>] = []
        var pullLatencies: [Double] = []
        var pushedChanges = 0
        var pulledChanges = 0
        var wire = WireTally()
    }

    let countWire: Bool
    let state = Mutex(State())

    init(countWire: Bool) { self.countWire = countWire }

    var snapshot: State { state.withLock { $0 } }
}

/// The seconds during which at least one of `intervals` was open (their union's length).
func secondsCovered(by intervals: [Range<ContinuousClock.Instant>]) -> Double {
    var total = 0.0
    var current: Range<ContinuousClock.Instant>?
    for interval in intervals.sorted(by: { $0.lowerBound < $1.lowerBound }) {
        if let open = current, interval.lowerBound <= open.upperBound {
            current = open.lowerBound..<max(open.upperBound, interval.upperBound)
        } else {
            if let open = current { total += seconds(open.upperBound - open.lowerBound) }
            current = interval
        }
    }
    if let open = current { total += seconds(open.upperBound - open.lowerBound) }
    return total
}

/// Wraps a transport: times `push` and `pull`, and tallies wire bytes if the recorder asks.
struct MeasuringTransport: SyncTransport {
    let base: any SyncTransport
    let recorder: TransportRecorder

    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await base.hello(request) }
    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        // Counting happens before the clock starts, so it never shows in the latencies.
        if recorder.countWire {
            let tally = Self.tally(request)
            recorder.state.withLock { state in
                state.wire.requests += 1
                state.wire.changes += tally.changes
                state.wire.framedBytes += tally.framedBytes
                state.wire.payloadBytes += tally.payloadBytes
                state.wire.compressedRequests += tally.compressedRequests
                state.wire.jsonPerChangeBytes += tally.jsonPerChangeBytes
                state.wire.jsonBatchedBytes += tally.jsonBatchedBytes
                state.wire.jsonBatchedZstdBytes += tally.jsonBatchedZstdBytes
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let response = try await base.push(request)
        let end = clock.now
        let elapsed = seconds(end - start)
        recorder.state.withLock { state in
            state.pushLatencies.append(elapsed)
            state.pushIntervals.append(start..<end)
            state.pushedChanges += request.changes.count
        }
        return response
    }

    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        let clock = ContinuousClock()
        let start = clock.now
        let response = try await base.pull(request)
        let elapsed = seconds(clock.now - start)
        recorder.state.withLock { state in
            state.pullLatencies.append(elapsed)
            state.pulledChanges += response.changes.count
        }
        return response
    }

    /// The bytes of one push in each format.
    static func tally(_ request: PushRequest) -> WireTally {
        var tally = WireTally()
        tally.requests = 1
        tally.changes = request.changes.count
        let framed = WireMessage.encode(request)
        tally.framedBytes = framed.count
        tally.payloadBytes = BinaryFormat.encode(request).count
        tally.compressedRequests = framed.count > 4 && framed[4] == 1 ? 1 : 0
        let replica = request.replica.description
        var batched = RESTJSON()
        batched.raw("{\"replica\":")
        batched.string(replica)
        batched.raw(",\"changes\":[")
        for (index, change) in request.changes.enumerated() {
            var single = RESTJSON()
            single.change(change, replica: replica)
            tally.jsonPerChangeBytes += single.bytes.count
            if index > 0 { batched.raw(",") }
            batched.change(change, replica: nil)
        }
        batched.raw("]}")
        tally.jsonBatchedBytes = batched.bytes.count
        // WireFrame.encode compresses with zstd level 3 when that is smaller; minus its header
        // this is what the JSON would cost with the same compression.
        tally.jsonBatchedZstdBytes = WireFrame.encode(batched.bytes).count
        return tally
    }
}

/// Compact JSON for a change, as a plain REST API would send it:
/// `{"replica":…,"collection":…,"id":…,"timestamp":<ms>,"fields":{…}}`.
struct RESTJSON {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(256) }

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0..<0x20: raw(String(format: "\\u%04x", byte))
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func scalar(_ value: Scalar) {
        switch value {
        case .null: raw("null")
        case .bool(let flag): raw(flag ? "true" : "false")
        case .int(let number): raw(String(number))
        case .double(let number): raw(number.isFinite ? "\(number)" : "null")
        case .string(let text): string(text)
        case .bytes(let data): string(Data(data).base64EncodedString())
        }
    }

    mutating func document(_ document: Document) {
        raw("{")
        for (index, field) in document.keys.enumerated() {
            if index > 0 { raw(",") }
            string(field)
            raw(":")
            if let value = document.scalar(field) {
                scalar(value)
            } else if let count = document.counter(field) {
                raw(String(count))
            } else if let elements = document.set(field) {
                raw("[")
                for (position, element) in elements.enumerated() {
                    if position > 0 { raw(",") }
                    scalar(element)
                }
                raw("]")
            } else if let nested = document.map(field) {
                self.document(nested)
            } else {
                raw("null")
            }
        }
        raw("}")
    }

    /// One change; `replica` nil leaves it out (it is said once per request).
    mutating func change(_ change: WireChange, replica: String?) {
        raw("{")
        if let replica {
            raw("\"replica\":")
            string(replica)
            raw(",")
        }
        raw("\"collection\":")
        string(change.key.collection)
        raw(",\"id\":")
        string(change.key.id)
        raw(",\"timestamp\":")
        raw(String(change.record.lastStamp.wallMilliseconds))
        if change.record.isDeleted { raw(",\"deleted\":true") }
        raw(",\"fields\":")
        document(change.record.body)
        raw("}")
    }
}

/// Counts the framed bytes of every push and every page.
final class WireCounter: SyncTransport {
    let base: any SyncTransport
    let pushed = Mutex(0)
    let pulled = Mutex(0)
    init(_ base: any SyncTransport) { self.base = base }
    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await base.hello(request) }
    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        let size = WireMessage.encode(request).count
        pushed.withLock { $0 += size }
        return try await base.push(request)
    }
    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        let page = try await base.pull(request)
        let size = WireMessage.encode(page).count
        pulled.withLock { $0 += size }
        return page
    }
    func reset() {
        pushed.withLock { $0 = 0 }
        pulled.withLock { $0 = 0 }
    }
}
