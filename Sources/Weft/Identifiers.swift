import WeftCRDT

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The name of a collection of documents, such as `"workOrders"`.
///
/// 1 to 128 bytes of ASCII letters, digits, `_`, `-` and `.`, so a name is safe in file names,
/// URLs and SQL identifiers alike.
public struct CollectionName: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The name.
    public let rawValue: String

    /// Validates and wraps a name.
    /// - Throws: ``WeftError/invalidArgument(_:)`` for an empty, long or non-ASCII name.
    public init(_ rawValue: String) throws(WeftError) {
        let bytes = rawValue.utf8
        guard (1...128).contains(bytes.count),
            bytes.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || byte == 0x5f || byte == 0x2d || byte == 0x2e
            })
        else {
            throw .invalidArgument("collection name must be 1–128 characters of A–Z, a–z, 0–9, '_', '-' or '.', got \(rawValue.debugDescription.prefix(140))")
        }
        self.rawValue = rawValue
    }

    public static func < (lhs: CollectionName, rhs: CollectionName) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// The identifier of a document within its collection.
///
/// 1 to 256 bytes of UTF-8 without control characters. Apps usually use UUIDs or natural keys.
public struct DocumentID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The identifier.
    public let rawValue: String

    /// Validates and wraps an identifier.
    /// - Throws: ``WeftError/invalidArgument(_:)`` for an empty, long or control-character identifier.
    public init(_ rawValue: String) throws(WeftError) {
        let count = rawValue.utf8.count
        // U+0000–U+001F and U+007F are single bytes in UTF-8; every byte of a longer sequence is
        // 0x80 or above, so scanning bytes finds exactly the control characters.
        guard (1...256).contains(count), !rawValue.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f })
        else {
            throw .invalidArgument("document id must be 1–256 bytes of UTF-8 without control characters, got \(rawValue.debugDescription.prefix(300))")
        }
        self.rawValue = rawValue
    }

    /// Identifiers are equal when their UTF-8 bytes are, as in the databases (Swift's `String`
    /// equality would call "é" and "e\u{301}" the same id, while SQLite and PostgreSQL store
    /// two rows).
    public static func == (lhs: DocumentID, rhs: DocumentID) -> Bool {
        var left = lhs.rawValue
        var right = rhs.rawValue
        return left.withUTF8 { a in
            right.withUTF8 { b in
                guard a.count == b.count else { return false }
                guard let x = a.baseAddress, let y = b.baseAddress else { return true }  // both empty
                return memcmp(x, y, a.count) == 0
            }
        }
    }
    public func hash(into hasher: inout Hasher) {
        var bytes = rawValue
        bytes.withUTF8 { utf8 in
            hasher.combine(utf8.count)
            hasher.combine(bytes: UnsafeRawBufferPointer(utf8))
        }
    }
    public static func < (lhs: DocumentID, rhs: DocumentID) -> Bool { lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8) }
    public var description: String { rawValue }
}

/// A document's address: its collection and identifier.
public struct DocumentKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The collection.
    public let collection: CollectionName
    /// The identifier within the collection.
    public let id: DocumentID

    /// Creates a key.
    public init(collection: CollectionName, id: DocumentID) {
        self.collection = collection
        self.id = id
    }

    public static func < (lhs: DocumentKey, rhs: DocumentKey) -> Bool {
        (lhs.collection, lhs.id) < (rhs.collection, rhs.id)
    }

    public var description: String { "\(collection)/\(id)" }
}
