import Logging
import Synchronization
import WeftCRDT
import WeftWire

// The session with a server and the replica's identities.
extension Replica {
    // MARK: Sessions and identity

    /// The handshake that opens this session with a server (`HelloRequest`, in WeftWire).
    public func helloRequest() async throws(WeftError) -> HelloRequest {
        let metadata = try await storage.metadata()
        return HelloRequest(
            replica: replicaID, confirmedEpoch: metadata.confirmedEpoch, epoch: sessionEpoch,
            acknowledgedThrough: metadata.acknowledgedThrough)
    }

    /// The server confirmed this session: it is recorded as the file's confirmed session, later
    /// edits are made as ``replicaID``, and the database's policies govern merges from now on.
    public func confirmSession(_ policies: ServerPolicies) async throws(WeftError) {
        let before = try indexDeclarations()
        learnedPolicies.withLock { $0 = policies }
        // Indexes hold what readers see: a field rule the server declares differently changes it.
        if try indexDeclarations() != before { try await declareIndexes() }
        guard !isVerified else { return }
        try await exclusively { () async throws(WeftError) in
            try await storage.saveConfirmedEpoch(sessionEpoch)
            isVerified = true
            if writerID != replicaID {
                writerID = replicaID
                clock = HybridLogicalClock(
                    replica: writerID, resumingAfter: clock.last, timeSource: timeSource,
                    maximumForwardDrift: configuration.maximumClockDrift)
            }
        }
        for (collection, declared) in policies.collections.sorted(by: { $0.key < $1.key }) {
            if let configured = configuration.collectionPolicies[collection], configured != declared {
                logger.warning(
                    "the server declares another policy for a collection than this replica's configuration; the server's applies",
                    metadata: ["collection": "\(collection)", "server": "\(declared)", "configured": "\(configured)"])
            }
        }
        let missing = policies.resolverNames.filter { resolvers[$0] == nil }
        if !missing.isEmpty {
            logger.error(
                "the server names custom resolvers this replica does not have: their siblings stay readable (as their join) and writable",
                metadata: ["resolvers": "\(missing.joined(separator: ", "))"])
        }
    }

    /// The server found this file forked: another copy of it (a backup it was restored from, a
    /// copy on another device) spoke to the server since its last confirmed session. The replica
    /// takes a new identity, so nothing it sends can be taken for the other copy's history; its
    /// queued changes go out under the new identity. Edits of this session were made with a
    /// session identity (``writerID``) and need nothing.
    public func takeNewIdentity() async throws(WeftError) {
        try await exclusively { () async throws(WeftError) in
            let old = replicaID
            let fresh = ReplicaID.random()
            try await storage.replaceIdentity(with: fresh)
            identity.withLock { $0 = fresh }
            formerIdentitiesBox.withLock { $0 = Array(($0 + [old]).suffix(64)) }
            isVerified = false
            logger.warning(
                "this replica's file is not the latest copy of its history (restored, copied, or its last commits lost): new identity",
                metadata: ["old": "\(old)", "new": "\(fresh)"])
        }
    }
}
