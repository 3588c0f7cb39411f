// MapMerge100k: replica A builds an LWWMap<String, Int64> with keys "k0"..."k99999" = i and
// encodes it; replica B concurrently set the same keys = i + 1.
// "MapMerge100k": measured, B (a fresh copy, made outside the measurement) decodes A's bytes
// and merges them. "MapEncode100k": measured, A encodes its full state.
// Target: the encoding no larger than the peers' (loro ~1.09 MB).

import Benchmark
import WeftBenchWorkloads
import WeftCRDT

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident, .custom("encodedBytes")],
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 100
    )

    Benchmark("MapMerge100k", configuration: configuration) { benchmark, prepared in
        var b = try! MapWorkload.freshB(prepared)  // not measured
        benchmark.startMeasurement()
        try! MapWorkload.decodeAndMerge(prepared.aBytes, into: &b)
        benchmark.stopMeasurement()
        try! MapWorkload.verify(b, keys: prepared.keys)
        benchmark.measurement(.custom("encodedBytes"), prepared.aBytes.count)
    } setup: {
        MapWorkload.prepare(keys: WorkloadCounts.mapKeys)
    }

    Benchmark("MapEncode100k", configuration: configuration) { benchmark, prepared in
        benchmark.startMeasurement()
        let bytes = MapWorkload.encode(prepared.a)
        benchmark.stopMeasurement()
        blackHole(bytes)
        benchmark.measurement(.custom("encodedBytes"), bytes.count)
    } setup: {
        MapWorkload.prepare(keys: WorkloadCounts.mapKeys)
    }
}
