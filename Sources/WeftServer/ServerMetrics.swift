import CoreMetrics
import Hummingbird
import Prometheus
import Synchronization

/// The server's metrics, recorded through swift-metrics and exported at `/metrics` in the
/// Prometheus text format (swift-prometheus).
///
/// Each server keeps its own registry, so several servers in one process do not mix their
/// figures; when the app has bootstrapped `MetricsSystem`, every figure goes to its backend too.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let pushes: CoreMetrics.Counter
    let pulls: CoreMetrics.Counter
    let changesPushed: CoreMetrics.Counter
    let changesPulled: CoreMetrics.Counter
    let rejected: CoreMetrics.Counter
    let unauthorized: CoreMetrics.Counter
    let forbidden: CoreMetrics.Counter
    let clockSkew: CoreMetrics.Counter
    let hellos: CoreMetrics.Counter
    let forked: CoreMetrics.Counter
    let pushDuration: CoreMetrics.Timer
    let pullDuration: CoreMetrics.Timer
    /// Long-polls in progress (pulls with a wait, from their start to their answer).
    let longPolls: CoreMetrics.Meter
    /// Log entries the store removed because a newer entry of the same document superseded
    /// them (compaction), since the server started.
    let compactedEntries: CoreMetrics.Gauge
    /// Tombstones the store forgot (``TombstoneCollectingStore``), since the server started.
    let collectedTombstones: CoreMetrics.Gauge

    init() {
        let prometheus = PrometheusMetricsFactory(registry: registry)
        let factory = MultiplexMetricsHandler(factories: [prometheus, MetricsSystem.factory])
        pushes = CoreMetrics.Counter(label: "weft_pushes_total", factory: factory)
        pulls = CoreMetrics.Counter(label: "weft_pulls_total", factory: factory)
        changesPushed = CoreMetrics.Counter(label: "weft_changes_pushed_total", factory: factory)
        changesPulled = CoreMetrics.Counter(label: "weft_changes_pulled_total", factory: factory)
        rejected = CoreMetrics.Counter(label: "weft_requests_rejected_total", factory: factory)
        unauthorized = CoreMetrics.Counter(label: "weft_requests_unauthorized_total", factory: factory)
        forbidden = CoreMetrics.Counter(label: "weft_requests_forbidden_total", factory: factory)
        clockSkew = CoreMetrics.Counter(label: "weft_clock_skew_rejections_total", factory: factory)
        hellos = CoreMetrics.Counter(label: "weft_hellos_total", factory: factory)
        forked = CoreMetrics.Counter(label: "weft_forked_replicas_total", factory: factory)
        pushDuration = CoreMetrics.Timer(label: "weft_push_duration_seconds", factory: factory)
        pullDuration = CoreMetrics.Timer(label: "weft_pull_duration_seconds", factory: factory)
        longPolls = CoreMetrics.Meter(label: "weft_long_polls_waiting", factory: factory)
        compactedEntries = CoreMetrics.Gauge(label: "weft_log_entries_compacted", factory: factory)
        collectedTombstones = CoreMetrics.Gauge(label: "weft_tombstones_collected", factory: factory)
    }

    enum Event { case pushes, pulls, changesPushed, changesPulled, rejected, unauthorized, forbidden, clockSkew, hellos, forked }

    func count(_ event: Event, by amount: Int = 1) {
        let counter: CoreMetrics.Counter
        switch event {
        case .pushes: counter = pushes
        case .pulls: counter = pulls
        case .changesPushed: counter = changesPushed
        case .changesPulled: counter = changesPulled
        case .rejected: counter = rejected
        case .unauthorized: counter = unauthorized
        case .forbidden: counter = forbidden
        case .clockSkew: counter = clockSkew
        case .hellos: counter = hellos
        case .forked: counter = forked
        }
        counter.increment(by: amount)
    }

    func record(_ timer: CoreMetrics.Timer, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        timer.recordNanoseconds(seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
    }

    func render() -> String { registry.emitToString() }
}
