// Whole messages: envelope, frame and limits.

import WeftCRDT

/// Encoding and decoding of whole messages: envelope, frame and limits.
public enum WireMessage {
    /// The framed bytes of `message`, compressed when that helps unless `compressing` is false
    /// (for a peer without zstd).
    public static func encode<M: BinaryCodable>(_ message: M, compressing: Bool = true) -> [UInt8] {
        WireFrame.encode(BinaryFormat.encode(message), compressing: compressing)
    }

    /// Decodes a framed message, enforcing `limits` on the frame, the decompressed payload, the
    /// number of changes and the CRDT payloads.
    public static func decode<M: BinaryCodable>(_ type: M.Type, from frame: [UInt8], limits: WireLimits = .default)
        throws(WireError) -> M
    {
        let payload = try WireFrame.decode(frame, limits: limits)
        let message: M
        do {
            message = try BinaryFormat.decode(M.self, from: payload, limits: limits.decoding)
        } catch {
            // Over a limit (the input size, the nesting depth): too large. Anything else,
            // including a length or count the message does not hold: malformed.
            throw error.kind == "tooLarge" || error.kind == "nestingTooDeep" ? .tooLarge("message: \(error)") : .malformed("message: \(error)")
        }
        let changes: Int
        switch message {
        case let push as PushRequest: changes = push.changes.count
        case let page as PullResponse: changes = page.changes.count
        default: changes = 0
        }
        guard changes <= limits.maximumChanges else {
            throw .tooLarge("\(changes) changes in one message, over the limit of \(limits.maximumChanges)")
        }
        return message
    }
}

extension BinaryReader {
    /// Reads a trailing flags byte: 0 if the message ends here; else a byte with some of the
    /// bits of `allowed` set and no other, or ``WeftCRDT/CodecError`` *non-canonical* (a byte
    /// of 0 too: it is left out). Fields added to a message after its first release travel
    /// this way, so older peers' messages still read; a peer that predates a flag refuses it.
    mutating func readTrailingFlags(_ name: String, allowed: UInt8) throws(CodecError) -> UInt8 {
        guard !isAtEnd else { return 0 }
        let start = offset
        let flags = try readByte()
        guard flags != 0, flags & ~allowed == 0 else {
            throw .nonCanonical(at: start, "the \(name) flags are a byte of bits \(allowed), present only if one is set")
        }
        return flags
    }
}
