import WeftCRDT

/// An error from a replica, its storage or its queue.
///
/// Every error says what happened and leaves the replica as it was: a write that throws has
/// changed neither the document nor the queue.
public struct WeftError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of error, for `switch` and for metrics.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// An argument was out of range or malformed.
        public static let invalidArgument = Kind(name: "invalidArgument")
        /// The write would take the queue past `max_queue_bytes`.
        public static let queueFull = Kind(name: "queueFull")
        /// `create` found a live document with that id.
        public static let documentExists = Kind(name: "documentExists")
        /// `update` found no live document with that id.
        public static let documentNotFound = Kind(name: "documentNotFound")
        /// The database was written by a newer version of Weft.
        public static let schemaTooNew = Kind(name: "schemaTooNew")
        /// Stored bytes failed to decode or the database is damaged.
        public static let corrupt = Kind(name: "corrupt")
        /// The storage engine failed (I/O, disk full, locking).
        public static let storage = Kind(name: "storage")
        /// A typed document could not be mapped to or from a CRDT document.
        public static let mapping = Kind(name: "mapping")
        /// The replica was closed.
        public static let closed = Kind(name: "closed")
        /// A write-through write was not confirmed by the server in time and its collection's
        /// fallback is to roll it back: the document is as it was before the write.
        public static let writeNotConfirmed = Kind(name: "writeNotConfirmed")
        /// A push's session is not the replica's current one on the server (the file was
        /// restored, copied, or lost its last commits, and another copy spoke since): nothing
        /// was applied; the replica must say hello again, and take a new identity.
        public static let forked = Kind(name: "forked")
        /// A push's records may hold documents whose deletions the server forgot (it collected
        /// their tombstones after the cursor the push names, or the push names none): nothing
        /// was applied; the replica must resync.
        public static let tooFarBehind = Kind(name: "tooFarBehind")
    }

    /// The kind of error.
    public let kind: Kind
    /// A human-readable explanation.
    public let message: String
    /// For ``Kind/queueFull``: the queue's size in bytes when the write was refused.
    public let queueBytes: Int?
    /// For ``Kind/queueFull``: the configured limit.
    public let queueLimit: Int?

    init(_ kind: Kind, _ message: String, queueBytes: Int? = nil, queueLimit: Int? = nil) {
        self.kind = kind
        self.message = message
        self.queueBytes = queueBytes
        self.queueLimit = queueLimit
    }

    public static func invalidArgument(_ message: String) -> WeftError { WeftError(.invalidArgument, message) }

    /// The write needs `needed` more bytes but the queue holds `current` of `limit`.
    public static func queueFull(current: Int, needed: Int, limit: Int) -> WeftError {
        WeftError(
            .queueFull,
            "the offline queue holds \(current) bytes; this write needs \(needed) more, past max_queue_bytes = \(limit)",
            queueBytes: current, queueLimit: limit)
    }

    public static func documentExists(_ key: DocumentKey) -> WeftError { WeftError(.documentExists, "\(key) already exists") }
    public static func documentNotFound(_ key: DocumentKey) -> WeftError { WeftError(.documentNotFound, "\(key) does not exist") }
    public static func schemaTooNew(_ message: String) -> WeftError { WeftError(.schemaTooNew, message) }
    public static func corrupt(_ message: String) -> WeftError { WeftError(.corrupt, message) }
    public static func storage(_ message: String) -> WeftError { WeftError(.storage, message) }
    public static func mapping(_ message: String) -> WeftError { WeftError(.mapping, message) }
    public static func closed() -> WeftError { WeftError(.closed, "the replica is closed") }
    public static func writeNotConfirmed(_ message: String) -> WeftError { WeftError(.writeNotConfirmed, message) }
    public static func forked(_ message: String) -> WeftError { WeftError(.forked, message) }
    public static func tooFarBehind(_ message: String) -> WeftError { WeftError(.tooFarBehind, message) }

    public var description: String { "\(kind): \(message)" }
}
