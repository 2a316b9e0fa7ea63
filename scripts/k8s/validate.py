"""Validates rendered Kubernetes manifests offline (test/deploy/k8s.test.ts).

Reads multi-document YAML on stdin. Built-in kinds are checked against the Kubernetes API
schemas that kubernetes-validate ships, strictly (unknown fields are errors); the CRDs framewire
uses (KEDA ScaledObject, Prometheus Operator ServiceMonitor) against the JSON schemas in
deploy/k8s/schemas. Prints one JSON object: tool versions and a result per object.
"""
import json
import os
import sys
from importlib.metadata import version as dist_version

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "k8s", "schemas")
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda.sh-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
}


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else "1.32.0"
    results = []
    for doc in yaml.safe_load_all(sys.stdin):
        if not doc:
            continue
        key = (doc.get("apiVersion"), doc.get("kind"))
        name = (doc.get("metadata") or {}).get("name", "")
        res = {"apiVersion": key[0], "kind": key[1], "name": name, "ok": True, "against": ""}
        try:
            if key in CRDS:
                with open(os.path.join(SCHEMAS, CRDS[key])) as f:
                    schema = json.load(f)
                res["against"] = "deploy/k8s/schemas/" + CRDS[key]
                jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
            else:
                res["against"] = f"kubernetes {version} (strict)"
                kubernetes_validate.validate(doc, version, strict=True)
        except Exception as err:  # every failure is reported, none stops the others
            res["ok"] = False
            res["error"] = f"{type(err).__name__}: {getattr(err, 'message', None) or err}"
        results.append(res)
    print(json.dumps({
        "tools": {"kubernetes-validate": dist_version("kubernetes-validate"), "jsonschema": dist_version("jsonschema"), "python": sys.version.split()[0], "kubernetes": version},
        "results": results,
    }))


if __name__ == "__main__":
    main()
