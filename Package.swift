// swift-tools-version: 6.1
import PackageDescription

/// Where WeftWire compresses frames with the system libzstd.
let zstdPlatforms: [Platform] = [.linux, .android, .windows, .openbsd]

let package = Package(
    name: "Weft",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "WeftCRDT", targets: ["WeftCRDT"]),
        .library(name: "WeftTesting", targets: ["WeftTesting"]),
        .library(name: "WeftWire", targets: ["WeftWire"]),
        .library(name: "Weft", targets: ["Weft"]),
        .library(name: "WeftSQLite", targets: ["WeftSQLite"]),
        .library(name: "WeftServer", targets: ["WeftServer"]),
        .library(name: "WeftHTTP", targets: ["WeftHTTP"]),
        // The client transport for apps: URLSession, no SwiftNIO (see the README's module graph).
        .library(name: "WeftURLSession", targets: ["WeftURLSession"]),
        .library(name: "WeftPostgres", targets: ["WeftPostgres"]),
        .executable(name: "weft", targets: ["WeftCLI"]),
        .executable(name: "weft-example-merge", targets: ["WeftExampleMerge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // `swift package generate-documentation` (scripts/build-docs.sh, `make docs`); no target depends on it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(name: "WeftCRDT"),
        .target(
            name: "WeftTesting",
            dependencies: [
                "WeftCRDT",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // The system zstd library (Debian: libzstd-dev), for wire compression.
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        // zstd where a system libzstd is at hand; Apple platforms have none, and their builds
        // send and ask for raw frames (`Weft-Accept-Codec: none`).
        .target(
            name: "WeftWire",
            dependencies: ["WeftCRDT", .target(name: "CZstd", condition: .when(platforms: zstdPlatforms))]
        ),
        .target(
            name: "Weft",
            dependencies: [
                "WeftCRDT", "WeftWire", .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "WeftSQLite",
            dependencies: [
                "Weft", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "WeftServer",
            dependencies: [
                "Weft", "WeftWire", "WeftCRDT", "WeftSQLite", .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The central store on PostgreSQL, and `postgres://` endpoints used as written.
        .target(
            name: "WeftPostgres",
            dependencies: [
                "Weft", "WeftCRDT", "WeftServer", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The sync protocol over HTTP apart from any HTTP client: requests, status codes, headers.
        .target(
            name: "WeftHTTPCore",
            dependencies: ["Weft", "WeftWire"]
        ),
        .target(
            name: "WeftHTTP",
            dependencies: [
                "Weft", "WeftWire", "WeftCRDT", "WeftHTTPCore", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "WeftURLSession",
            dependencies: ["Weft", "WeftWire", "WeftHTTPCore"]
        ),
        // The `weft` command. Its module is WeftCLI: a target named `weft` would clash with `Weft`
        // on case-insensitive file systems.
        .executableTarget(
            name: "WeftCLI",
            dependencies: [
                "Weft", "WeftCRDT", "WeftSQLite", "WeftServer", "WeftHTTP", "WeftPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A SQLite VFS that keeps unsynced writes in memory, so SIGKILL is a power cut (tests).
        .target(
            name: "WeftPowerLossVFS",
            path: "Tests/PowerLossVFS",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        // A child process for the crash tests: writes in a loop until killed.
        .executableTarget(
            name: "WeftCrashWriter",
            dependencies: ["Weft", "WeftSQLite", "WeftHTTP", "WeftPowerLossVFS"],
            path: "Tests/CrashWriter"
        ),
        .executableTarget(
            name: "WeftExampleMerge",
            dependencies: ["WeftCRDT"],
            path: "Examples/TwoReplicasMerge"
        ),
        .testTarget(
            name: "WeftCRDTTests",
            dependencies: [
                "WeftCRDT", "WeftTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "WeftTestingTests",
            dependencies: [
                "WeftCRDT", "WeftTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "WeftTests",
            dependencies: [
                "Weft", "WeftSQLite", "WeftCRDT", "WeftTesting", "WeftServer", "WeftWire", "WeftHTTP", "WeftPostgres",
                "WeftURLSession", "WeftHTTPCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(
            name: "WeftWireTests",
            dependencies: ["WeftWire", "WeftCRDT", "WeftTesting", .target(name: "CZstd", condition: .when(platforms: zstdPlatforms))]
        ),
        .testTarget(
            name: "DocExamplesTests",
            dependencies: [
                "WeftCRDT", "WeftTesting", "Weft", "WeftSQLite", "WeftServer", "WeftHTTP", "WeftPostgres", "WeftURLSession",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
