// swift-tools-version: 6.1
// Weft's benchmarks, kept in a nested package so that the benchmark dependency never
// reaches users of Weft. Run from this directory:
//
//     swift package benchmark                         # ordo-one/benchmark suites
//     swift run -c release weft-bench-json            # JSON figures for ../Benchmarks/compare.py
//     swift run -c release weft-replica-bench         # JSON figures: replica against raw SQLite
//     swift run -c release weft-document-bench        # documents: edit, encode, decode, join
import PackageDescription

let package = Package(
    name: "WeftBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft-bench-json", targets: ["WeftBenchJSON"]),
        .executable(name: "weft-replica-bench", targets: ["WeftReplicaBenchCLI"]),
        .executable(name: "weft-document-bench", targets: ["WeftDocumentBench"]),
    ],
    dependencies: [
        .package(name: "Weft", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // The raw-SQLite baseline of the replica benchmarks (the same GRDB that WeftSQLite uses).
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
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
        .executableTarget(
            name: "WeftDocumentBench",
            dependencies: [.product(name: "WeftCRDT", package: "Weft")]
        ),
        // The replica workloads (Weft on SQLite against raw SQLite doing the same upserts), shared
        // by the ReplicaWrites suite and weft-replica-bench.
        .target(
            name: "WeftReplicaBench",
            dependencies: [
                .product(name: "Weft", package: "Weft"),
                .product(name: "WeftSQLite", package: "Weft"),
                .product(name: "WeftCRDT", package: "Weft"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Sources/WeftReplicaBench/Library"
        ),
        .executableTarget(
            name: "WeftReplicaBenchCLI",
            dependencies: ["WeftReplicaBench"],
            path: "Sources/WeftReplicaBench/CLI"
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

// The replica suite: Weft's SQLite replica against raw SQLite (see Sources/WeftReplicaBench).
package.targets.append(
    .executableTarget(
        name: "ReplicaWrites",
        dependencies: [
            "WeftReplicaBench",
            .product(name: "Benchmark", package: "benchmark"),
        ],
        path: "Benchmarks/ReplicaWrites",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
)

// weft-sync-bench: an offline queue replayed to a Standalone server on loopback, wire size
// against plain JSON, memory during the replay, and many replicas syncing at once (issue #4).
//
//     swift run -c release weft-sync-bench [--quick]
package.dependencies += [
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
]
package.products.append(.executable(name: "weft-sync-bench", targets: ["WeftSyncBench"]))
package.targets.append(
    .executableTarget(
        name: "WeftSyncBench",
        dependencies: [
            .product(name: "Weft", package: "Weft"),
            .product(name: "WeftSQLite", package: "Weft"),
            .product(name: "WeftServer", package: "Weft"),
            .product(name: "WeftHTTP", package: "Weft"),
            .product(name: "WeftURLSession", package: "Weft"),
            .product(name: "WeftWire", package: "Weft"),
            .product(name: "WeftCRDT", package: "Weft"),
            .product(name: "WeftPostgres", package: "Weft"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ],
        path: "Sources/WeftSyncBench"
    )
)

// weft-query-bench: queries, indexed writes and live queries against raw SQLite (issue #16).
//
//     swift run -c release weft-query-bench [--quick]
package.products.append(.executable(name: "weft-query-bench", targets: ["WeftQueryBench"]))
package.targets.append(
    .executableTarget(
        name: "WeftQueryBench",
        dependencies: [
            "WeftReplicaBench",
            .product(name: "Weft", package: "Weft"),
            .product(name: "WeftSQLite", package: "Weft"),
            .product(name: "WeftServer", package: "Weft"),
            .product(name: "WeftCRDT", package: "Weft"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ],
        path: "Sources/WeftQueryBench"
    )
)
