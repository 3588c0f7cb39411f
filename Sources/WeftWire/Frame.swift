#if canImport(CZstd)
    import CZstd
#endif
import WeftCRDT

/// Bounds applied to every frame and message received.
public struct WireLimits: Hashable, Sendable {
    /// The largest frame accepted, compressed, in bytes.
    public var maximumFrameBytes: Int
    /// Whether zstd frames are read: whether this build has zstd (settable, to test a receiver
    /// without it). Without, a zstd frame is ``WireError/unsupportedCodec(_:)``.
    package var decompresses = WireFrame.hasZstd
    /// The largest payload a frame may decompress to, in bytes: the cap that defuses
    /// decompression bombs.
    public var maximumDecompressedBytes: Int
    /// The most changes one push or pull message may carry.
    public var maximumChanges: Int
    /// Limits for decoding the CRDT payloads inside messages.
    public var decoding: DecodingLimits

    /// Creates limits.
    public init(
        maximumFrameBytes: Int = 16 << 20, maximumDecompressedBytes: Int = 64 << 20, maximumChanges: Int = 10_000,
        decoding: DecodingLimits = .default
    ) {
        self.maximumFrameBytes = maximumFrameBytes
        self.maximumDecompressedBytes = maximumDecompressedBytes
        self.maximumChanges = maximumChanges
        self.decoding = decoding
    }

    /// 16 MiB frames, 64 MiB decompressed, 10,000 changes per message.
    public static let `default` = WireLimits()
}

/// The frame around every message on the wire: a header, then the message bytes, compressed
/// with zstd when that makes them smaller.
///
/// Layout (see `Docs/Protocol.md`):
///
/// | bytes | field |
/// |---|---|
/// | 4 | magic `57 46 54 31` ("WFT1") |
/// | 1 | codec: `00` none, `01` zstd |
/// | varint | the payload's decompressed length |
/// | rest | the payload, raw or as exactly one zstd frame that declares its content size |
public enum WireFrame {
    static let magic: [UInt8] = [0x57, 0x46, 0x54, 0x31]
    /// Payloads smaller than this are sent raw: compressing them gains nothing.
    public static let compressionThreshold = 256

    /// Whether this build has zstd (the system libzstd, on Linux and other non-Apple platforms).
    /// Without it, frames are written raw, a zstd frame cannot be read, and clients ask servers
    /// for raw answers (the `Weft-Accept-Codec: none` header, `Docs/Protocol.md`).
    public static var hasZstd: Bool {
        #if canImport(CZstd)
            true
        #else
            false
        #endif
    }

    /// Frames `payload`, compressing it with zstd (level `level`) when that makes it smaller and
    /// `compressing` allows (it cannot without zstd).
    public static func encode(_ payload: [UInt8], compressionLevel level: Int32 = 3, compressing: Bool = true) -> [UInt8] {
        var header = BinaryWriter(reservingCapacity: 16)
        header.writeRaw(magic)
        if compressing, payload.count >= compressionThreshold, let compressed = compress(payload, level: level),
            compressed.count < payload.count
        {
            header.writeByte(1)
            header.writeVarint(UInt64(payload.count))
            return header.bytes + compressed
        }
        header.writeByte(0)
        header.writeVarint(UInt64(payload.count))
        return header.bytes + payload
    }

    /// Unframes and, if needed, decompresses a frame, enforcing `limits`.
    ///
    /// - Throws: ``WireError`` for a frame that is too large, malformed, or decompresses to more
    ///   than ``WireLimits/maximumDecompressedBytes`` (checked before any memory is allocated).
    public static func decode(_ frame: [UInt8], limits: WireLimits = .default) throws(WireError) -> [UInt8] {
        guard frame.count <= limits.maximumFrameBytes else {
            throw .tooLarge("frame of \(frame.count) bytes exceeds the limit of \(limits.maximumFrameBytes)")
        }
        guard frame.count >= 6, Array(frame[0..<4]) == magic else { throw .malformed("not a Weft frame (bad magic)") }
        var reader = BinaryReader(frame)
        let declared: UInt64
        let codec: UInt8
        do {
            _ = try reader.readRaw(4)
            codec = try reader.readByte()
            declared = try reader.readVarint()
        } catch {
            throw .malformed("frame header: \(error)")
        }
        guard declared <= UInt64(limits.maximumDecompressedBytes) else {
            throw .tooLarge("payload declares \(declared) bytes, over the limit of \(limits.maximumDecompressedBytes)")
        }
        let body = Array(frame[reader.offset...])
        switch codec {
        case 0:
            guard body.count == Int(declared) else {
                throw .malformed("payload is \(body.count) bytes but the header says \(declared)")
            }
            return body
        case 1:
            guard limits.decompresses else { throw .unsupportedCodec("a zstd frame, and this receiver has no zstd: send it raw") }
            return try decompress(body, expected: Int(declared))
        default:
            throw .malformed("unknown codec \(codec)")
        }
    }

    static func compress(_ input: [UInt8], level: Int32) -> [UInt8]? {
        #if canImport(CZstd)
            return compressWithZstd(input, level: level)
        #else
            return nil
        #endif
    }

    static func decompress(_ input: [UInt8], expected: Int) throws(WireError) -> [UInt8] {
        #if canImport(CZstd)
            return try decompressWithZstd(input, expected: expected)
        #else
            throw .unsupportedCodec("a zstd frame, and this build has no zstd (ask for raw frames with Weft-Accept-Codec: none)")
        #endif
    }

    #if canImport(CZstd)
    static func compressWithZstd(_ input: [UInt8], level: Int32) -> [UInt8]? {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                ZSTD_compress(target.baseAddress, bound, source.baseAddress, input.count, level)
            }
        }
        guard ZSTD_isError(written) == 0 else { return nil }
        output.removeLast(bound - written)
        return output
    }

    static func decompressWithZstd(_ input: [UInt8], expected: Int) throws(WireError) -> [UInt8] {
        let (contentSize, frameSize) = input.withUnsafeBytes { source in
            (ZSTD_getFrameContentSize(source.baseAddress, input.count), ZSTD_findFrameCompressedSize(source.baseAddress, input.count))
        }
        // ZSTD_CONTENTSIZE_UNKNOWN and _ERROR are the two largest values of the type.
        guard contentSize < UInt64.max - 1 else { throw .malformed("zstd frame without a valid content size") }
        guard contentSize == UInt64(expected) else {
            throw .malformed("zstd frame declares \(contentSize) bytes but the header says \(expected)")
        }
        guard ZSTD_isError(frameSize) == 0, frameSize == input.count else {
            throw .malformed("payload is not exactly one zstd frame")
        }
        var output = [UInt8](repeating: 0, count: expected)
        let produced = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                ZSTD_decompress(target.baseAddress, expected, source.baseAddress, input.count)
            }
        }
        guard ZSTD_isError(produced) == 0, produced == expected else {
            throw .malformed("zstd payload does not decompress to the declared size")
        }
        return output
    }
    #endif
}

/// An error decoding a frame or message from the wire.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable { case malformed, tooLarge, unsupportedCodec }
    private let code: Code
    /// What was wrong.
    public let message: String

    /// The bytes are not a valid frame or message.
    public static func malformed(_ message: String) -> WireError { WireError(code: .malformed, message: message) }
    /// The frame, its payload or a count in it exceeds a ``WireLimits`` bound.
    public static func tooLarge(_ message: String) -> WireError { WireError(code: .tooLarge, message: message) }

    /// The frame is compressed with a codec this receiver cannot read (zstd, in a build without
    /// it): HTTP 415, and the sender should send it raw.
    public static func unsupportedCodec(_ message: String) -> WireError { WireError(code: .unsupportedCodec, message: message) }

    /// Whether the input exceeded a limit (HTTP 413) rather than being malformed (HTTP 400).
    public var isTooLarge: Bool { code == .tooLarge }
    /// Whether the frame's codec is one this receiver cannot read (HTTP 415).
    public var isUnsupportedCodec: Bool { code == .unsupportedCodec }

    public var description: String { "\(code.rawValue): \(message)" }
}
