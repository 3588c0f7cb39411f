import Foundation
import Synchronization
import WeftHTTPCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `URLSession` and the delegate that collects its answers: each exchange registers its task
/// here, the delegate appends the body as it arrives (cancelling the task past the limit) and
/// completes the exchange when the task ends.
final class URLSessionConnection: Sendable {
    /// Ephemeral: no cookies, no cache, no credentials kept.
    static var defaultConfiguration: URLSessionConfiguration {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpShouldSetCookies = false
        return configuration
    }

    private let session: URLSession
    private let collector: AnswerCollector

    init(configuration: URLSessionConfiguration) {
        collector = AnswerCollector()
        session = URLSession(configuration: configuration, delegate: collector, delegateQueue: nil)
    }

    deinit {
        // The session holds its delegate until invalidated.
        session.finishTasksAndInvalidate()
    }

    /// Sends `request` and collects the answer, within `deadline` and with a body of at most
    /// `limit` bytes. Cancelling the calling task cancels the request.
    func exchange(_ request: URLRequest, deadline: Duration, limit: Int) async throws(ExchangeFailure) -> SyncHTTPAnswer {
        let task = session.dataTask(with: request)
        let identifier = task.taskIdentifier
        let timer = Mutex<Task<Void, Never>?>(nil)
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<SyncHTTPAnswer, ExchangeFailure>, Never>) in
                collector.register(identifier, limit: limit, continuation: continuation)
                if Task.isCancelled {
                    collector.fail(identifier, .cancelled)
                    task.cancel()
                    return
                }
                task.resume()
                // The whole exchange's deadline (the request's own timeout counts idle time).
                let collector = self.collector
                timer.withLock {
                    $0 = Task {
                        try? await Task.sleep(for: deadline)
                        if !Task.isCancelled, collector.fail(identifier, .answerTimedOut) { task.cancel() }
                    }
                }
            }
        } onCancel: {
            if collector.fail(identifier, .cancelled) { task.cancel() }
        }
        timer.withLock { $0?.cancel() }
        return try outcome.get()
    }
}

/// The session's delegate: answers being collected, by task identifier.
final class AnswerCollector: NSObject, URLSessionDataDelegate, Sendable {
    struct Pending {
        var body = Data()
        let limit: Int
        let continuation: CheckedContinuation<Result<SyncHTTPAnswer, ExchangeFailure>, Never>
    }
    private let pending = Mutex<[Int: Pending]>([:])

    func register(
        _ identifier: Int, limit: Int, continuation: CheckedContinuation<Result<SyncHTTPAnswer, ExchangeFailure>, Never>
    ) {
        pending.withLock { $0[identifier] = Pending(limit: limit, continuation: continuation) }
    }

    /// Ends exchange `identifier` with `failure`, if it has not ended; says whether it had not
    /// (the caller then cancels the task).
    @discardableResult
    func fail(_ identifier: Int, _ failure: ExchangeFailure) -> Bool {
        guard let ended = pending.withLock({ $0.removeValue(forKey: identifier) }) else { return false }
        ended.continuation.resume(returning: .failure(failure))
        return true
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let over = pending.withLock { pending -> Int? in
            // Sizes only, then the append in place: a copy of the entry held here would make the
            // append copy the body received so far.
            guard let received = pending[dataTask.taskIdentifier]?.body.count, let limit = pending[dataTask.taskIdentifier]?.limit
            else { return nil }
            guard received + data.count <= limit else { return limit }
            pending[dataTask.taskIdentifier]?.body.append(data)
            return nil
        }
        if let over, fail(dataTask.taskIdentifier, .tooLarge(limit: over)) { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        guard let ended = pending.withLock({ $0.removeValue(forKey: task.taskIdentifier) }) else { return }
        if let error {
            ended.continuation.resume(returning: .failure(Self.failure(error)))
        } else if let response = task.response as? HTTPURLResponse {
            let headers = response.allHeaderFields.compactMap { name, value -> (String, String)? in
                guard let name = name as? String, let value = value as? String else { return nil }
                return (name, value)
            }
            ended.continuation.resume(returning: .success(SyncHTTPAnswer(status: response.statusCode, headers: headers, body: [UInt8](ended.body))))
        } else {
            ended.continuation.resume(returning: .failure(.other("the server's answer is not HTTP")))
        }
    }

    /// The failure a `URLError` stands for.
    static func failure(_ error: any Error) -> ExchangeFailure {
        guard let error = error as? URLError else { return .other("\(error)") }
        switch error.code {
        case .cannotConnectToHost: return .refused
        case .networkConnectionLost: return .reset
        case .timedOut: return .answerTimedOut
        case .cannotFindHost, .dnsLookupFailed: return .unresolved
        case .notConnectedToInternet: return .offline
        case .cancelled: return .cancelled
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
            .serverCertificateHasUnknownRoot, .clientCertificateRejected, .clientCertificateRequired:
            return .secureConnection
        default:
            return .other(error.localizedDescription)
        }
    }
}
