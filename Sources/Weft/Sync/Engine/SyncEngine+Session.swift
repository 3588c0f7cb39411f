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
            request.handlesChannels = true
            var response: HelloResponse?
            // A server older than one of the offers refuses the flags byte as malformed: say hello
            // as an older replica would (without channels, then without anything).
            for attempt in 0..<3 {
                do {
                    response = try await transport.hello(request)
                    break
                } catch  where error.kind == .rejected && attempt < 2 {
                    logger.info(
                        "the server refused a hello with the offers this replica makes; saying hello with fewer",
                        metadata: ["error": "\(error.message)"])
                    request.handlesChannels = false
                    if attempt == 1 {
                        request.offersDeltaPushes = false
                        request.handlesCollection = false
                    }
                }
            }
            guard let response else { throw SyncError(.badResponse, "hello: no answer") }
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
                        metadata: [
                            "acknowledged": "\(request.acknowledgedThrough)",
                            "server": "\(response.appliedThrough)",
                        ])
                    try await local { () async throws(WeftError) in try await replica.beginResync() }
                }
                declaredPolicies = policies
                serverTakesDeltaPushes = response.acceptsDeltaPushes
                serverCollectsTombstones = response.collectsTombstones
                serverFiltersChannels = response.filtersChannels
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
