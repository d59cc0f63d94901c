/// The platform as declared in `lifeboat.yaml`: what is stored where, how it is backed up,
/// how urgent each store is to restore, and what is deliberately not backed up.
public struct Catalog: Sendable, Hashable {
    /// Format version of the catalog file; only 1 exists.
    public var version: Int
    public var platform: String?
    public var repository: RepositorySettings?
    public var stores: [Store]
    public var planes: [Plane]
    public var exclusions: [Exclusion]
    /// Drills the scheduler runs on their own cadence (`drills:`).
    public var drills: [DrillSchedule]
    /// The IANA time zone cron cadences are read in (`timezone: Europe/Berlin`); nil is UTC.
    public var timeZone: String?

    public init(
        version: Int = 1, platform: String? = nil, repository: RepositorySettings? = nil,
        stores: [Store], planes: [Plane] = [], exclusions: [Exclusion] = [], drills: [DrillSchedule] = [], timeZone: String? = nil
    ) {
        self.version = version
        self.platform = platform
        self.repository = repository
        self.stores = stores
        self.planes = planes
        self.exclusions = exclusions
        self.drills = drills
        self.timeZone = timeZone
    }

    public func store(named name: String) -> Store? { stores.first { $0.name == name } }
}

extension Store {
    /// The longest time data can go without a backup, when known: 0 with a continuous stream.
    public var longestBackupGap: TimeSpan? {
        if cadences.contains(.continuous) { return TimeSpan(seconds: 0) }
        return cadences.compactMap(\.longestGap).min()
    }

    /// `continuous + daily at 02:00`; nil without a cadence.
    public var cadenceSummary: String? {
        cadences.isEmpty ? nil : cadences.map(\.summary).joined(separator: " + ")
    }
}

/// What kind of system holds a store's data; decides which connector backs it up and restores it.
public enum StoreKind: String, Sendable, Hashable, CaseIterable, Codable {
    case postgres, openbao, etcd, s3, files, external

    /// Stores Lifeboat itself does not back up or restore (they live elsewhere, e.g. in git).
    public var isManual: Bool { self == .external }

    public var displayName: String {
        switch self {
        case .postgres: "PostgreSQL"
        case .openbao: "OpenBao"
        case .etcd: "etcd"
        case .s3: "S3 buckets"
        case .files: "files"
        case .external: "external"
        }
    }
}

/// Restore urgency: P0 first. Comparable so that `.p0 < .p1`.
public enum Priority: Int, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case p0 = 0, p1, p2, p3

    public init?(label: String) {
        guard let value = Self.allCases.first(where: { $0.description == label.uppercased() }) else { return nil }
        self = value
    }

    public var description: String { "P\(rawValue)" }
    public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One place durable state lives, and everything Lifeboat needs to know to protect it.
public struct Store: Sendable, Hashable {
    public var name: String
    public var kind: StoreKind
    /// How it is backed up, in words (e.g. "WAL archiving + nightly pg_basebackup").
    public var method: String
    /// When backups run; several for stores with more than one stream (WAL `continuous` + a nightly base backup).
    public var cadences: [Cadence]
    public var retention: Retention?
    public var priority: Priority
    public var dependsOn: [String]
    public var rpo: TimeSpan?
    public var rto: TimeSpan?
    public var verify: [VerifyCheck]
    public var connection: Connection?
    public var notes: String?
    /// Overrides the kind's default restore action text (required in spirit for `external` stores).
    public var action: String?
    /// False for stores restored outside the linear sequence (their `restore_step` is 0).
    public var inSequence: Bool

    public init(
        name: String, kind: StoreKind, method: String, cadences: [Cadence] = [], retention: Retention? = nil,
        priority: Priority, dependsOn: [String] = [], rpo: TimeSpan? = nil, rto: TimeSpan? = nil,
        verify: [VerifyCheck] = [], connection: Connection? = nil, notes: String? = nil,
        action: String? = nil, inSequence: Bool = true
    ) {
        self.name = name
        self.kind = kind
        self.method = method
        self.cadences = cadences
        self.retention = retention
        self.priority = priority
        self.dependsOn = dependsOn
        self.rpo = rpo
        self.rto = rto
        self.verify = verify
        self.connection = connection
        self.notes = notes
        self.action = action
        self.inSequence = inSequence
    }
}

/// How long backups are kept. Structured policies drive `prune`; `note` describes retention
/// that happens elsewhere (git history, a provider's own versioning).
public struct Retention: Sendable, Hashable, Codable {
    public var keepLast: Int?
    public var keepWithin: TimeSpan?
    public var keepHourly: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?
    public var keepYearly: Int?
    public var note: String?

    public init(
        keepLast: Int? = nil, keepWithin: TimeSpan? = nil, keepHourly: Int? = nil, keepDaily: Int? = nil,
        keepWeekly: Int? = nil, keepMonthly: Int? = nil, keepYearly: Int? = nil, note: String? = nil
    ) {
        self.keepLast = keepLast
        self.keepWithin = keepWithin
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case keepLast = "keep_last", keepWithin = "keep_within", keepHourly = "keep_hourly"
        case keepDaily = "keep_daily", keepWeekly = "keep_weekly", keepMonthly = "keep_monthly"
        case keepYearly = "keep_yearly", note
    }

    /// True when at least one policy would keep snapshots (a note alone is not a policy).
    public var hasPolicy: Bool {
        [keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly].contains { $0 != nil } || keepWithin != nil
    }

    /// `last 7, within 2d, 24 hourly, 7 daily` — or the note, for retention kept elsewhere.
    public var summary: String {
        var parts: [String] = []
        if let keepLast { parts.append("last \(keepLast)") }
        if let keepWithin { parts.append("within \(keepWithin)") }
        if let keepHourly { parts.append("\(keepHourly) hourly") }
        if let keepDaily { parts.append("\(keepDaily) daily") }
        if let keepWeekly { parts.append("\(keepWeekly) weekly") }
        if let keepMonthly { parts.append("\(keepMonthly) monthly") }
        if let keepYearly { parts.append("\(keepYearly) yearly") }
        var text = parts.isEmpty ? "" : "keep " + parts.joined(separator: ", ")
        if let note { text = text.isEmpty ? note : "\(text) (\(note))" }
        return text
    }
}

/// A check that proves a restore worked; in the plan it is the step's verification gate.
public enum VerifyCheck: Sendable, Hashable {
    /// OpenBao: the secret at `path` must read back (and contain `field`, when given).
    case openbaoRead(path: String, field: String?)
    /// PostgreSQL: `query` (in `database`, or the connection's) must return exactly `expect`.
    case sql(query: String, expect: String, database: String?)
    /// etcd: at least `minKeys` keys under `prefix`.
    case etcdPrefix(prefix: String, minKeys: Int)
    /// S3: the object must exist (in `bucket`, or the store's only bucket).
    case object(key: String, bucket: String?)
    /// files: the path must exist after the restore.
    case file(path: String)
    /// A check a person performs; printed in the plan, never run.
    case manual(String)

    /// The discriminating key of the check in YAML.
    public var keyword: String {
        switch self {
        case .openbaoRead: "read"
        case .sql: "sql"
        case .etcdPrefix: "prefix"
        case .object: "object"
        case .file: "file"
        case .manual: "manual"
        }
    }

    /// The check keywords a store kind accepts (`manual` always).
    public static func keywords(for kind: StoreKind) -> [String] {
        switch kind {
        case .openbao: ["read", "manual"]
        case .postgres: ["sql", "manual"]
        case .etcd: ["prefix", "manual"]
        case .s3: ["object", "manual"]
        case .files: ["file", "manual"]
        case .external: ["manual"]
        }
    }

    public var summary: String {
        switch self {
        case .openbaoRead(let path, let field):
            field.map { "read \(path) (field \($0))" } ?? "read \(path)"
        case .sql(let query, let expect, let database):
            "SQL \(database.map { "[\($0)] " } ?? "")`\(query)` = \(expect)"
        case .etcdPrefix(let prefix, let minKeys):
            "≥ \(minKeys) keys under \(prefix)"
        case .object(let key, let bucket):
            "object \(bucket.map { "\($0)/" } ?? "")\(key) exists"
        case .file(let path):
            "file \(path) exists"
        case .manual(let text):
            "manual: \(text)"
        }
    }
}

/// A reference to a secret held outside the catalog. The catalog never holds a secret itself.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    case environment(String)
    case file(String)

    /// Parses `env:NAME` or `file:/path`; nil for anything else (which may be a literal secret).
    public init?(reference text: String) {
        if text.hasPrefix("env:"), text.count > 4 {
            let name = String(text.dropFirst(4))
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else { return nil }
            self = .environment(name)
        } else if text.hasPrefix("file:"), text.count > 5 {
            self = .file(String(text.dropFirst(5)))
        } else {
            return nil
        }
    }

    /// The reference as written (`env:NAME`); it names where the secret is, never the secret.
    public var description: String {
        switch self {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        }
    }
}

/// How to reach a store; the shape depends on its kind. Secrets appear only as references.
public enum Connection: Sendable, Hashable {
    case postgres(PostgresConnection)
    case openbao(OpenBaoConnection)
    case etcd(EtcdConnection)
    case s3(S3Connection)
    case files(FilesConnection)
    case external(ExternalLocation)
}

public struct PostgresConnection: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: SecretReference?
    public var database: String?
    public var sslmode: String?
    /// Where a physical restore lays the server's data down (on the machine running `lifeboat
    /// restore`); without it a physical production restore is refused.
    public var dataDirectory: String?
    public init(host: String, port: Int = 5432, user: String? = nil, password: SecretReference? = nil, database: String? = nil, sslmode: String? = nil,
                dataDirectory: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslmode = sslmode
        self.dataDirectory = dataDirectory
    }
}

public struct OpenBaoConnection: Sendable, Hashable {
    public var address: String
    public var token: SecretReference?
    public var unsealKeys: SecretReference?
    public var caCert: String?
    /// The Transit key that seals this OpenBao, for transit-sealed clusters.
    public var transit: OpenBaoTransitSeal?
    public init(address: String, token: SecretReference? = nil, unsealKeys: SecretReference? = nil, caCert: String? = nil, transit: OpenBaoTransitSeal? = nil) {
        self.address = address
        self.token = token
        self.unsealKeys = unsealKeys
        self.caCert = caCert
        self.transit = transit
    }
}

/// An OpenBao `seal "transit"` stanza as the catalog records it: where the key lives and a token
/// reference allowed to encrypt and decrypt with it (checked before a restore).
public struct OpenBaoTransitSeal: Sendable, Hashable {
    public var address: String
    public var mount: String
    public var keyName: String
    public var token: SecretReference?
    public init(address: String, mount: String = "transit", keyName: String, token: SecretReference? = nil) {
        self.address = address
        self.mount = mount
        self.keyName = keyName
        self.token = token
    }
}

public struct EtcdConnection: Sendable, Hashable {
    public var endpoints: [String]
    public var username: String?
    public var password: SecretReference?
    /// The members a production restore recreates (their names, peer URLs and data directories on
    /// the machine running `lifeboat restore`); without them a production restore is refused.
    public var members: [EtcdMember]
    public var clusterToken: String?
    public init(endpoints: [String], username: String? = nil, password: SecretReference? = nil, members: [EtcdMember] = [], clusterToken: String? = nil) {
        self.endpoints = endpoints
        self.username = username
        self.password = password
        self.members = members
        self.clusterToken = clusterToken
    }
}

/// One member of an etcd cluster as a restore and a launch see it: its name, the peer URL the
/// others reach it on, and where its data lives (in the catalog: the members a production restore
/// recreates).
public struct EtcdMember: Sendable, Hashable, Codable {
    public var name: String
    public var peerURL: String
    public var dataDirectory: String

    public init(name: String, peerURL: String, dataDirectory: String) {
        self.name = name
        self.peerURL = peerURL
        self.dataDirectory = dataDirectory
    }

    enum CodingKeys: String, CodingKey { case name, peerURL = "peer_url", dataDirectory = "data_dir" }
}

/// Buckets on one S3-compatible endpoint (AWS when `endpoint` is absent).
public struct S3Connection: Sendable, Hashable {
    public var endpoint: String?
    public var region: String?
    public var buckets: [String]
    /// Only keys starting with one of these are backed up, in every bucket (all keys when empty).
    public var prefixes: [String]
    /// Both or neither; with neither, the environment's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    public var accessKeyID: SecretReference?
    public var secretAccessKey: SecretReference?
    public var pathStyle: Bool
    /// `versions: all`: every version of a versioned bucket (and its delete markers), not only the current ones.
    public var allVersions: Bool
    public init(endpoint: String? = nil, region: String? = nil, buckets: [String], prefixes: [String] = [], accessKeyID: SecretReference? = nil,
                secretAccessKey: SecretReference? = nil, pathStyle: Bool = false, allVersions: Bool = false) {
        self.endpoint = endpoint
        self.region = region
        self.buckets = buckets
        self.prefixes = prefixes
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.pathStyle = pathStyle
        self.allVersions = allVersions
    }
}

/// Directory trees on the machine running Lifeboat: absolute paths of their roots.
public struct FilesConnection: Sendable, Hashable {
    public var paths: [String]
    public init(paths: [String]) { self.paths = paths }
}

/// Where an `external` store lives (a git repository, a ticketing system…).
public struct ExternalLocation: Sendable, Hashable {
    public var url: String
    public init(url: String) { self.url = url }
}

/// Where Lifeboat keeps backups: a local directory or `s3://bucket/prefix`.
public struct RepositorySettings: Sendable, Hashable {
    public var url: String
    public var endpoint: String?
    public var region: String?
    public var password: SecretReference?
    public var accessKeyID: SecretReference?
    public var secretAccessKey: SecretReference?
    public init(url: String, endpoint: String? = nil, region: String? = nil, password: SecretReference? = nil, accessKeyID: SecretReference? = nil, secretAccessKey: SecretReference? = nil) {
        self.url = url
        self.endpoint = endpoint
        self.region = region
        self.password = password
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
    }
}

/// A part of the platform with its own recovery targets (e.g. "control-plane writes").
public struct Plane: Sendable, Hashable {
    public var plane: String
    public var rpo: TimeSpan
    public var rto: TimeSpan
    /// Stores this plane needs back; optional, checked against the catalog when given.
    public var stores: [String]
    public init(plane: String, rpo: TimeSpan, rto: TimeSpan, stores: [String] = []) {
        self.plane = plane
        self.rpo = rpo
        self.rto = rto
        self.stores = stores
    }
}

/// A drill the scheduler runs: a scratch restore of `stores` (all stores Lifeboat restores when
/// empty) on `cadences`, whose proof must never be older than `maxProofAge`.
public struct DrillSchedule: Sendable, Hashable {
    public var name: String
    public var cadences: [Cadence]
    public var stores: [String]
    /// How old the newest passing drill of these stores may be before the proof counts as stale.
    public var maxProofAge: TimeSpan?

    public init(name: String, cadences: [Cadence], stores: [String] = [], maxProofAge: TimeSpan? = nil) {
        self.name = name
        self.cadences = cadences
        self.stores = stores
        self.maxProofAge = maxProofAge
    }

    /// The stores it drills in `catalog`: those named, or every store Lifeboat restores.
    public func stores(in catalog: Catalog) -> [String] {
        stores.isEmpty ? catalog.stores.filter { !$0.kind.isManual }.map(\.name) : stores
    }
}

/// Something deliberately not backed up, and how it comes back after a disaster.
public struct Exclusion: Sendable, Hashable {
    public var name: String
    public var rationale: String
    public var recoveryPath: String
    public init(name: String, rationale: String, recoveryPath: String) {
        self.name = name
        self.rationale = rationale
        self.recoveryPath = recoveryPath
    }
}

extension Catalog {
    /// The longest time a store's data can lag in a platform restore: its own longest backup gap,
    /// or that of a store it depends on (directly or not), whichever is longer — the consistency
    /// rule rewinds it to its dependencies' data. Nil when no gap is known; `because` names the
    /// dependency that sets it (nil when it is the store's own).
    public func effectiveBackupGap(of name: String) -> (gap: TimeSpan, because: String?)? {
        var seen: Set<String> = []
        var worst: (gap: TimeSpan, because: String?)?
        func visit(_ current: String, isSelf: Bool) {
            guard seen.insert(current).inserted, let store = stores.first(where: { $0.name == current }) else { return }
            if !store.kind.isManual, let gap = store.longestBackupGap, gap.seconds > (worst?.gap.seconds ?? -1) {
                worst = (gap, isSelf ? nil : current)
            }
            for dependency in store.dependsOn { visit(dependency, isSelf: false) }
        }
        visit(name, isSelf: true)
        return worst
    }
}
