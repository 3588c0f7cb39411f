import WeftCRDT

/// A change to one document, delivered to observers of a replica.
public struct ReplicaChange: Hashable, Sendable {
    /// Where the change came from.
    public enum Origin: Hashable, Sendable {
        /// A write on this replica.
        case local
        /// A change pulled from the server.
        case remote
    }

    /// The document changed.
    public let key: DocumentKey
    /// Where the change came from.
    public let origin: Origin
    /// Whether the document is now deleted.
    public let isDeleted: Bool
    /// The stamp of the change.
    public let stamp: HLCTimestamp
}
