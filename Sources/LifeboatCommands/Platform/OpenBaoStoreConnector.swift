import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The OpenBao connector as the engine sees it: the catalog's token, unseal keys and Transit token
/// resolved from their references, drills restored into a LocalOpenBao started for the purpose.
struct OpenBaoStoreConnector: StoreConnector {
    let catalogDirectory: URL

    func connector(_ store: Store) throws -> OpenBaoConnector {
        guard case .openbao(let connection)? = store.connection else {
            return try OpenBaoConnector(store: store, token: nil, unsealKeys: nil)
        }
        let token = try connection.token.map { try resolve($0, relativeTo: catalogDirectory) }
        // Keys that cannot be read are not an error here: a backup then records custody as
        // unverified, and a restore refuses a Shamir snapshot without them, naming the cause.
        let keys = connection.unsealKeys.flatMap { reference in
            (try? resolve(reference, relativeTo: catalogDirectory)).flatMap { try? UnsealKeyMaterial.parse($0, source: reference.description) }
        }
        let transitToken = try connection.transit?.token.map { try resolve($0, relativeTo: catalogDirectory) }
        var connector = try OpenBaoConnector(store: store, token: token, unsealKeys: keys, transitToken: transitToken)
        // The engine runs the gate itself, after the restore.
        connector.verify = []
        return connector
    }

    func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await connector(store).backup(into: repository, point: point, tags: tags)
    }

    /// Only snapshot times: no continuous archive.
    func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }

    func describe(_ request: StoreRestoreRequest) -> String {
        let custody = SealCustody(sourceFacts: request.snapshot.source)?.summary ?? "unknown custody"
        let index = request.snapshot.source["raft_index"] ?? "?"
        switch request.destination {
        case .scratch(let directory):
            return "start a fresh OpenBao under \(directory.path), force-restore raft snapshot \(request.snapshot.id.prefix(8)) (index \(index)), unseal with the source's keys (\(custody))"
        case .production(let force):
            let address = if case .openbao(let connection)? = request.store.connection { connection.address } else { "?" }
            return "force-restore raft snapshot \(request.snapshot.id.prefix(8)) (index \(index)) into \(address)\(force ? " (overwriting it: --force)" : " (refused if it is initialised: --force)"), unseal with the source's keys (\(custody))"
        }
    }

    func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        do {
            let connector = try connector(request.store)
            return await connector.preflight(request.snapshot, into: OpenBaoRestoreTarget(address: connector.address, token: connector.token, force: force))
        } catch {
            return ["cannot check the target: \(error)"]
        }
    }

    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let connector = try connector(request.store)
        switch request.destination {
        case .scratch(let directory):
            let seal: LocalOpenBao.Seal
            var transitSeal: TransitSealKey?
            if request.snapshot.source["seal_type"] == "transit" {
                // The scratch node is sealed by the key the snapshot records (the catalog's may have moved on since).
                guard let key = SealCustody(sourceFacts: request.snapshot.source)?.transit ?? connector.transit, let token = connector.transitToken else {
                    throw EngineError(.invalidArgument, "\(request.store.name) is transit-sealed: the catalog must name the Transit key and its token (connection.transit)")
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
struct RestoredOpenBao: RestoredStore {
    let connector: OpenBaoConnector
    let address: String
    let server: LocalOpenBao?
    /// The restore's credential-cutover checks (the connector runs no verify checks here), part of the gate.
    let cutover: [CheckResult]

    var target: String { address }

    /// The credential cutover, then the checks read with the connector's token: after a restore, the
    /// SOURCE's tokens are the ones that work.
    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await cutover + connector.runChecks(checks, against: address)
    }

    func release() async { server?.stop() }
}
