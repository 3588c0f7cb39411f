// B3: 1,540 replicas (distinct random IDs, each with its own clock) concurrently set key "k"
// of an LWWMap<String, Int64> to their index and encode the delta. Measured: one replica
// decodes and merges all 1,540 updates. Target: mean encoded update <= 32 bytes.

import Benchmark
import WeftBenchWorkloads
import WeftCRDT

let benchmarks: @Sendable () -> Void = {
    Benchmark(
        "B3",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal, .peakMemoryResident, .custom("bytesPerUpdate")],
            warmupIterations: 3,
            maxDuration: .seconds(5),
            maxIterations: 1_000
        )
    ) { benchmark, prepared in
        let updates = prepared.updates
        benchmark.startMeasurement()
        let merged = try! B3Workload.decodeAndMergeAll(updates)
        benchmark.stopMeasurement()
        blackHole(try! B3Workload.verify(merged, replicas: updates.count))
        benchmark.measurement(.custom("bytesPerUpdate"), Int(prepared.meanBytesPerUpdate.rounded(.up)))
    } setup: {
        B3Workload.prepare(replicas: WorkloadCounts.b3Replicas)
    }
}
