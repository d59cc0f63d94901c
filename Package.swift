// swift-tools-version:6.1
import PackageDescription

// Linux only (Debian 12 is what is built and tested): the storage and connector code use Glibc
// directly, so no Apple platform is declared.
//
// Dependencies point one way (each target imports only what is listed under it):
//   lifeboat (main)     → LifeboatCommands
//   LifeboatCommands    → LifeboatServer, LifeboatEngine, LifeboatConnectors, LifeboatRepository,
//                         LifeboatStorage, LifeboatCore
//   LifeboatServer      → LifeboatCore
//   LifeboatEngine      → LifeboatRepository, LifeboatCore
//   LifeboatConnectors  → LifeboatRepository, LifeboatStorage, LifeboatCore
//   LifeboatRepository  → LifeboatStorage
//   LifeboatStorage, LifeboatCore: no Lifeboat target
//   LifeboatTesting     → LifeboatConnectors, LifeboatStorage (test support only)
// The engine never imports a concrete connector: the commands wire connectors into it.
let package = Package(
    name: "Lifeboat",
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
        // Already in the graph through async-http-client; named here because the etcd connector
        // speaks etcd's snapshot RPC over HTTP/2 itself.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
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
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // zstd from Debian's libzstd-dev (scripts/setup installs it).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // zlib: the OpenBao connector checks raft snapshots (gzip tar) as they stream.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The repository format: chunking, compression, encryption, keys, snapshots, verify.
        .target(name: "LifeboatRepository", dependencies: [
            "LifeboatStorage", "CZstd",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ]),
        // Whole-platform work: recovery points, the ordered restore with gates, drills, status.
        .target(name: "LifeboatEngine", dependencies: ["LifeboatCore", "LifeboatRepository"]),
        // PostgreSQL, OpenBao and etcd: backup into and restore from the repository, verify checks,
        // and local instances (drills and the demo start scratch servers; so do the tests).
        .target(name: "LifeboatConnectors", dependencies: [
            "LifeboatCore", "LifeboatRepository", "LifeboatStorage", "CZlib",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
        ]),
        // Test support: moto, the seeded generator; re-exports the connectors' server launchers.
        .target(name: "LifeboatTesting", dependencies: ["LifeboatStorage", "LifeboatConnectors"]),
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
            "LifeboatConnectors",
            "LifeboatEngine",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "lifeboat", dependencies: ["LifeboatCommands"]),

        .testTarget(name: "LifeboatCoreTests", dependencies: ["LifeboatCore", "LifeboatTesting"]),
        .testTarget(name: "LifeboatRepositoryTests", dependencies: [
            "LifeboatRepository", "LifeboatStorage", "LifeboatTesting",
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Fixtures"]),  // read from the source tree by path (FixtureTests), not bundled
        .testTarget(name: "LifeboatStorageTests", dependencies: ["LifeboatStorage", "LifeboatTesting"]),
        .testTarget(name: "LifeboatConnectorsTests", dependencies: [
            "LifeboatConnectors", "LifeboatCore", "LifeboatRepository", "LifeboatStorage", "LifeboatTesting",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
        ]),
        .testTarget(name: "LifeboatEngineTests", dependencies: ["LifeboatEngine", "LifeboatCore", "LifeboatRepository", "LifeboatStorage", "LifeboatTesting"]),
        .testTarget(name: "LifeboatServerTests", dependencies: [
            "LifeboatServer", "LifeboatCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "LifeboatCommandsTests", dependencies: [
            "LifeboatCommands", "lifeboat", "LifeboatConnectors", "LifeboatCore", "LifeboatEngine", "LifeboatRepository",
            "LifeboatServer", "LifeboatStorage", "LifeboatTesting",
        ]),
    ]
)
