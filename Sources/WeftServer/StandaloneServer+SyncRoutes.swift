import Hummingbird
import NIOCore
import ServiceLifecycle
import Weft
import WeftWire

// The replication routes: hello, push and pull over the Weft wire format (`Docs/Protocol.md`).
extension StandaloneServer {
    static func addSyncRoutes(
        to router: Router<BasicRequestContext>, service: SyncService, credentials: Credentials,
        limits: ServerLimits, metrics: ServerMetrics
    ) {
        let wireLimits = limits.wireLimits
        router.post("v1/:database/hello") { request, context -> Response in
            let database = try await authorize(
                request, context, credentials: credentials, needs: .read, metrics: metrics)
            var request = request
            let hello: HelloRequest = try await decode(&request, limits: wireLimits, metrics: metrics)
            do {
                let answer = try await service.hello(database: database, hello)
                metrics.count(.hellos)
                if answer.status == .forked { metrics.count(.forked) }
                var response = frame(answer, for: request)
                if let receipt = answer.receipt { response.headers[receiptHeader] = "\(receipt)" }
                return response
            } catch let error as SyncError {
                if error.kind == .rejected { metrics.count(.rejected) }
                throw HTTPError(
                    error.kind == .rejected ? .badRequest : .serviceUnavailable, message: error.message)
            }
        }
        router.post("v1/:database/push") { request, context -> Response in
            let (database, principal) = try await authorizePrincipal(
                request, context, credentials: credentials, needs: .write, metrics: metrics)
            var request = request
            var push: PushRequest = try await decode(&request, limits: wireLimits, metrics: metrics)
            if let expected = request.headers[expectHeader] {
                guard let value = UInt64(expected) else {
                    metrics.count(.rejected)
                    throw HTTPError(
                        .badRequest,
                        message:
                            "\(expectHeaderName) must be a decimal number, not \(expected.prefix(40).debugDescription)"
                    )
                }
                push.expectedAppliedThrough = value
            }
            if let pulled = request.headers[pulledHeader] {
                guard let value = UInt64(pulled) else {
                    metrics.count(.rejected)
                    throw HTTPError(
                        .badRequest,
                        message:
                            "\(pulledHeaderName) must be a decimal number, not \(pulled.prefix(40).debugDescription)"
                    )
                }
                push.pulledThrough = value
            }
            if let receipt = request.headers[receiptHeader] {
                guard let value = UInt64(receipt), value != 0 else {
                    metrics.count(.rejected)
                    throw HTTPError(
                        .badRequest,
                        message:
                            "\(receiptHeaderName) must be a decimal number above 0, not \(receipt.prefix(40).debugDescription)"
                    )
                }
                push.receipt = value
            }
            do {
                let started = ContinuousClock.now
                // A document over max_document_bytes is refused on its own, in the response.
                let response = try await service.push(
                    database: database, push, maximumDocumentBytes: limits.maxDocumentBytes,
                    readable: principal.readChannels, writable: principal.writeChannels)
                if !response.rejected.isEmpty { metrics.count(.rejected, by: response.rejected.count) }
                metrics.record(metrics.pushDuration, since: started)
                metrics.count(.pushes)
                metrics.count(.changesPushed, by: push.changes.count)
                var answer = frame(response, for: request)
                if let receipt = response.receipt {
                    answer.headers[previousReceiptHeader] = "\(receipt.previous)"
                    answer.headers[receiptHeader] = "\(receipt.current)"
                }
                return answer
            } catch let error as SyncError where error.kind == .clockSkew {
                // The replica's clock runs too far ahead: 409, with the server's time so the
                // replica can tell when its own clock is right again.
                metrics.count(.clockSkew)
                var headers = HTTPFields()
                headers[serverTimeHeader] = error.serverTimeMilliseconds.map { "\($0)" } ?? ""
                headers[clockSkewHeader] = error.maximumClockSkewMilliseconds.map { "\($0)" } ?? ""
                throw HTTPError(.conflict, headers: headers, message: error.message)
            } catch let error as SyncError where error.kind == .forked {
                // Another copy of the replica's file holds its session: 409, not about clocks.
                metrics.count(.forked)
                var headers = HTTPFields()
                headers[errorHeader] = "forked"
                throw HTTPError(.conflict, headers: headers, message: error.message)
            } catch let error as SyncError where error.kind == .deltaBaseUnknown {
                // A delta over a version this server no longer holds: 409, push those whole.
                var headers = HTTPFields()
                headers[errorHeader] = "delta-base"
                throw HTTPError(.conflict, headers: headers, message: error.message)
            } catch let error as SyncError where error.kind == .tooFarBehind {
                throw tooFarBehind(error)
            } catch let error as SyncError {
                metrics.count(.rejected)
                throw HTTPError(
                    error.kind == .rejected ? .badRequest : .serviceUnavailable, message: error.description)
            }
        }
        router.post("v1/:database/pull") { request, context -> Response in
            let (database, principal) = try await authorizePrincipal(
                request, context, credentials: credentials, needs: .read, metrics: metrics)
            var request = request
            let pull: PullRequest = try await decode(&request, limits: wireLimits, metrics: metrics)
            do {
                let started = ContinuousClock.now
                // A long-poll ends when its client closes the connection (the wait is cancelled),
                // and is answered at once when the server shuts down gracefully. Watching for the
                // close takes over the connection's input, so a long-poll's answer closes its
                // connection and says so (`Connection: close`); a pull without a wait keeps it.
                let page: PullResponse
                if pull.waitMilliseconds > 0 {
                    metrics.longPolls.increment()
                    defer { metrics.longPolls.decrement() }
                    page = try await request.body.consumeWithCancellationOnInboundClose { _ in
                        try await withGracefulShutdownHandler {
                            try await service.pull(database: database, pull, readable: principal.readChannels)
                        } onGracefulShutdown: {
                            Task { await service.beginShutdown() }
                        }
                    }
                } else {
                    page = try await service.pull(database: database, pull, readable: principal.readChannels)
                }
                if pull.waitMilliseconds == 0 { metrics.record(metrics.pullDuration, since: started) }
                metrics.count(.pulls)
                metrics.count(.changesPulled, by: page.changes.count)
                var response = frame(page, for: request)
                if pull.waitMilliseconds > 0 { response.headers[.connection] = "close" }
                return response
            } catch let error as SyncError where error.kind == .resync {
                // The cursor names a change this history does not hold: 410, and the replica resyncs.
                var headers = HTTPFields()
                headers[errorHeader] = "resync"
                throw HTTPError(.gone, headers: headers, message: error.message)
            } catch let error as SyncError where error.kind == .tooFarBehind {
                throw tooFarBehind(error)
            } catch let error as SyncError {
                if error.kind == .rejected { metrics.count(.rejected) }
                throw HTTPError(
                    error.kind == .rejected ? .badRequest : .serviceUnavailable, message: error.message)
            }
        }
    }
}
