#!/usr/bin/env python3
"""Turns a CustomResourceDefinition (YAML, stdin) into the JSON schema that
scripts/check-deploy.sh validates custom resources with (stdout): the openAPIV3Schema of
the version named in argv[1], without descriptions and without status (a manifest has
none), keys sorted, one line. Usage: strip-crd.py v1 < crd.yaml > <group>_<kind>_<version>.json
"""
import json
import sys

import yaml


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


crd = yaml.safe_load(sys.stdin)
version = next(v for v in crd["spec"]["versions"] if v["name"] == sys.argv[1])
schema = strip(version["schema"]["openAPIV3Schema"])
schema.get("properties", {}).pop("status", None)
json.dump(schema, sys.stdout, sort_keys=True, separators=(",", ":"))
sys.stdout.write("\n")
