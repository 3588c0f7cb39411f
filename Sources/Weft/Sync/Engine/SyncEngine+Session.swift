import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// The handshake that opens a session: the server's policies, and a new identity for a forked file.
extension SyncEngine {
    /// Opens the session with the server if it is not open (``SyncTransport/hello(_:)``): learns
    /// the database's policies, and on a fork gives the replica a new identity first.
    public func openSession() async throws(SyncError) {
        guard !sessionOpen else { return }
        let replica = replica
        for _ in 0..<2 {
            var request = try await local { () async throws(WeftError) in try await replica.helloRequest() }
            request.offersDeltaPushes = true
            request.handlesCollection = true
            let response: HelloResponse
            do {
                response = try await transport.hello(request)
            } catch where error.kind == .rejected {
                // A server older than delta pushes refuses the offer's byte as malformed: say
                // hello as an older replica would, and push whole records.
                logger.info("the server refused a hello that offers delta pushes; saying hello without", metadata: ["error": "\(error.message)"])
                request.offersDeltaPushes = false
                request.handlesCollection = false
                response = try await transport.hello(request)
            }
            switch response.status {
            case .accepted:
                let policies: ServerPolicies
                do {
                    policies = try ServerPolicies(wire: response)
                } catch {
                    throw SyncError(.badResponse, "hello: \(error)")
                }
                try await local { () async throws(WeftError) in try await replica.confirmSession(policies) }
                if response.appliedThrough < request.acknowledgedThrough {
                    // The server applied less of this replica's queue than it acknowledged: it
                    // lost part of its history (restored from a backup). Resync on the next pull.
                    logger.warning(
                        "the server lost changes it had acknowledged (restored from a backup?): resyncing",
                        metadata: ["acknowledged": "\(request.acknowledgedThrough)", "server": "\(response.appliedThrough)"])
                    try await local { () async throws(WeftError) in try await replica.beginResync() }
                }
                declaredPolicies = policies
                serverTakesDeltaPushes = response.acceptsDeltaPushes
                serverCollectsTombstones = response.collectsTombstones
                confirmedMark = response.appliedThrough
                receipts = ReceiptChain(head: response.receipt)
                missingResolvers = policies.resolverNames.filter { replica.resolvers[$0] == nil }
                sessionOpen = true
                return
            case .forked:
                try await local { () async throws(WeftError) in try await replica.takeNewIdentity() }
            }
        }
        throw SyncError(.badResponse, "hello: the server called a new identity forked")
    }
}
