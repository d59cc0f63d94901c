import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The OpenBao connector as the engine sees it: the catalog's token, unseal keys and Transit token
/// resolved from their references, drills restored into a LocalOpenBao started for the purpose.
public struct OpenBaoStoreConnector: StoreConnector {
    let resolver: StoreResolver

    public init(resolver: StoreResolver) { self.resolver = resolver }

    func connector(_ store: Store) throws -> OpenBaoConnector {
        var connector = try resolver.openbao(store).connector
        // The engine runs the gate itself, after the restore.
        connector.verify = []
        return connector
    }

    public func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await connector(store).backup(into: repository, point: point, tags: tags)
    }

    /// Raft storage (what the snapshots need) and autopilot's view of the cluster's health.
    public func coverage(_ store: Store) async -> [String]? {
        guard let connector = try? connector(store) else { return nil }
        return try? await OpenBaoClient(address: connector.address).coverageProblems(token: connector.token)
    }

    /// Only snapshot times: no continuous archive.
    public func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }

    public func describe(_ request: StoreRestoreRequest) -> String {
        let custody = SealCustody(sourceFacts: request.snapshot.source)?.summary ?? "unknown custody"
        let index = OpenBaoFacts(request.snapshot).raftIndex.map(String.init) ?? "?"
        switch request.destination {
        case .scratch(let directory):
            return "start a fresh OpenBao under \(directory.path), force-restore raft snapshot \(request.snapshot.id.prefix(8)) (index \(index)), unseal with the source's keys (\(custody))"
        case .production(let force):
            let address = if case .openbao(let connection)? = request.store.connection { connection.address } else { "?" }
            return "force-restore raft snapshot \(request.snapshot.id.prefix(8)) (index \(index)) into \(address)\(force ? " (overwriting it: --force)" : " (refused if it is initialised: --force)"), unseal with the source's keys (\(custody))"
        }
    }

    public func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        do {
            let connector = try connector(request.store)
            return await connector.preflight(request.snapshot, into: OpenBaoRestoreTarget(address: connector.address, token: connector.token, force: force))
        } catch {
            return ["cannot check the target: \(error)"]
        }
    }

    public func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let connector = try connector(request.store)
        switch request.destination {
        case .scratch(let directory):
            let seal: LocalOpenBao.Seal
            var transitSeal: TransitSealKey?
            if OpenBaoFacts(request.snapshot).sealType == .transit {
                // The scratch node is sealed by the key the snapshot records (the catalog's may have moved on since).
                guard let key = SealCustody(sourceFacts: request.snapshot.source)?.transit ?? connector.transit, let token = connector.transitToken else {
                    throw PlatformError(.catalog, object: request.store.name, "\(request.store.name) is transit-sealed: the catalog must name the Transit key and its token (connection.transit)")
                }
                seal = .transit(key, token: token)
                transitSeal = key
            } else {
                seal = .shamir
            }
            let server = try await LocalOpenBao.start(in: directory, seal: seal)
            let report: OpenBaoRestoreReport
            do {
                // A scratch node is thrown away: no record of its bootstrap in the repository.
                report = try await connector.restore(request.snapshot, from: request.repository,
                                                     into: OpenBaoRestoreTarget(address: server.address, restart: { try await server.restart() },
                                                                                transitSeal: transitSeal, recordBootstrap: false))
            } catch {
                server.stop()
                throw error
            }
            return RestoredOpenBao(connector: connector, address: server.address, server: server, cutover: report.checks)
        case .production(let force):
            // The live target's own token (the catalog's), needed only to overwrite an initialised node.
            let target = OpenBaoRestoreTarget(address: connector.address, token: connector.token, force: force)
            let report = try await connector.restore(request.snapshot, from: request.repository, into: target)
            return RestoredOpenBao(connector: connector, address: connector.address, server: nil, cutover: report.checks)
        }
    }
}

/// An OpenBao after its restore; a drill's scratch server is stopped on release.
public struct RestoredOpenBao: RestoredStore {
    public let connector: OpenBaoConnector
    public let address: String
    public let server: LocalOpenBao?
    /// The restore's credential-cutover checks (the connector runs no verify checks here), part of the gate.
    public let cutover: [CheckResult]

    public var target: String { address }

    /// The credential cutover, then the checks read with the connector's token: after a restore, the
    /// SOURCE's tokens are the ones that work.
    public func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await cutover + connector.runChecks(checks, against: address)
    }

    public func release() async { server?.stop() }
}
