/// An error thrown when bytes cannot be decoded.
///
/// Decoding untrusted bytes either produces a valid value or throws this error; it never
/// traps and never runs for longer than linear time in the input. The ``offset`` says where
/// in the input the problem was found.
public struct CodecError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: String, Hashable, Sendable {
        case truncated, trailingBytes, unsupportedVersion, wrongTypeTag, invalidTag, malformedVarint
        case valueOutOfRange, invalidUTF8, invariantViolation, nonCanonical, nestingTooDeep, tooLarge
    }

    private let code: Code
    /// The byte offset at which decoding failed.
    public let offset: Int
    /// A human-readable explanation.
    public let detail: String

    private init(_ code: Code, _ offset: Int, _ detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    /// The input ended in the middle of a value.
    public static func truncated(at offset: Int, _ detail: String = "input ended early") -> CodecError {
        CodecError(.truncated, offset, detail)
    }
    /// Bytes remained after a complete value.
    public static func trailingBytes(at offset: Int, count: Int) -> CodecError {
        CodecError(.trailingBytes, offset, "\(count) unexpected bytes after the value")
    }
    /// The format version is not one this build reads.
    public static func unsupportedVersion(_ version: UInt8, at offset: Int) -> CodecError {
        CodecError(.unsupportedVersion, offset, "format version \(version) is not supported (this build reads \(BinaryFormat.version))")
    }
    /// The envelope names a different type than the one requested.
    public static func wrongTypeTag(expected: UInt8, found: UInt8, at offset: Int) -> CodecError {
        CodecError(.wrongTypeTag, offset, "expected type tag \(expected), found \(found)")
    }
    /// A tag inside the value is not one of the known ones.
    public static func invalidTag(_ tag: UInt64, at offset: Int, _ context: String) -> CodecError {
        CodecError(.invalidTag, offset, "unknown tag \(tag) for \(context)")
    }
    /// A variable-length integer was too long, overflowed or was not minimally encoded.
    public static func malformedVarint(at offset: Int) -> CodecError {
        CodecError(.malformedVarint, offset, "malformed variable-length integer")
    }
    /// A number does not fit the field it is read into.
    public static func valueOutOfRange(at offset: Int, _ detail: String) -> CodecError {
        CodecError(.valueOutOfRange, offset, detail)
    }
    /// A string was not valid UTF-8.
    public static func invalidUTF8(at offset: Int) -> CodecError {
        CodecError(.invalidUTF8, offset, "string is not valid UTF-8")
    }
    /// The bytes decode to a value that breaks one of its type's invariants.
    public static func invariantViolation(at offset: Int, _ detail: String) -> CodecError {
        CodecError(.invariantViolation, offset, detail)
    }
    /// The bytes are not the one canonical encoding of the value (for example, unsorted keys).
    public static func nonCanonical(at offset: Int, _ detail: String) -> CodecError {
        CodecError(.nonCanonical, offset, detail)
    }
    /// Values were nested deeper than ``DecodingLimits/maximumDepth``.
    public static func nestingTooDeep(at offset: Int, limit: Int) -> CodecError {
        CodecError(.nestingTooDeep, offset, "values nested deeper than \(limit) levels")
    }
    /// The input or a count in it exceeds a ``DecodingLimits`` bound or the bytes available.
    public static func tooLarge(at offset: Int, _ detail: String) -> CodecError {
        CodecError(.tooLarge, offset, detail)
    }

    /// The same error reported at another offset, for values decoded from a separate buffer.
    @usableFromInline
    func relocated(to offset: Int) -> CodecError { CodecError(code, offset, detail) }

    /// A stable name for the kind of error, such as `"truncated"`.
    public var kind: String { code.rawValue }

    public var description: String { "\(code.rawValue) at byte \(offset): \(detail)" }

    /// Whether two errors are of the same kind, regardless of offset and detail.
    public func isSameKind(as other: CodecError) -> Bool { code == other.code }
}
