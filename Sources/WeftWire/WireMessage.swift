// Whole messages: envelope, frame and limits.

import WeftCRDT

/// Encoding and decoding of whole messages: envelope, frame and limits.
public enum WireMessage {
    /// The framed bytes of `message`.
    public static func encode<M: BinaryCodable>(_ message: M) -> [UInt8] {
        WireFrame.encode(BinaryFormat.encode(message))
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
    /// Reads a trailing flag: `true` if a byte `01` follows, `false` if the message ends here;
    /// any other byte is ``WeftCRDT/CodecError`` *non-canonical*. Fields added to a message
    /// after its first release travel this way, so older peers' messages still read.
    mutating func readTrailingFlag(_ name: String) throws(CodecError) -> Bool {
        guard !isAtEnd else { return false }
        let start = offset
        guard try readByte() == 1 else { throw .nonCanonical(at: start, "the \(name) flag is 01 or absent") }
        return true
    }
}
