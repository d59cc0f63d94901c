import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository

extension RepositoryOptions {
    /// The catalog (loaded once), the repository and the connectors, for the whole-platform commands.
    /// `damaged`: how a command that chooses data (restore, drill) treats damaged snapshots and points.
    func platformContext(damaged: DamagedChoiceOptions? = nil) async throws -> PlatformContext {
        guard let resolver = try storeResolver() else {
            throw CommandFailure(.usage, "this command needs the catalog: pass --catalog, set LIFEBOAT_CATALOG, or run it where \(CatalogLocation.defaultPath) is")
        }
        let repository = try await open(resolver: resolver)
        return PlatformContext(resolver: resolver, repository: damaged.map { $0.applied(to: repository) } ?? repository,
                               repositoryArguments: try childArguments())
    }
}

/// `--point ID | --latest | --time T`: which data a restore or drill brings back.
struct SelectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The recovery point (an id or a unique prefix; see `lifeboat points`).", valueName: "id"))
    var point: String?

    @Flag(help: "Every store at the newest state it can reach under the consistency rule (the default): its newest snapshot, or the end of its archived WAL.")
    var latest = false

    @Option(help: ArgumentHelp("Every store as it was at this instant (RFC 3339): point-in-time where WAL allows, else each store's newest snapshot before it; `now` or `latest` is --latest.", valueName: "time"))
    var time: String?

    @OptionGroup var damaged: DamagedChoiceOptions

    @Option(name: .customLong("snapshot"), help: ArgumentHelp("Pin a store to a snapshot, e.g. openbao=3fa9c2d1; the stores that depend on it follow it back in time.", valueName: "store=id"))
    var pins: [String] = []

    func selection() throws -> RestoreSelection {
        let given = [point != nil, latest, time != nil].filter { $0 }.count
        guard given <= 1 else { throw CommandFailure(.usage, "give one of --point, --latest and --time") }
        if let point { return .point(point) }
        if let time, ["now", "latest"].contains(time.lowercased()) {
            // Nothing newer than what the repository holds can come back: "now" is the newest data.
            return .latest
        }
        if let time {
            guard let instant = SourceTime.parse(time) else { throw CommandFailure(.usage, "--time takes an RFC 3339 time such as 2026-11-23T10:15:00Z, not \(time)") }
            return .time(instant)
        }
        return .latest
    }

    func overrides() throws -> [String: String] {
        var result: [String: String] = [:]
        for pin in pins {
            let parts = pin.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw CommandFailure(.usage, "--snapshot takes store=id, not \(pin)") }
            result[parts[0]] = parts[1]
        }
        return result
    }
}
