import Foundation
import Yams

/// A catalog that parsed and validated, with the warnings found on the way.
public struct LoadedCatalog: Sendable {
    public var catalog: Catalog
    public var warnings: [CatalogDiagnostic]
    /// Where each field sits in the file, by field path (`stores[0].rpo`).
    public var locations: [String: SourcePosition]
}

/// Reads `lifeboat.yaml` into a `Catalog`, reporting every problem with its file, line and field.
///
/// The YAML is composed into a node tree (not decoded with `Codable`) so that every value keeps
/// its position and unknown fields can be reported with a suggestion.
public enum CatalogLoader {
    public static func load(yaml: String, file: String) throws(CatalogError) -> LoadedCatalog {
        var reader = NodeReader(file: file)
        let catalog = reader.readDocument(yaml)
        if let catalog {
            reader.diagnostics += CatalogValidator.diagnostics(
                for: catalog, file: file, locations: reader.locations, alsoDeclared: reader.declaredStoreNames, paths: reader.paths)
        }
        guard let catalog, !reader.diagnostics.contains(where: { $0.severity == .error }) else {
            throw CatalogError(file: file, diagnostics: reader.diagnostics)
        }
        return LoadedCatalog(catalog: catalog, warnings: reader.diagnostics, locations: reader.locations)
    }

    /// Reads and loads a catalog file from disk.
    public static func load(contentsOf path: String) throws(CatalogError) -> LoadedCatalog {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CatalogError(file: path, diagnostics: [
                CatalogDiagnostic(.error, .badValue, file: path, position: nil, field: "(file)",
                                  message: "cannot read the catalog: \(readFailureReason(path))",
                                  hint: "pass the catalog with --catalog PATH or set LIFEBOAT_CATALOG"),
            ])
        }
        return try load(yaml: text, file: path)
    }

    private static func readFailureReason(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) { return "no such file" }
        if isDirectory.boolValue { return "it is a directory" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return "it is not UTF-8 text"
    }
}

/// The fields of one YAML mapping, in file order, after unknown keys were reported (Yams refuses duplicates).
struct Fields {
    var path: String
    var position: SourcePosition?
    var entries: [(key: String, keyPosition: SourcePosition?, value: Node)]

    subscript(key: String) -> Node? { entries.first { $0.key == key }?.value }
    func has(_ key: String) -> Bool { self[key] != nil }
    func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

extension Node {
    var position: SourcePosition? { mark.map { SourcePosition(line: $0.line, column: $0.column) } }

    var typeName: String {
        switch self {
        case .scalar: "a single value"
        case .mapping: "a mapping (key: value pairs)"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

/// Walks the YAML node tree, collecting diagnostics instead of stopping at the first problem.
struct NodeReader {
    let file: String
    var diagnostics: [CatalogDiagnostic] = []
    var locations: [String: SourcePosition] = [:]
    /// Names of every store entry, including entries too broken to load, so their dependants
    /// are not reported as depending on a missing store.
    var declaredStoreNames: Set<String> = []
    var paths = CatalogFieldPaths(stores: [], planes: [], exclusions: [])

    init(file: String) { self.file = file }

    mutating func report(
        _ code: CatalogDiagnostic.Code, _ path: String, at position: SourcePosition?, _ message: String, hint: String? = nil
    ) {
        diagnostics.append(CatalogDiagnostic(.error, code, file: file, position: position, field: path, message: message, hint: hint))
    }

    // MARK: document

    mutating func readDocument(_ yaml: String) -> Catalog? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            reportSyntax(error)
            return nil
        } catch {
            report(.yamlSyntax, "(document)", at: nil, "not valid YAML: \(error)")
            return nil
        }
        guard let root else {
            report(.missingField, "stores", at: nil, "the catalog is empty", hint: "a catalog needs at least a `stores:` list")
            return nil
        }
        guard let top = fields(root, path: "", allowed: ["version", "platform", "repository", "timezone", "stores", "planes", "exclusions", "drills"], required: ["stores"]) else {
            return nil
        }
        var version = 1
        if let node = top["version"], let value = int(node, path: "version") {
            if value == 1 { version = value } else {
                report(.badValue, "version", at: node.position, "catalog version \(value) is not supported", hint: "this Lifeboat reads version 1")
            }
        }
        let platform = top["platform"].flatMap { string($0, path: "platform") }
        let repository = top["repository"].flatMap { readRepository($0, path: "repository") }
        let stores = top["stores"].flatMap { locatedList($0, path: "stores") { reader, node, path in reader.readStore(node, path: path) } } ?? []
        let planes = top["planes"].flatMap { locatedList($0, path: "planes") { reader, node, path in reader.readPlane(node, path: path) } } ?? []
        let exclusions = top["exclusions"].flatMap { locatedList($0, path: "exclusions") { reader, node, path in reader.readExclusion(node, path: path) } } ?? []
        let drills = top["drills"].flatMap { locatedList($0, path: "drills") { reader, node, path in reader.readDrill(node, path: path) } } ?? []
        let timeZone = top["timezone"].flatMap { readTimeZone($0, path: "timezone") }
        paths = CatalogFieldPaths(stores: stores.map(\.path), planes: planes.map(\.path), exclusions: exclusions.map(\.path),
                                  drills: drills.map(\.path))
        return Catalog(version: version, platform: platform, repository: repository, stores: stores.map(\.value),
                       planes: planes.map(\.value), exclusions: exclusions.map(\.value), drills: drills.map(\.value), timeZone: timeZone)
    }

    mutating func reportSyntax(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            report(.yamlSyntax, "(document)", at: SourcePosition(line: mark.line, column: mark.column), "not valid YAML: \(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams refuses these itself; its message embeds the whole file, which may hold secrets, so only the keys are used.
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            report(.duplicateField, duplicates.first ?? "(document)", at: SourcePosition(line: context.mark.line, column: context.mark.column),
                   "\(keys) given more than once in one mapping (first here); the second would silently win", hint: "keep one")
        default:
            report(.yamlSyntax, "(document)", at: nil, "not valid YAML: \(error)")
        }
    }

    // MARK: sections

    mutating func readStore(_ node: Node, path: String) -> Store? {
        let allowed = ["name", "kind", "method", "cadence", "retention", "priority", "depends_on", "rpo", "rto",
                       "verify", "connection", "notes", "action", "in_sequence"]
        guard let store = fields(node, path: path, allowed: allowed, required: ["name", "kind", "method", "priority"]) else { return nil }
        let name = store["name"].flatMap { identifier($0, path: store.path("name")) }
        if let name { declaredStoreNames.insert(name) }
        let kind = store["kind"].flatMap { oneOf($0, path: store.path("kind"), StoreKind.allCases.map(\.rawValue)) }.flatMap(StoreKind.init(rawValue:))
        let method = store["method"].flatMap { string($0, path: store.path("method")) }
        let priority = store["priority"].flatMap { oneOf($0, path: store.path("priority"), Priority.allCases.map(\.description)) }.flatMap(Priority.init(label:))
        if let kind, !kind.isManual, !store.has("cadence") {
            report(.missingField, store.path("cadence"), at: store.position, "a store of kind \(kind.rawValue) needs a cadence",
                   hint: "add `cadence: 4h` (an interval), a cron expression such as '0 2 * * *', or `continuous`")
        }
        let cadences = store["cadence"].flatMap { cadenceList($0, path: store.path("cadence")) } ?? []
        let retention = store["retention"].flatMap { readRetention($0, path: store.path("retention")) }
        let dependsOn = store["depends_on"].flatMap { stringList($0, path: store.path("depends_on")) } ?? []
        let rpo = store["rpo"].flatMap { timeSpan($0, path: store.path("rpo")) }
        let rto = store["rto"].flatMap { timeSpan($0, path: store.path("rto")) }
        let notes = store["notes"].flatMap { string($0, path: store.path("notes")) }
        let action = store["action"].flatMap { string($0, path: store.path("action")) }
        let inSequence = store["in_sequence"].flatMap { bool($0, path: store.path("in_sequence")) } ?? true
        var verify: [VerifyCheck] = []
        var connection: Connection?
        if let kind {
            verify = store["verify"].flatMap { list($0, path: store.path("verify")) { reader, node, path in reader.readCheck(node, path: path, kind: kind) } } ?? []
            connection = store["connection"].flatMap { readConnection($0, path: store.path("connection"), kind: kind) }
        }
        guard let name, let kind, let method, let priority else { return nil }
        return Store(name: name, kind: kind, method: method, cadences: cadences, retention: retention, priority: priority,
                     dependsOn: dependsOn, rpo: rpo, rto: rto, verify: verify, connection: connection, notes: notes,
                     action: action, inSequence: inSequence)
    }

    mutating func readRetention(_ node: Node, path: String) -> Retention? {
        // A plain string is retention kept elsewhere ("git history").
        if case .scalar = node { return string(node, path: path).map { Retention(note: $0) } }
        let counts = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"]
        guard let fields = fields(node, path: path, allowed: counts + ["keep_within", "note"], required: []) else { return nil }
        func count(_ key: String, _ reader: inout NodeReader) -> Int? {
            guard let node = fields[key], let value = reader.int(node, path: fields.path(key)) else { return nil }
            guard value >= 1 else {
                reader.report(.badValue, fields.path(key), at: node.position, "must be at least 1 (it is \(value))", hint: "remove the field to keep no snapshots by this rule")
                return nil
            }
            return value
        }
        let retention = Retention(
            keepLast: count("keep_last", &self),
            keepWithin: fields["keep_within"].flatMap { timeSpan($0, path: fields.path("keep_within")) },
            keepHourly: count("keep_hourly", &self), keepDaily: count("keep_daily", &self),
            keepWeekly: count("keep_weekly", &self), keepMonthly: count("keep_monthly", &self),
            keepYearly: count("keep_yearly", &self),
            note: fields["note"].flatMap { string($0, path: fields.path("note")) })
        if !retention.hasPolicy, retention.note == nil {
            report(.missingField, path, at: fields.position, "a retention needs at least one keep_* rule or a note",
                   hint: "e.g. `keep_daily: 7`, or `note: \"git history\"` for data kept elsewhere")
        }
        return retention
    }

    static let checkFields: [String: [String]] = [
        "read": ["read", "field"], "sql": ["sql", "expect", "database"], "prefix": ["prefix", "min_keys"],
        "object": ["object", "bucket"], "file": ["file"], "manual": ["manual"],
    ]
    static let checkRequired: [String: [String]] = ["sql": ["expect"], "prefix": ["min_keys"]]

    mutating func readCheck(_ node: Node, path: String, kind: StoreKind) -> VerifyCheck? {
        let accepted = VerifyCheck.keywords(for: kind)
        guard case .mapping(let mapping) = node else {
            report(.wrongType, path, at: node.position, "a verify check must be a mapping, found \(node.typeName)",
                   hint: "a \(kind.rawValue) check looks like `- \(accepted[0]): …`")
            return nil
        }
        let keys = mapping.keys.compactMap(\.scalar?.string)
        let keywords = Self.checkFields.keys.sorted()
        guard let keyword = keys.first(where: { keywords.contains($0) }) else {
            report(.missingField, path, at: node.position, "a verify check needs one of: \(accepted.joined(separator: ", ")) (for a store of kind \(kind.rawValue))")
            return nil
        }
        guard accepted.contains(keyword) else {
            report(.badValue, "\(path).\(keyword)", at: node.position, "a `\(keyword)` check does not apply to a store of kind \(kind.rawValue)",
                   hint: "\(kind.rawValue) stores take: \(accepted.joined(separator: ", "))")
            return nil
        }
        guard let check = fields(node, path: path, allowed: Self.checkFields[keyword] ?? [], required: Self.checkRequired[keyword] ?? []),
              let subject = check[keyword].flatMap({ string($0, path: check.path(keyword)) }) else { return nil }
        switch keyword {
        case "read":
            return .openbaoRead(path: subject, field: check["field"].flatMap { string($0, path: check.path("field")) })
        case "sql":
            guard let expect = check["expect"].flatMap({ string($0, path: check.path("expect")) }) else { return nil }
            return .sql(query: subject, expect: expect, database: check["database"].flatMap { string($0, path: check.path("database")) })
        case "prefix":
            guard let node = check["min_keys"], let minKeys = int(node, path: check.path("min_keys")) else { return nil }
            guard minKeys >= 1 else {
                report(.badValue, check.path("min_keys"), at: node.position, "must be at least 1 (a check that 0 keys exist proves nothing)")
                return nil
            }
            return .etcdPrefix(prefix: subject, minKeys: minKeys)
        case "object":
            return .object(key: subject, bucket: check["bucket"].flatMap { string($0, path: check.path("bucket")) })
        case "file":
            return .file(path: subject)
        default:
            return .manual(subject)
        }
    }

    mutating func readConnection(_ node: Node, path: String, kind: StoreKind) -> Connection? {
        switch kind {
        case .postgres:
            guard let f = fields(node, path: path, allowed: ["host", "port", "user", "password", "database", "sslmode", "data_directory"], required: ["host"]),
                  let host = f["host"].flatMap({ address($0, path: f.path("host")) }) else { return nil }
            let port = f["port"].flatMap { self.port($0, path: f.path("port")) } ?? 5432
            return .postgres(PostgresConnection(
                host: host, port: port, user: f["user"].flatMap { string($0, path: f.path("user")) },
                password: f["password"].flatMap { secret($0, path: f.path("password")) },
                database: f["database"].flatMap { string($0, path: f.path("database")) },
                sslmode: f["sslmode"].flatMap { oneOf($0, path: f.path("sslmode"), ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]) },
                dataDirectory: f["data_directory"].flatMap { absolutePath($0, path: f.path("data_directory")) }))
        case .openbao:
            guard let f = fields(node, path: path, allowed: ["address", "token", "unseal_keys", "ca_cert", "transit"], required: ["address"]),
                  let address = f["address"].flatMap({ address($0, path: f.path("address")) }) else { return nil }
            var transit: OpenBaoTransitSeal?
            if let node = f["transit"], let t = fields(node, path: f.path("transit"), allowed: ["address", "mount", "key_name", "token"], required: ["address", "key_name"]),
               let transitAddress = t["address"].flatMap({ self.address($0, path: t.path("address")) }),
               let keyName = t["key_name"].flatMap({ string($0, path: t.path("key_name")) }) {
                transit = OpenBaoTransitSeal(
                    address: transitAddress, mount: t["mount"].flatMap { string($0, path: t.path("mount")) } ?? "transit", keyName: keyName,
                    token: t["token"].flatMap { secret($0, path: t.path("token")) })
            }
            return .openbao(OpenBaoConnection(
                address: address, token: f["token"].flatMap { secret($0, path: f.path("token")) },
                unsealKeys: f["unseal_keys"].flatMap { secret($0, path: f.path("unseal_keys")) },
                caCert: f["ca_cert"].flatMap { string($0, path: f.path("ca_cert")) }, transit: transit))
        case .etcd:
            guard let f = fields(node, path: path, allowed: ["endpoints", "username", "password", "members", "cluster_token"], required: ["endpoints"]),
                  let endpoints = f["endpoints"].flatMap({ stringList($0, path: f.path("endpoints")) }) else { return nil }
            for (index, endpoint) in endpoints.enumerated() { checkNoCredentials(in: endpoint, path: f.path("endpoints") + "[\(index)]", at: f["endpoints"]?.position) }
            let located = f["members"].flatMap { node in
                locatedList(node, path: f.path("members")) { reader, item, itemPath -> EtcdMember? in
                    guard let m = reader.fields(item, path: itemPath, allowed: ["name", "peer_url", "data_directory"], required: ["name", "peer_url", "data_directory"]),
                          let name = m["name"].flatMap({ reader.identifier($0, path: m.path("name")) }),
                          let peerNode = m["peer_url"], let peer = reader.address(peerNode, path: m.path("peer_url")),
                          let directory = m["data_directory"].flatMap({ reader.absolutePath($0, path: m.path("data_directory")) }) else { return nil }
                    // etcd takes the peer URL as --initial-advertise-peer-urls: scheme, host and port, nothing else.
                    guard let url = URL(string: peer), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false, url.port != nil,
                          url.path.isEmpty || url.path == "/" else {
                        reader.report(.badValue, m.path("peer_url"), at: peerNode.position, "'\(peer)' is not a peer URL",
                                      hint: "write http(s)://host:port, e.g. http://10.0.0.5:2380")
                        return nil
                    }
                    return EtcdMember(name: name, peerURL: peer, dataDirectory: directory)
                }
            } ?? []
            // Two members under one name or in one directory would overwrite each other at restore.
            for (index, (member, memberPath)) in located.enumerated() {
                let earlier = located[..<index].map(\.value)
                if earlier.contains(where: { $0.name == member.name }) {
                    report(.duplicateName, memberPath + ".name", at: locations[memberPath], "member '\(member.name)' is listed twice")
                }
                if earlier.contains(where: { $0.dataDirectory == member.dataDirectory }) {
                    report(.badValue, memberPath + ".data_directory", at: locations[memberPath], "two members would be restored into \(member.dataDirectory)")
                }
            }
            let members = located.map(\.value)
            return .etcd(EtcdConnection(
                endpoints: endpoints, username: f["username"].flatMap { string($0, path: f.path("username")) },
                password: f["password"].flatMap { secret($0, path: f.path("password")) },
                members: members, clusterToken: f["cluster_token"].flatMap { string($0, path: f.path("cluster_token")) }))
        case .s3:
            guard let f = fields(node, path: path, allowed: ["endpoint", "region", "buckets", "prefixes", "versions", "access_key_id", "secret_access_key", "path_style"],
                                 required: ["buckets"]),
                  let buckets = f["buckets"].flatMap({ list($0, path: f.path("buckets")) { reader, item, itemPath in reader.bucketName(item, path: itemPath) } })
            else { return nil }
            if case .sequence(let items)? = f["buckets"], items.isEmpty { report(.missingField, f.path("buckets"), at: f["buckets"]?.position, "the bucket list is empty") }
            if Set(buckets).count != buckets.count { report(.duplicateName, f.path("buckets"), at: f["buckets"]?.position, "a bucket is listed twice") }
            let endpoint = f["endpoint"].flatMap { address($0, path: f.path("endpoint")) }
            if let endpoint, let node = f["endpoint"] {
                let url = URL(string: endpoint)
                if !["http", "https"].contains(url?.scheme?.lowercased() ?? "") || url?.host?.isEmpty != false || !(url?.path.isEmpty ?? true) && url?.path != "/" {
                    report(.badValue, f.path("endpoint"), at: node.position, "'\(endpoint)' is not an S3 endpoint",
                           hint: "write http(s)://host[:port] without a path, e.g. https://s3.eu-central-1.amazonaws.com")
                }
            }
            let region = f["region"].flatMap { string($0, path: f.path("region")) }
            let prefixes = f["prefixes"].flatMap { stringList($0, path: f.path("prefixes")) } ?? []
            let accessKeyID = f["access_key_id"].flatMap { secret($0, path: f.path("access_key_id")) }
            let secretAccessKey = f["secret_access_key"].flatMap { secret($0, path: f.path("secret_access_key")) }
            if f.has("access_key_id") != f.has("secret_access_key") {
                report(.missingField, f.path(f.has("access_key_id") ? "secret_access_key" : "access_key_id"), at: f.position,
                       "give both access_key_id and secret_access_key, or neither (then AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are read from the environment)")
            }
            return .s3(S3Connection(
                endpoint: endpoint, region: region, buckets: buckets, prefixes: prefixes, accessKeyID: accessKeyID, secretAccessKey: secretAccessKey,
                pathStyle: f["path_style"].flatMap { bool($0, path: f.path("path_style")) } ?? false,
                allVersions: f["versions"].flatMap { oneOf($0, path: f.path("versions"), ["current", "all"]) } == "all"))
        case .files:
            guard let f = fields(node, path: path, allowed: ["paths"], required: ["paths"]),
                  let located = f["paths"].flatMap({ locatedList($0, path: f.path("paths")) { reader, item, itemPath in reader.absolutePath(item, path: itemPath) } })
            else { return nil }
            let paths = located.map(\.value)
            if case .sequence(let items)? = f["paths"], items.isEmpty { report(.missingField, f.path("paths"), at: f["paths"]?.position, "the path list is empty") }
            // Nested roots would back the inner tree up twice and restore it over itself.
            for (index, (path, itemPath)) in located.enumerated() {
                if let outer = paths.enumerated().first(where: { $0.offset != index && (path == $0.element ? $0.offset < index : path.hasPrefix($0.element == "/" ? "/" : $0.element + "/")) }) {
                    report(.badValue, itemPath, at: locations[itemPath], "\(path) is \(path == outer.element ? "listed twice" : "inside \(outer.element)")",
                           hint: "list each tree once, by its top directory")
                }
            }
            return .files(FilesConnection(paths: paths))
        case .external:
            guard let f = fields(node, path: path, allowed: ["url"], required: ["url"]),
                  let url = f["url"].flatMap({ address($0, path: f.path("url")) }) else { return nil }
            return .external(ExternalLocation(url: url))
        }
    }

    mutating func readRepository(_ node: Node, path: String) -> RepositorySettings? {
        guard let f = fields(node, path: path, allowed: ["url", "endpoint", "region", "password", "access_key_id", "secret_access_key"], required: ["url"]),
              let url = f["url"].flatMap({ address($0, path: f.path("url")) }) else { return nil }
        return RepositorySettings(
            url: url, endpoint: f["endpoint"].flatMap { address($0, path: f.path("endpoint")) },
            region: f["region"].flatMap { string($0, path: f.path("region")) },
            password: f["password"].flatMap { secret($0, path: f.path("password")) },
            accessKeyID: f["access_key_id"].flatMap { secret($0, path: f.path("access_key_id")) },
            secretAccessKey: f["secret_access_key"].flatMap { secret($0, path: f.path("secret_access_key")) })
    }

    mutating func readPlane(_ node: Node, path: String) -> Plane? {
        guard let f = fields(node, path: path, allowed: ["plane", "rpo", "rto", "stores"], required: ["plane", "rpo", "rto"]) else { return nil }
        let plane = f["plane"].flatMap { string($0, path: f.path("plane")) }
        let rpo = f["rpo"].flatMap { timeSpan($0, path: f.path("rpo")) }
        let rto = f["rto"].flatMap { timeSpan($0, path: f.path("rto")) }
        let stores = f["stores"].flatMap { stringList($0, path: f.path("stores")) } ?? []
        guard let plane, let rpo, let rto else { return nil }
        return Plane(plane: plane, rpo: rpo, rto: rto, stores: stores)
    }

    mutating func readExclusion(_ node: Node, path: String) -> Exclusion? {
        guard let f = fields(node, path: path, allowed: ["name", "rationale", "recovery_path"], required: ["name", "rationale", "recovery_path"]) else { return nil }
        let name = f["name"].flatMap { string($0, path: f.path("name")) }
        let rationale = f["rationale"].flatMap { string($0, path: f.path("rationale")) }
        let recoveryPath = f["recovery_path"].flatMap { string($0, path: f.path("recovery_path")) }
        guard let name, let rationale, let recoveryPath else { return nil }
        return Exclusion(name: name, rationale: rationale, recoveryPath: recoveryPath)
    }

    mutating func readDrill(_ node: Node, path: String) -> DrillSchedule? {
        guard let f = fields(node, path: path, allowed: ["name", "cadence", "stores", "max_proof_age"], required: ["name", "cadence"]) else { return nil }
        let name = f["name"].flatMap { identifier($0, path: f.path("name")) }
        var cadences = f["cadence"].flatMap { cadenceList($0, path: f.path("cadence")) }
        if let node = f["cadence"], cadences?.contains(.continuous) == true {
            report(.badCadence, f.path("cadence"), at: node.position, "a drill cannot be continuous",
                   hint: "give an interval or a cron expression, e.g. '0 3 1 */3 *' (quarterly)")
            cadences = nil
        }
        let stores = f["stores"].flatMap { stringList($0, path: f.path("stores")) } ?? []
        let maxProofAge = f["max_proof_age"].flatMap { timeSpan($0, path: f.path("max_proof_age")) }
        guard let name, let cadences else { return nil }
        return DrillSchedule(name: name, cadences: cadences, stores: stores, maxProofAge: maxProofAge)
    }

    /// An IANA time zone name (`Europe/Berlin`, `UTC`).
    mutating func readTimeZone(_ node: Node, path: String) -> String? {
        guard let text = string(node, path: path) else { return nil }
        guard TimeZone(identifier: text) != nil else {
            let suggestion = closestMatch(to: text, in: TimeZone.knownTimeZoneIdentifiers + ["UTC"])
            report(.badValue, path, at: node.position, "'\(text)' is not a time zone",
                   hint: suggestion.map { "did you mean '\($0)'?" } ?? "give an IANA name such as UTC or Europe/Berlin")
            return nil
        }
        return text
    }

    // MARK: building blocks

    /// The mapping's fields; reports unknown (with a suggestion) and missing keys.
    mutating func fields(_ node: Node, path: String, allowed: [String], required: [String]) -> Fields? {
        let label = path.isEmpty ? "the catalog" : path
        guard case .mapping(let mapping) = node else {
            report(.wrongType, path.isEmpty ? "(document)" : path, at: node.position, "\(label) must be a mapping (key: value pairs), found \(node.typeName)")
            return nil
        }
        locations[path] = node.position
        var result = Fields(path: path, position: node.position, entries: [])
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                report(.wrongType, path, at: keyNode.position, "a field name must be plain text, found \(keyNode.typeName)")
                continue
            }
            let fieldPath = result.path(key)
            guard allowed.contains(key) else {
                let suggestion = closestMatch(to: key, in: allowed)
                report(.unknownField, fieldPath, at: keyNode.position, "unknown field '\(key)'",
                       hint: suggestion.map { "did you mean '\($0)'?" } ?? "known fields here: \(allowed.joined(separator: ", "))")
                continue
            }
            locations[fieldPath] = value.position
            result.entries.append((key, keyNode.position, value))
        }
        for key in required where !result.has(key) {
            report(.missingField, result.path(key), at: node.position, "missing required field '\(key)'")
        }
        return result
    }

    mutating func list<T>(_ node: Node, path: String, _ read: (inout NodeReader, Node, String) -> T?) -> [T]? {
        locatedList(node, path: path, read)?.map(\.value)
    }

    /// The list's readable items with the path each sits at in the file (broken items are skipped).
    mutating func locatedList<T>(_ node: Node, path: String, _ read: (inout NodeReader, Node, String) -> T?) -> [(value: T, path: String)]? {
        guard case .sequence(let sequence) = node else {
            report(.wrongType, path, at: node.position, "must be a list (lines starting with '- '), found \(node.typeName)")
            return nil
        }
        return sequence.enumerated().compactMap { index, item in
            let itemPath = "\(path)[\(index)]"
            locations[itemPath] = item.position
            return read(&self, item, itemPath).map { ($0, itemPath) }
        }
    }

    mutating func string(_ node: Node, path: String) -> String? {
        guard case .scalar(let scalar) = node else {
            report(.wrongType, path, at: node.position, "must be text, found \(node.typeName)")
            return nil
        }
        guard !scalar.string.trimmingCharacters(in: .whitespaces).isEmpty else {
            report(.badValue, path, at: node.position, "must not be empty")
            return nil
        }
        return scalar.string
    }

    /// A store name: used in `depends_on`, file names and metric labels, so kept to a safe alphabet.
    mutating func identifier(_ node: Node, path: String) -> String? {
        guard let text = string(node, path: path) else { return nil }
        let allowed = text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        guard allowed, text.first?.isLetter == true || text.first?.isNumber == true else {
            report(.badValue, path, at: node.position, "'\(text)' is not a valid name",
                   hint: "use letters, digits, '-', '_' or '.', starting with a letter or digit")
            return nil
        }
        return text
    }

    /// A directory on the machine that runs the restore: absolute, so it cannot depend on the working directory.
    mutating func absolutePath(_ node: Node, path: String) -> String? {
        guard let text = string(node, path: path) else { return nil }
        guard text.hasPrefix("/") else {
            report(.badValue, path, at: node.position, "'\(text)' is not an absolute path", hint: "write the full path, starting with '/'")
            return nil
        }
        // Without a trailing slash or dots: `DIR.lifeboat-previous-…` must land beside DIR, not in it.
        return URL(fileURLWithPath: text).standardizedFileURL.path
    }

    /// An S3 bucket name: 3–63 characters of lowercase letters, digits, '.' and '-', starting and ending alphanumeric.
    mutating func bucketName(_ node: Node, path: String) -> String? {
        guard let text = string(node, path: path) else { return nil }
        let valid = (3...63).contains(text.count) && text.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "." || $0 == "-" }
            && text.first.map { $0.isLowercase || $0.isNumber } == true && text.last.map { $0.isLowercase || $0.isNumber } == true && !text.contains("..")
        guard valid else {
            report(.badValue, path, at: node.position, "'\(text)' is not a valid bucket name",
                   hint: "3–63 characters: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit")
            return nil
        }
        return text
    }

    mutating func stringList(_ node: Node, path: String) -> [String]? {
        list(node, path: path) { reader, item, itemPath in reader.string(item, path: itemPath) }
    }

    mutating func int(_ node: Node, path: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            report(.wrongType, path, at: node.position, "must be a whole number, found \(describe(node))")
            return nil
        }
        return value
    }

    mutating func port(_ node: Node, path: String) -> Int? {
        guard let value = int(node, path: path) else { return nil }
        guard (1...65535).contains(value) else {
            report(.badValue, path, at: node.position, "port \(value) is outside 1-65535")
            return nil
        }
        return value
    }

    mutating func bool(_ node: Node, path: String) -> Bool? {
        if case .scalar(let scalar) = node {
            switch scalar.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        report(.wrongType, path, at: node.position, "must be true or false, found \(describe(node))")
        return nil
    }

    mutating func oneOf(_ node: Node, path: String, _ choices: [String]) -> String? {
        guard let text = string(node, path: path) else { return nil }
        if let exact = choices.first(where: { $0.lowercased() == text.lowercased() }) { return exact }
        let suggestion = closestMatch(to: text, in: choices)
        report(.badValue, path, at: node.position, "'\(text)' is not one of \(choices.joined(separator: ", "))",
               hint: suggestion.map { "did you mean '\($0)'?" })
        return nil
    }

    mutating func timeSpan(_ node: Node, path: String) -> TimeSpan? {
        guard let text = string(node, path: path) else { return nil }
        do { return try TimeSpan(parsing: text) } catch {
            report(.badDuration, path, at: node.position, "bad duration: \(error.message)")
            return nil
        }
    }

    /// One cadence, or a list of them (`[continuous, "0 2 * * *"]`).
    mutating func cadenceList(_ node: Node, path: String) -> [Cadence]? {
        guard case .sequence = node else { return cadence(node, path: path).map { [$0] } }
        let cadences = list(node, path: path) { reader, item, itemPath in reader.cadence(item, path: itemPath) }
        if cadences?.isEmpty == true {
            report(.missingField, path, at: node.position, "the cadence list is empty")
        }
        return cadences
    }

    mutating func cadence(_ node: Node, path: String) -> Cadence? {
        guard let text = string(node, path: path) else { return nil }
        do { return try Cadence(parsing: text) } catch {
            report(.badCadence, path, at: node.position, "bad cadence: \(error.message)")
            return nil
        }
    }

    /// A secret must be a reference; a literal is refused without ever repeating it.
    mutating func secret(_ node: Node, path: String) -> SecretReference? {
        guard case .scalar(let scalar) = node else {
            report(.wrongType, path, at: node.position, "must be a secret reference (env:NAME or file:/path), found \(node.typeName)")
            return nil
        }
        guard let reference = SecretReference(reference: scalar.string) else {
            report(.literalSecret, path, at: node.position, "holds a literal value where a secret reference is required (the value is not shown)",
                   hint: "keep secrets out of the catalog: write env:NAME (an environment variable) or file:/path (a file holding it), and rotate the exposed secret")
            return nil
        }
        return reference
    }

    /// A URL or host; refused when it embeds a password (`scheme://user:password@host`).
    mutating func address(_ node: Node, path: String) -> String? {
        guard let text = string(node, path: path) else { return nil }
        return checkNoCredentials(in: text, path: path, at: node.position) ? text : nil
    }

    @discardableResult
    mutating func checkNoCredentials(in text: String, path: String, at position: SourcePosition?) -> Bool {
        guard let scheme = text.range(of: "://") else { return true }
        let authority = text[scheme.upperBound...].prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") else { return true }
        report(.literalSecret, path, at: position, "embeds a password in the URL (the value is not shown)",
               hint: "remove the user:password@ part and give the password as a reference in the connection's password field")
        return false
    }

    func describe(_ node: Node) -> String {
        if case .scalar(let scalar) = node { return "'\(scalar.string)'" }
        return node.typeName
    }
}
