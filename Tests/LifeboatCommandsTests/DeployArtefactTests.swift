import Foundation
import LifeboatTesting
import Testing

/// The deployment artefacts under deploy/, checked with the tools that consume them, offline:
/// promtool (the alert rules and their unit tests), systemd-analyze (the unit), kubectl's kustomize
/// and kubernetes-validate (the manifests). Each check is also shown failing on a broken artefact.
@Suite struct DeployArtefactTests {
    static let root = CommandLineTests.root
    static let deploy = root.appendingPathComponent("deploy")
    static let rules = deploy.appendingPathComponent("prometheus/lifeboat-rules.yaml")
    static let ruleTests = deploy.appendingPathComponent("prometheus/lifeboat-rules.test.yaml")

    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-deploy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func tool(_ name: String) throws -> ExternalTool {
        do {
            return try ExternalTool.locate(name)
        } catch {
            throw ServerStartError(message: "\(name) is needed by the deploy checks: run scripts/setup (\(error))")
        }
    }

    // MARK: alert rules

    @Test func alertRulesPassPromtoolCheckAndTheirUnitTests() async throws {
        let promtool = try Self.tool("promtool")
        let check = try await promtool.run(["check", "rules", Self.rules.path])
        #expect(check.status == 0, "\(check.output)\(check.stderr)")
        #expect(check.output.contains("SUCCESS: 17 rules found"), "\(check.output)")
        let tests = try await promtool.run(["test", "rules", Self.ruleTests.lastPathComponent], currentDirectory: Self.ruleTests.deletingLastPathComponent())
        #expect(tests.status == 0, "\(tests.output)\(tests.stderr)")
        #expect(tests.output.contains("SUCCESS"), "\(tests.output)")
    }

    /// Each alert, made unable to fire, fails the unit tests: none goes untested, and a broken
    /// rule fails the suite.
    @Test func everyAlertIsPinnedByTheRuleTests() async throws {
        let promtool = try Self.tool("promtool")
        let text = try String(contentsOf: Self.rules, encoding: .utf8)
        let alerts = text.matches(of: /- alert: (\w+)\n\s+expr: [^\n]+/).map { (name: String($0.output.1), line: String($0.output.0)) }
        #expect(alerts.count == 17)
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: Self.ruleTests, to: directory.appendingPathComponent(Self.ruleTests.lastPathComponent))
        for alert in alerts {
            let silenced = alert.line.replacing(/expr: [^\n]+/, with: "expr: vector(1) == 2")
            try text.replacingOccurrences(of: alert.line, with: silenced)
                .write(to: directory.appendingPathComponent("lifeboat-rules.yaml"), atomically: true, encoding: .utf8)
            let run = try await promtool.run(["test", "rules", Self.ruleTests.lastPathComponent], currentDirectory: directory)
            #expect(run.status != 0, "\(alert.name) can be silenced without a rule test failing")
            // promtool reports the failed expectations on stderr.
            #expect(run.stderr.contains("alertname: \(alert.name),"), "the failure should name \(alert.name): \(run.stderr.suffix(400))")
        }
    }

    // MARK: systemd

    /// The unit with ExecStart pointing at the binary under test: `verify` checks the command exists.
    static func unit(in directory: URL, editing edit: (String) -> String = { $0 }) throws -> URL {
        let text = try String(contentsOf: deploy.appendingPathComponent("systemd/lifeboat.service"), encoding: .utf8)
        #expect(text.contains("ExecStart=/usr/local/bin/lifeboat serve "))
        let unit = directory.appendingPathComponent("lifeboat.service")
        try edit(text.replacingOccurrences(of: "ExecStart=/usr/local/bin/lifeboat ", with: "ExecStart=\(CommandLineTests.binary.path) "))
            .write(to: unit, atomically: true, encoding: .utf8)
        return unit
    }

    /// `systemd-analyze verify` needs no running systemd: it loads the unit file offline. It exits
    /// 0 on unknown keys and bad values (it only warns), so any output is a failure too.
    @Test func systemdUnitVerifiesAndIsHardened() async throws {
        let analyze = try Self.tool("systemd-analyze")
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let unit = try Self.unit(in: directory)
        let verified = try await analyze.run(["verify", unit.path])
        #expect(verified.status == 0 && verified.output.isEmpty && verified.stderr.isEmpty, "\(verified.output)\(verified.stderr)")

        let security = try await analyze.run(["security", "--offline=true", "--threshold=20", unit.path])
        #expect(security.status == 0, "exposure above 2.0: \(security.output.suffix(300))")
        let text = try String(contentsOf: unit, encoding: .utf8)
        for line in ["User=lifeboat", "EnvironmentFile=/etc/lifeboat/lifeboat.env", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "PrivateTmp=yes", "CapabilityBoundingSet=\n", "ReadWritePaths=/var/lib/lifeboat /var/cache/lifeboat", "KillMode=mixed"] {
            #expect(text.contains(line), "the unit lacks \(line)")
        }

        // The same checks catch a misspelt option and a unit stripped of its hardening.
        let broken = try Self.unit(in: try Self.scratch()) { $0.replacingOccurrences(of: "ProtectHome=yes", with: "ProtectHome=yess\nProtectHomz=yes") }
        defer { try? FileManager.default.removeItem(at: broken.deletingLastPathComponent()) }
        let complaint = try await analyze.run(["verify", broken.path])
        #expect(complaint.stderr.contains("ProtectHomz"), "\(complaint.stderr)")
        let bare = try Self.unit(in: try Self.scratch()) { text in
            text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("Protect") && !$0.hasPrefix("Private") && !$0.hasPrefix("Restrict") && !$0.hasPrefix("SystemCall")
                    && !$0.hasPrefix("Capability") && !$0.hasPrefix("NoNewPrivileges") }
                .joined(separator: "\n")
        }
        defer { try? FileManager.default.removeItem(at: bare.deletingLastPathComponent()) }
        #expect(try await analyze.run(["security", "--offline=true", "--threshold=20", bare.path]).status != 0)
    }

    /// What ExecStart runs parses as a `lifeboat serve` command line.
    @Test func systemdExecStartIsAValidServeCommandLine() async throws {
        let text = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/lifeboat.service"), encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        let arguments = line.dropFirst("ExecStart=".count).split(separator: " ").dropFirst().map(String.init)
        #expect(arguments.first == "serve")
        // Port 70000 makes serve stop at validation, after every option before it was parsed.
        let run = try await CommandLineTests.run(Array(arguments.dropLast(2)) + ["--port", "70000"])
        #expect(run.status == 2)
        #expect(run.stderr.contains("--port must be 0-65535"), "\(run.stderr)")
    }

    // MARK: Kubernetes

    /// A python3 that imports kubernetes_validate: the one on PATH, else scripts/setup's venv.
    static func validatorPython() async throws -> ExternalTool {
        var candidates: [ExternalTool] = []
        if let python = try? ExternalTool.locate("python3") { candidates.append(python) }
        candidates.append(ExternalTool(name: "python3", path: "/opt/lifeboat-moto/bin/python"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            if try await candidate.run(["-c", "import kubernetes_validate, jsonschema, yaml"]).status == 0 { return candidate }
        }
        throw ServerStartError(message: "no python3 imports kubernetes_validate: run scripts/setup")
    }

    static func render(_ directory: String) async throws -> String {
        let kubectl = try tool("kubectl")
        let run = try await kubectl.run(["kustomize", deploy.appendingPathComponent("kubernetes/\(directory)").path])
        try #require(run.status == 0, "kubectl kustomize \(directory) failed: \(run.stderr)")
        return run.output
    }

    static func validate(_ manifests: String, rules: URL? = nil) async throws -> ToolRun {
        let python = try await validatorPython()
        let arguments = [deploy.appendingPathComponent("kubernetes/validate.py").path] + (rules.map { ["--rules", $0.path] } ?? [])
        return try await python.run(arguments, input: Data(manifests.utf8))
    }

    @Test func kustomizeBaseRendersAndEveryObjectValidates() async throws {
        let manifests = try await Self.render("base")
        let run = try await Self.validate(manifests, rules: Self.rules)
        #expect(run.status == 0, "\(run.output)\(run.stderr)")
        for object in ["ServiceAccount/lifeboat", "ConfigMap/lifeboat-catalog-", "Service/lifeboat", "Deployment/lifeboat",
                       "PodDisruptionBudget/lifeboat", "NetworkPolicy/lifeboat", "ServiceMonitor/lifeboat", "PrometheusRule/lifeboat"] {
            #expect(run.output.contains("ok      \(object)"), "\(object) missing: \(run.output)")
        }
        #expect(run.output.contains("8 valid, 0 invalid"), "\(run.output)")
        // The Deployment runs serve, non-root, with the catalog from the generated ConfigMap.
        #expect(manifests.contains("args:\n        - serve\n"))
        #expect(manifests.contains("runAsNonRoot: true"))
        #expect(manifests.contains("name: lifeboat-secrets"))
        #expect(!manifests.contains("\nkind: Secret\n"), "the base references Secrets and never carries one")
    }

    @Test func prometheusRuleIsTheGeneratedCopyOfTheRulesFile() async throws {
        let committed = try String(contentsOf: Self.deploy.appendingPathComponent("kubernetes/base/prometheusrule.yaml"), encoding: .utf8)
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let generated = directory.appendingPathComponent("prometheusrule.yaml")
        let run = try await Self.tool("bash").run([Self.deploy.appendingPathComponent("kubernetes/generate-prometheusrule.sh").path, generated.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try String(contentsOf: generated, encoding: .utf8) == committed,
                "base/prometheusrule.yaml is out of date: run deploy/kubernetes/generate-prometheusrule.sh")
    }

    /// The validator rejects what the API server would reject or silently prune, and a
    /// PrometheusRule that drifted from the rules file.
    @Test func validatorRejectsBrokenManifests() async throws {
        let manifests = try await Self.render("base")
        let broken = manifests
            .replacingOccurrences(of: "honorLabels: true", with: "honorLabel: true")
            .replacingOccurrences(of: "readOnlyRootFilesystem: true", with: "readOnlyRootFileSystem: true")
            .replacingOccurrences(of: "lifeboat_verify_last_outcome == 0", with: "lifeboat_verify_last_outcome == 1")
            .replacingOccurrences(of: "maxUnavailable: 1", with: "maxUnavailable: []")
        let run = try await Self.validate(broken, rules: Self.rules)
        #expect(run.status == 1)
        #expect(run.output.contains("INVALID ServiceMonitor/lifeboat"), "\(run.output)")
        #expect(run.output.contains("INVALID Deployment/lifeboat"), "\(run.output)")
        #expect(run.output.contains("INVALID PrometheusRule/lifeboat: its spec differs"), "\(run.output)")
        #expect(run.output.contains("INVALID PodDisruptionBudget/lifeboat"), "\(run.output)")
        #expect(run.output.contains("4 valid, 4 invalid"), "\(run.output)")
    }

    @Test func openBaoAutoRestoreComponentPatchesTheStatefulSet() async throws {
        let manifests = try await Self.render("examples/openbao")
        let run = try await Self.validate(manifests)
        #expect(run.status == 0, "\(run.output)\(run.stderr)")
        #expect(run.output.contains("ok      StatefulSet/openbao"), "\(run.output)")
        #expect(run.output.contains("ok      ConfigMap/lifeboat-auto-restore-catalog-"), "\(run.output)")
        // A sidecar-style init container (it needs its node running) that runs the guard.
        let initContainers = try #require(manifests.range(of: "initContainers:"), "\(manifests)")
        let guardContainer = String(manifests[initContainers.upperBound...]).components(separatedBy: "\n      volumes:")[0]
        #expect(guardContainer.contains("name: lifeboat-auto-restore\n"), "\(guardContainer)")
        #expect(guardContainer.contains("restartPolicy: Always"), "\(guardContainer)")
        #expect(manifests.contains("lifeboat openbao auto-restore --store openbao"))
        #expect(manifests.contains("--node-config /openbao/config/extraconfig-from-values.hcl"))
    }

    /// The catalogs shipped for Kubernetes are valid catalogs.
    @Test func deployedCatalogsValidate() async throws {
        for catalog in ["kubernetes/base/lifeboat.yaml", "kubernetes/openbao-auto-restore/lifeboat.yaml"] {
            let run = try await CommandLineTests.run(["validate", "-c", Self.deploy.appendingPathComponent(catalog).path])
            #expect(run.status == 0, "\(catalog): \(run.stdout)\(run.stderr)")
        }
    }

    // MARK: the image

    /// No container engine runs here: the Containerfile is checked for what the connectors need.
    @Test func containerfileCarriesTheConnectorsTools() throws {
        let text = try String(contentsOf: Self.deploy.appendingPathComponent("container/Containerfile"), encoding: .utf8)
        #expect(text.contains("FROM docker.io/library/debian:12-slim"))
        #expect(text.contains("postgresql-client-15"))
        for tool in ["\"bao\"", "\"etcdutl\""] { #expect(text.contains(tool), "the image lacks \(tool)") }
        #expect(text.contains("COPY --from=builder /out/lifeboat /usr/local/bin/lifeboat"))
        #expect(text.contains("USER 10001:10001"), "the image must not run as root")
    }
}
