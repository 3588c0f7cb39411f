import Observation
import WeftCRDT

/// The results of a live query as an observable model, for a SwiftUI view or any observer
/// (built on the Observation module, so it works on Linux too).
///
/// ```swift
/// @MainActor
/// func openOrders(_ replica: Replica) throws -> LiveQueryModel {
///     LiveQueryModel(try replica.collection("workOrders"), DocumentQuery(Field("status") == "open"))
/// }
/// ```
///
/// It starts following the query when created, updates ``documents`` on the main actor after
/// each change that alters them, and stops when released or ``stop()``ped. A failure stops it
/// and is kept in ``error``.
@MainActor
@Observable
public final class LiveQueryModel {
    /// The current results, in the query's order.
    public private(set) var documents: [(id: DocumentID, document: Document)] = []
    /// Whether the first results have arrived.
    public private(set) var isLoaded = false
    /// The error that stopped the model, if any.
    public private(set) var error: WeftError?
    /// How many times the results were replaced (the first results included).
    public private(set) var updates = 0

    @ObservationIgnored private var task: Task<Void, Never>?

    /// Starts following `query` on `collection`.
    public init(_ collection: ReplicaCollection, _ query: DocumentQuery) {
        let live = collection.live(query)
        task = Task { [weak self] in
            do {
                for try await page in live {
                    guard let self else { return }
                    self.documents = page.documents
                    self.isLoaded = true
                    self.updates += 1
                }
            } catch {
                self?.error = (error as? WeftError) ?? .storage("\(error)")
            }
        }
    }

    /// Stops following the query; the last results stay.
    public func stop() {
        task?.cancel()
        task = nil
    }

    isolated deinit {
        task?.cancel()
    }
}
