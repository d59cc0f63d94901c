// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way:
//   lifeboat (main) → LifeboatCommands → LifeboatServer → LifeboatCore
//                                      → LifeboatRepository → LifeboatStorage
let package = Package(
    name: "Lifeboat",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lifeboat", targets: ["lifeboat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Catalog model, validation and the restore plan: pure values, no I/O.
        .target(name: "LifeboatCore", dependencies: [
            .product(name: "Yams", package: "Yams"),
        ]),
        // Where repository objects live: the Backend protocol, local directory, memory.
        .target(name: "LifeboatStorage", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // zstd from Debian's libzstd-dev (scripts/setup installs it).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // The repository format: chunking, compression, encryption, keys, snapshots, verify.
        .target(name: "LifeboatRepository", dependencies: [
            "LifeboatStorage", "CZstd",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ]),
        // Test support: launchers for real servers (moto, PostgreSQL, OpenBao, etcd) that clean up by PID.
        .target(name: "LifeboatTesting", dependencies: ["LifeboatStorage"]),
        // The read-only HTTP API.
        .target(name: "LifeboatServer", dependencies: [
            "LifeboatCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // One file per command; output rendering; error → exit code.
        .target(name: "LifeboatCommands", dependencies: [
            "LifeboatCore",
            "LifeboatServer",
            "LifeboatRepository",
            "LifeboatStorage",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "lifeboat", dependencies: ["LifeboatCommands"]),

        .testTarget(name: "LifeboatCoreTests", dependencies: ["LifeboatCore", "LifeboatTesting"]),
        .testTarget(name: "LifeboatRepositoryTests", dependencies: ["LifeboatRepository", "LifeboatTesting"]),
        .testTarget(name: "LifeboatStorageTests", dependencies: ["LifeboatStorage", "LifeboatTesting"]),
        .testTarget(name: "LifeboatServerTests", dependencies: [
            "LifeboatServer",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "LifeboatCommandsTests", dependencies: ["LifeboatCommands", "lifeboat", "LifeboatTesting"]),
    ]
)
