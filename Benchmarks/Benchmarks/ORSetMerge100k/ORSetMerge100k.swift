// ORSetMerge100k: two replicas of one 100,000-element ORSet<Int64> (built on one replica,
// copied to the other) each remove a different random half (seeded). Measured: merging one
// into the other. The custom metric elementsPerSecond is
// the set size divided by the measured merge time.
// Target: >= 1,000,000 elements/s.

import Benchmark
import WeftBenchWorkloads
import WeftCRDT

let benchmarks: @Sendable () -> Void = {
    Benchmark(
        "ORSetMerge100k",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident, .custom("elementsPerSecond")],
            warmupIterations: 1,
            maxDuration: .seconds(10),
            maxIterations: 100
        )
    ) { benchmark, prepared in
        var left = prepared.left
        let clock = ContinuousClock()
        benchmark.startMeasurement()
        let start = clock.now
        ORSetWorkload.merge(prepared.right, into: &left)
        let elapsed = clock.now - start
        benchmark.stopMeasurement()
        try! ORSetWorkload.verify(left, prepared)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        benchmark.measurement(.custom("elementsPerSecond"), Int(Double(prepared.elements) / seconds))
    } setup: {
        ORSetWorkload.prepare(elements: WorkloadCounts.orsetElements)
    }
}
