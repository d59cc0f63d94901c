#!/usr/bin/env python3
"""Validates rendered manifests offline: `kubectl kustomize DIR | validate.py [--rules FILE]`.

Kubernetes' own kinds go through kubernetes-validate (the Kubernetes JSON schemas, strict: an
unknown field is an error). ServiceMonitor and PrometheusRule, which it does not know, go through
schemas/monitoring.coreos.com-v1.yaml. With --rules, every PrometheusRule must carry exactly the
groups of that Prometheus rules file. Prints one line per object; exits 1 if any fails.
"""
import argparse
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
# Native sidecars (init containers with restartPolicy: Always) are on by default from 1.29.
MINIMUM_KUBERNETES = "1.29"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", help="rendered manifests (default: stdin)")
    parser.add_argument("--rules", help="the Prometheus rules file every PrometheusRule must equal")
    parser.add_argument("--kubernetes-version", default=MINIMUM_KUBERNETES)
    args = parser.parse_args()

    with open(os.path.join(HERE, "schemas", "monitoring.coreos.com-v1.yaml")) as f:
        crd_schemas = yaml.safe_load(f)
    definitions = crd_schemas.pop("$defs")
    rules = None
    if args.rules:
        with open(args.rules) as f:
            rules = yaml.safe_load(f)

    documents = []
    for name in args.files or ["-"]:
        stream = sys.stdin if name == "-" else open(name)
        documents += [d for d in yaml.safe_load_all(stream) if d is not None]
    if not documents:
        print("validate: no objects to validate", file=sys.stderr)
        return 1

    failures = 0
    for document in documents:
        kind, name = document.get("kind"), (document.get("metadata") or {}).get("name")
        what = f"{kind}/{name}"
        try:
            if document.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                schema = crd_schemas.get(kind)
                if schema is None:
                    raise ValueError(f"no schema for {document['apiVersion']} {kind} in schemas/")
                jsonschema.Draft202012Validator({**schema, "$defs": definitions}).validate(document)
                if kind == "PrometheusRule" and rules is not None and document["spec"] != rules:
                    raise ValueError(f"its spec differs from {args.rules}: run deploy/kubernetes/generate-prometheusrule.sh")
            else:
                kubernetes_validate.validate(document, args.kubernetes_version, strict=True)
            print(f"ok      {what}")
        except (jsonschema.ValidationError, kubernetes_validate.utils.ValidationError) as error:
            failures += 1
            path = ".".join(str(p) for p in error.absolute_path)
            print(f"INVALID {what}: {path}: {error.message}")
        except (kubernetes_validate.utils.SchemaNotFoundError, ValueError) as error:
            failures += 1
            print(f"INVALID {what}: {getattr(error, 'message', error)}")
    print(f"{len(documents) - failures} valid, {failures} invalid")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
