// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Weft",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18), .watchOS(.v11), .visionOS(.v2)],
    products: [
        .library(name: "WeftCRDT", targets: ["WeftCRDT"]),
        .library(name: "WeftTesting", targets: ["WeftTesting"]),
        .executable(name: "weft-example-merge", targets: ["WeftExampleMerge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1")
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
            name: "DocExamplesTests",
            dependencies: [
                "WeftCRDT", "WeftTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
