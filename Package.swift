// swift-tools-version:6.1
import PackageDescription

// Linux only (Debian 12 is what is built and tested): the storage and connector code use Glibc
// directly, so no Apple platform is declared.
//
// Dependencies point one way (each target imports only what is listed under it):
//   lifeboat (main)     → LifeboatCommands
//   LifeboatCommands    → LifeboatPlatform, LifeboatServer, LifeboatScheduler, LifeboatEngine, LifeboatConnectors,
//                         LifeboatRepository, LifeboatStorage, LifeboatCore   (flags → one use case → render)
//   LifeboatPlatform    → LifeboatEngine, LifeboatScheduler, LifeboatConnectors, LifeboatRepository, LifeboatStorage,
//                         LifeboatCore   (the application layer: use cases, scheduled jobs, store adapters, procedures)
//   LifeboatServer      → LifeboatCore
//   LifeboatEngine      → LifeboatRepository, LifeboatCore
//   LifeboatScheduler   → LifeboatRepository, LifeboatCore
//   LifeboatConnectors  → LifeboatRepository, LifeboatStorage, LifeboatCore
//   LifeboatRepository  → LifeboatStorage
//   LifeboatStorage, LifeboatCore → LifeboatErrors (the one error shape and the exit statuses)
//   LifeboatTesting     → LifeboatConnectors, LifeboatStorage (test support only)
// The engine never imports a concrete connector: the application layer (LifeboatPlatform) wires
// connectors into it, and the commands never hold a backup or restore procedure of their own.
// docs/architecture.md walks the graph.
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
        // The scheduler's metrics: recorded through swift-metrics, rendered by swift-prometheus.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The one error shape every module's errors adopt, and the documented exit statuses.
        .target(name: "LifeboatErrors"),
        // Catalog model, validation and the restore plan: pure values, no I/O.
        .target(name: "LifeboatCore", dependencies: [
            "LifeboatErrors",
            .product(name: "Yams", package: "Yams"),
        ]),
        // Where repository objects live: the Backend protocol, local directory, memory.
        .target(name: "LifeboatStorage", dependencies: [
            "LifeboatErrors",
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
            "LifeboatErrors", "LifeboatStorage", "CZstd",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ]),
        // Whole-platform work: recovery points, the ordered restore with gates, drills, status.
        .target(name: "LifeboatEngine", dependencies: ["LifeboatErrors", "LifeboatCore", "LifeboatRepository"]),
        // What `lifeboat serve` runs on its own: schedules from the catalog's cadences, jobs with
        // history and a lease kept in the repository, metrics. Job bodies are injected closures, so
        // this target knows no connector and no engine.
        .target(name: "LifeboatScheduler", dependencies: [
            "LifeboatErrors", "LifeboatCore", "LifeboatRepository",
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        // PostgreSQL, OpenBao and etcd: backup into and restore from the repository, verify checks,
        // and local instances (drills and the demo start scratch servers; so do the tests).
        .target(name: "LifeboatConnectors", dependencies: [
            "LifeboatErrors", "LifeboatCore", "LifeboatRepository", "LifeboatStorage", "CZlib",
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
        // The application layer: each store's backup and restore procedure written once (guards,
        // set-aside and put-back, stop policy), catalog store → configured connector, and the use
        // cases (backup, restore, drill, status) the CLI and `serve` both call. No ArgumentParser.
        // Also the scheduled jobs `serve` runs: the scheduler's job bodies are these use cases.
        .target(name: "LifeboatPlatform", dependencies: [
            "LifeboatErrors", "LifeboatCore", "LifeboatEngine", "LifeboatConnectors", "LifeboatRepository", "LifeboatStorage",
            "LifeboatScheduler",
        ]),
        // One file per command; output rendering; error → exit code.
        .target(name: "LifeboatCommands", dependencies: [
            "LifeboatErrors",
            "LifeboatPlatform",
            "LifeboatCore",
            "LifeboatServer",
            "LifeboatRepository",
            "LifeboatStorage",
            "LifeboatConnectors",
            "LifeboatEngine",
            "LifeboatScheduler",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "lifeboat", dependencies: ["LifeboatCommands"]),

        .testTarget(name: "LifeboatCoreTests", dependencies: ["LifeboatCore", "LifeboatTesting"]),
        .testTarget(name: "LifeboatRepositoryTests", dependencies: [
            "LifeboatRepository", "LifeboatStorage", "LifeboatTesting", "CZstd",
            .product(name: "Crypto", package: "swift-crypto"),
            // SpecReaderTests reads the format with the primitives alone (scrypt, zstd).
            .product(name: "CryptoExtras", package: "swift-crypto"),
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
        .testTarget(name: "LifeboatSchedulerTests", dependencies: [
            "LifeboatScheduler", "LifeboatCore", "LifeboatRepository", "LifeboatStorage", "LifeboatTesting",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .testTarget(name: "LifeboatServerTests", dependencies: [
            "LifeboatServer", "LifeboatCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "LifeboatCommandsTests", dependencies: [
            "LifeboatCommands", "lifeboat", "LifeboatConnectors", "LifeboatCore", "LifeboatEngine", "LifeboatErrors", "LifeboatPlatform", "LifeboatRepository",
            "LifeboatServer", "LifeboatStorage", "LifeboatTesting",
        ]),
    ]
)
