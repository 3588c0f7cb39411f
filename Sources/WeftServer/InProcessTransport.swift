import Weft
import WeftCRDT
import WeftWire

/// A transport that calls a ``SyncService`` in the same process, through the real wire format:
/// every request and response is framed, encoded and decoded with the receiver's limits.
///
/// Tests use it in place of HTTP; a `postgres://` endpoint will use it to run the same service
/// straight on the PostgreSQL store.
public struct InProcessTransport: SyncTransport {
    /// The service.
    public let service: SyncService
    /// The database (tenant) this replica syncs with.
    public let database: String
    /// Limits applied to every message, as a server would.
    public let limits: WireLimits
    /// The channels the replica may read, as its token's grant would say.
    public var readable: ChannelGrant
    /// The channels the replica may write.
    public var writable: ChannelGrant

    /// Creates a transport.
    public init(
        service: SyncService, database: String, limits: WireLimits = .default, readable: ChannelGrant = .all,
        writable: ChannelGrant = .all
    ) {
        self.service = service
        self.database = database
        self.limits = limits
        self.readable = readable
        self.writable = writable
    }

    private func roundTrip<M: BinaryCodable>(_ message: M) throws(SyncError) -> M {
        do {
            return try WireMessage.decode(M.self, from: WireMessage.encode(message), limits: limits)
        } catch {
            throw SyncError(error.isTooLarge ? .rejected : .badResponse, "\(error)")
        }
    }

    public func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse {
        let received = try roundTrip(request)
        let answer = try await service.hello(database: database, received)
        var returned = try roundTrip(answer)
        returned.receipt = answer.receipt  // beside the body, as over HTTP
        return returned
    }

    public func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        var received = try roundTrip(request)
        received.expectedAppliedThrough = request.expectedAppliedThrough  // beside the body, as over HTTP
        received.pulledThrough = request.pulledThrough
        received.receipt = request.receipt
        let answer = try await service.push(database: database, received, readable: readable, writable: writable)
        var returned = try roundTrip(answer)
        returned.receipt = answer.receipt
        return returned
    }

    public func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        let received = try roundTrip(request)
        return try roundTrip(try await service.pull(database: database, received, readable: readable))
    }
}
