// swift-tools-version: 6.1
// Weft's benchmarks, kept in a nested package so that the benchmark dependency never
// reaches users of Weft. Run from this directory:
//
//     swift package benchmark                         # ordo-one/benchmark suites
//     swift run -c release weft-bench-json            # JSON figures for ../Benchmarks/compare.py
import PackageDescription

let package = Package(
    name: "WeftBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft-bench-json", targets: ["WeftBenchJSON"])
    ],
    dependencies: [
        .package(name: "Weft", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The workloads, shared by the ordo-one suites and weft-bench-json so both measure the same thing.
        .target(
            name: "WeftBenchWorkloads",
            dependencies: [.product(name: "WeftCRDT", package: "Weft")]
        ),
        .executableTarget(
            name: "WeftBenchJSON",
            dependencies: ["WeftBenchWorkloads", .product(name: "WeftCRDT", package: "Weft")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// One ordo-one/benchmark executable per suite, under Benchmarks/<Name>/ as the plugin requires.
for name in ["B3", "MapMerge100k", "ORSetMerge100k", "ReplicaBaseline"] {
    package.targets.append(
        .executableTarget(
            name: name,
            dependencies: [
                "WeftBenchWorkloads",
                .product(name: "WeftCRDT", package: "Weft"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/\(name)",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}
