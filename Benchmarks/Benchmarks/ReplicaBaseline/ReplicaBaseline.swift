// ReplicaBaseline: the fixed cost of one replica's life in B3: a random ReplicaID, its own
// HybridLogicalClock, one LWWMap write and the encoding of its delta. A baseline for the
// per-replica figures of the other suites.

import Benchmark
import WeftCRDT

let benchmarks: @Sendable () -> Void = {
    Benchmark(
        "ReplicaBaseline",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            scalingFactor: .kilo
        )
    ) { benchmark in
        for index in benchmark.scaledIterations {
            var clock = HybridLogicalClock(replica: ReplicaID.random())
            var map = LWWMap<String, Int64>()
            let delta = map.set("k", to: Int64(index), at: clock.now())
            blackHole(delta.encoded())
        }
    }
}
