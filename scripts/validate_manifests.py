"""Validates Kubernetes manifests (multi-document YAML files, e.g. `helm template` output).

Run by `scripts/ops.sh validate-manifests` with the Python of its virtualenv:

    python validate_manifests.py --crd-schemas DIR --export-crd-schemas   (once, at install)
    python validate_manifests.py --crd-schemas DIR --versions 1.29 1.30 ... -- FILE...

- Built-in kinds: against the strict JSON schemas kubernetes-validate bundles (unknown fields are
  errors), once per Kubernetes version given.
- Custom resources: ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1) and ScaledObject
  (keda.sh/v1alpha1) against the JSON schema of the cloudcoil models generated from the
  prometheus-operator and KEDA CRDs' openAPIV3Schema, made strict here (every object with declared
  properties refuses others), exported once into DIR at install. A CRD's schema does not depend
  on the Kubernetes version.
- A document of any other kind, with no schema in either place, is an error: nothing passes
  unchecked.

Prints one line per document and version group; exits 1 on any error.
"""

import argparse
import sys

import json
import os
import re

import jsonschema
import referencing
import yaml
from kubernetes_validate import utils as kv

CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("cloudcoil.models.prometheus_operator.v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("cloudcoil.models.prometheus_operator.v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"): ("cloudcoil.models.keda.v1alpha1", "ScaledObject"),
}


def strict(node):
    """Sets additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


def export_crd_schemas(directory):
    """Writes the strict JSON schema of each CRD kind into DIRECTORY (done once, at install:
    importing the pydantic models takes seconds)."""
    os.makedirs(directory, exist_ok=True)
    for (api_version, kind), (module_name, cls_name) in CRDS.items():
        module = __import__(module_name, fromlist=[cls_name])
        model = getattr(module, cls_name)
        schema = strict(model.model_json_schema(mode="validation"))
        schema["x-callahead-source"] = f"{module_name}.{cls_name}"
        with open(os.path.join(directory, crd_file(api_version, kind)), "w") as f:
            json.dump(schema, f)


def crd_file(api_version, kind):
    return f"{api_version.replace('/', '_')}_{kind}.json"


_validators = {}


def crd_validator(directory, api_version, kind):
    key = (api_version, kind)
    if key not in _validators:
        with open(os.path.join(directory, crd_file(api_version, kind))) as f:
            schema = json.load(f)
        _validators[key] = (jsonschema.Draft202012Validator(schema), schema["x-callahead-source"])
    return _validators[key]


_k8s = {}


def k8s_validator(version, api_version, kind):
    """kubernetes-validate's strict schema for a kind, with its definitions loaded once per version
    (its own `validate` reads both files on every call, which is slow over many documents)."""
    if version.startswith("v"):
        version = version[1:]
    if kv.major_minor(version) > kv.latest_version():
        raise kv.VersionNotSupportedError(version=version)
    # As kubernetes-validate does: the newest bundled version not newer than the one asked for,
    # and apps/v1 -> apps-v1, rbac.authorization.k8s.io/v1 -> rbac-v1.
    schemas = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(version)]
    if not schemas:
        raise kv.VersionNotSupportedError(version=version)
    directory = f"kubernetes-json-schema/v{schemas[-1]}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    key = (directory, group, kind)
    if key not in _k8s:
        if directory not in _k8s:
            _k8s[directory] = referencing.Resource.from_contents(
                kv.schema_contents(f"{directory}/_definitions.json", version)
            )
        try:
            schema = kv.schema_contents(f"{directory}/{kind.lower()}-{group}.json", version)
        except FileNotFoundError:
            raise kv.SchemaNotFoundError(version=kv.major_minor(version), kind=kind, api_version=api_version)
        registry = referencing.Resource.from_contents(schema) @ (_k8s[directory] @ referencing.Registry())
        _k8s[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    return _k8s[key]


def where(error):
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--crd-schemas", required=True, help="directory of the exported CRD schemas")
    parser.add_argument("--export-crd-schemas", action="store_true", help="write them there and exit")
    parser.add_argument("--versions", nargs="+", default=[])
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.export_crd_schemas:
        export_crd_schemas(args.crd_schemas)
        return 0
    if not args.versions or not args.files:
        parser.error("--versions and at least one FILE are needed")
    failures = 0
    for filename in args.files:
        with open(filename) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not docs:
            print(f"ERROR {filename}: no manifests")
            failures += 1
        for doc in docs:
            api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
            name = f"{kind}/{doc.get('metadata', {}).get('name', '?')}"
            if (api_version, kind) in CRDS:
                validator, source = crd_validator(args.crd_schemas, api_version, kind)
                errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
                for e in errors:
                    print(f"ERROR {filename}: {name} ({api_version}): {where(e)}: {e.message}")
                failures += len(errors)
                if not errors:
                    print(f"ok    {filename}: {name} ({api_version}) against the CRD schema of {source} (strict)")
                continue
            bad = []
            for version in args.versions:
                try:
                    for e in k8s_validator(version, api_version, kind).iter_errors(doc):
                        bad.append(f"Kubernetes {version}: {where(e)}: {e.message}")
                except kv.SchemaNotFoundError as e:
                    bad.append(f"no schema: {e.message}")
                    break
                except kv.VersionNotSupportedError:
                    bad.append(f"kubernetes-validate has no schemas for Kubernetes {version}")
            for b in bad:
                print(f"ERROR {filename}: {name} ({api_version}): {b}")
            failures += len(bad)
            if not bad:
                print(f"ok    {filename}: {name} ({api_version}) on Kubernetes {', '.join(args.versions)} (strict)")
    if failures:
        print(f"{failures} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
