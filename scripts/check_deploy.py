"""The Python side of scripts/check-deploy.sh (run with the deploy venv's python):

  invariants FILE        what the services and the rollout rely on in a rendered chart,
                         beyond schema validity (env, probes, security, peers and the
                         NetworkPolicies that must match them, hooks)
  validate VERSIONS SCHEMA_DIR FILE…
                         every object against the Kubernetes OpenAPI schemas of each of
                         VERSIONS (comma-separated; kubernetes-validate's, strict) and every
                         custom resource against the CRD schemas vendored in SCHEMA_DIR
                         (helm/crd-schemas), strict like the API server's field validation;
                         a kind neither knows fails
  calls ROOT             values.yaml `calls.*.rpc` against the peers the code asks for
                         (`runtime.peer("…")` in services/*/src)

Each prints what is wrong (or one "ok" line) and exits 1 if anything is.
"""

import glob
import json
import os
import re
import sys

import yaml

PEERS = "GUESTLOOP__PEERS__"


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def component(obj):
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def pod_spec(obj):
    if obj["kind"] == "Pod":
        return obj["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj):
    if obj["kind"] == "Pod":
        return obj["metadata"].get("labels", {})
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selects(selector, labels):
    """Does a LabelSelector select these labels?"""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        have = labels.get(e["key"])
        op = e["operator"]
        if op == "In" and have not in e["values"]:
            return False
        if op == "NotIn" and have in e["values"]:
            return False
        if op == "Exists" and have is None:
            return False
        if op == "DoesNotExist" and have is not None:
            return False
    return True


def invariants(path):
    docs = load(path)
    bad = []
    deps = [d for d in docs if d["kind"] == "Deployment"]
    jobs = [d for d in docs if d["kind"] == "Job"]
    tests = [d for d in docs if d["kind"] == "Pod"]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    services = {d["metadata"]["name"]: component(d) for d in docs if d["kind"] == "Service"}
    if not deps:
        bad.append("no Deployments")
    release = {k: v for k, v in (deps[0]["spec"]["selector"]["matchLabels"] if deps else {}).items()
               if k != "app.kubernetes.io/component"}

    # Every Pod the chart makes runs locked down and bounded.
    for obj in deps + jobs + tests:
        n, pod = obj["metadata"]["name"], pod_spec(obj)
        psc = pod.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            bad.append(f"{n}: mounts a service account token")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if not (psc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem")
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]
                    and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
                    and sc.get("allowPrivilegeEscalation") is False):
                bad.append(f"{n}/{c['name']}: securityContext incomplete")
            r = c.get("resources", {})
            if not (r.get("requests") and r.get("limits")):
                bad.append(f"{n}/{c['name']}: resources unset")

    # Whom each service reaches at this release's pods, from its peer URLs.
    url_of = {comp: f"http://{name}:50051" for name, comp in services.items()}
    internal = {}
    for d in deps:
        n, pod = d["metadata"]["name"], d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = {e["name"]: e for e in c["env"]}
        for k in ["GUESTLOOP_CONFIG", "GUESTLOOP__DATABASE__URL", "GUESTLOOP__AUTH__PUBLIC_KEY_PATH",
                  "GUESTLOOP__AUTH__SIGNING_KEY_PATH", "OTEL_SERVICE_NAME", "RUST_LOG"]:
            if k not in env:
                bad.append(f"{n}: env {k} missing")
        want = {"GUESTLOOP__GRPC__LISTEN_ADDR": "0.0.0.0:50051",
                "GUESTLOOP__ADMIN__LISTEN_ADDR": "0.0.0.0:9090",
                "GUESTLOOP__DATABASE__MIGRATE_ON_START": "false"}
        for k, v in want.items():
            if env.get(k, {}).get("value") != v:
                bad.append(f"{n}: {k} != {v}")
        if "secretKeyRef" not in env.get("GUESTLOOP__DATABASE__URL", {}).get("valueFrom", {}):
            bad.append(f"{n}: database URL not from a Secret")
        for p in ["startupProbe", "readinessProbe", "livenessProbe"]:
            if c.get(p, {}).get("grpc", {}).get("port") != 50051:
                bad.append(f"{n}: {p} not gRPC on 50051")
        grace = int(env["GUESTLOOP__GRPC__SHUTDOWN_GRACE"]["value"].removesuffix("ms")) / 1000
        if pod["terminationGracePeriodSeconds"] <= grace:
            bad.append(f"{n}: grace period <= drain time")
        # Peers: URLs of release Services that exist, and every subscriber has one (the
        # service refuses to start otherwise).
        peers = {k[len(PEERS):].lower().replace("_", "-"): e.get("value", "")
                 for k, e in env.items() if k.startswith(PEERS)}
        subs = [s for s in env.get("GUESTLOOP__OUTBOX__SUBSCRIBERS", {}).get("value", "").split(",") if s]
        for s in subs:
            if s.replace("_", "-") not in peers:
                bad.append(f"{n}: subscriber {s} has no GUESTLOOP__PEERS__{s.upper()}")
        mine = set()
        for p, url in peers.items():
            m = re.fullmatch(r"http://([a-z0-9-]+):50051", url)
            if url == url_of.get(p):
                mine.add(p)
            elif m and m.group(1).endswith("-" + p) and m.group(1) not in services:
                bad.append(f"{n}: peer {p} at {url}, a Service this release does not have")
        internal[component(d)] = mine
    if not any(internal.values()) and len(deps) > 1:
        bad.append("no service calls another: peers missing")

    # NetworkPolicies: every Pod of the release in exactly one, in both directions, and
    # the gRPC rules are exactly the peers above.
    if policies:
        for obj in deps + jobs + tests:
            n, labels = obj["metadata"]["name"], pod_labels(obj)
            mine = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
            if len(mine) != 1:
                bad.append(f"{n}: in {len(mine)} NetworkPolicies, not 1")
                continue
            spec = mine[0]["spec"]
            if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
                bad.append(f"{n}: NetworkPolicy does not cover both directions")
            for rule in spec.get("egress", []):
                if not rule.get("ports"):
                    bad.append(f"{n}: egress rule without ports")
            for rule in spec.get("ingress", []):
                if not rule.get("ports") or not rule.get("from"):
                    bad.append(f"{n}: ingress rule open to any port or source")
            dns = [r for r in spec.get("egress", [])
                   if {(p.get("port"), p.get("protocol")) for p in r.get("ports", [])} >= {(53, "UDP"), (53, "TCP")}]
            if not dns:
                bad.append(f"{n}: no DNS egress (UDP and TCP 53)")
        comps = {component(d) for d in deps}

        def release_components(peer_list):
            """The release components a list of NetworkPolicyPeers lets through."""
            out = set()
            for peer in peer_list:
                sel = peer.get("podSelector")
                if sel is None or "namespaceSelector" in peer:
                    continue
                if not all(sel.get("matchLabels", {}).get(k) == v for k, v in release.items()):
                    continue
                for c in comps | {"health-test"}:
                    if selects(sel, {**release, "app.kubernetes.io/component": c}):
                        out.add(c)
            return out

        for d in deps:
            n, x = d["metadata"]["name"], component(d)
            pol = next((p for p in policies if selects(p["spec"]["podSelector"], pod_labels(d))), None)
            if pol is None:
                continue
            spec = pol["spec"]
            out = set()
            for rule in spec.get("egress", []):
                if any(p.get("port") == 50051 for p in rule.get("ports", [])):
                    out |= release_components(rule.get("to", []))
            if out != internal[x]:
                bad.append(f"{n}: NetworkPolicy lets it call {sorted(out)}, its peers are {sorted(internal[x])}")
            callers = {y for y, peers in internal.items() if x in peers}
            into = set()
            for rule in spec.get("ingress", []):
                if any(p.get("port") == 50051 for p in rule.get("ports", [])):
                    into |= release_components(rule.get("from", []))
            if into - {"health-test"} != callers:
                bad.append(f"{n}: NetworkPolicy lets {sorted(into - {'health-test'})} call it, "
                           f"its callers are {sorted(callers)}")
            if tests and "health-test" not in into:
                bad.append(f"{n}: the health test cannot reach it")

    if len(jobs) != len(deps) and jobs:
        bad.append(f"{len(jobs)} migration Jobs for {len(deps)} Deployments")
    for j in jobs:
        a = j["metadata"].get("annotations", {})
        if a.get("helm.sh/hook") != "pre-install,pre-upgrade" or \
           a.get("helm.sh/hook-delete-policy") != "before-hook-creation":
            bad.append(f"{j['metadata']['name']}: hook annotations")
        if j["spec"]["template"]["spec"]["containers"][0]["args"] != ["migrate"]:
            bad.append(f"{j['metadata']['name']}: not running migrate")
    # The test Pod: a helm test hook that checks every service through its Service.
    for t in tests:
        n = t["metadata"]["name"]
        if t["metadata"].get("annotations", {}).get("helm.sh/hook") != "test":
            bad.append(f"{n}: not a helm test hook")
        checked = {}
        for c in t["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            checked[c["name"]] = env.get("GUESTLOOP_HEALTH_URL")
        want = {component(d): url_of.get(component(d)) for d in deps}
        if checked != want:
            bad.append(f"{n}: checks {checked}, the services are {want}")
    print("\n".join(bad) or f"ok: {len(deps)} Deployments, {len(jobs)} Jobs, {len(tests)} test Pods, "
          f"{len(policies)} NetworkPolicies")
    return 1 if bad else 0


def strict(schema):
    """A CRD schema as the API server applies it with field validation Strict: an object
    with declared properties takes no others (unless it preserves unknown fields)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out \
                and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        if out.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


META = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
    "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}


def validate(versions, schema_dir, paths):
    """kubernetes-validate's own check (utils.validate, --strict), in one process with its
    schema files parsed once instead of once per object and version (7x faster), and the
    vendored CRD schemas for the kinds it does not have."""
    import functools

    import jsonschema
    import kubernetes_validate.utils as kv
    kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)
    schemas = {}
    for f in glob.glob(os.path.join(schema_dir, "*.json")):
        group, kind, version = os.path.basename(f)[:-5].split("_")
        with open(f) as fh:
            s = strict(json.load(fh))
        s["properties"]["metadata"] = META
        schemas[(f"{group}/{version}", kind)] = s
    bad, n, ncr = [], 0, 0
    for path in paths:
        for d in load(path):
            api, kind = d.get("apiVersion", ""), d.get("kind", "")
            where = f"{os.path.basename(path)}: {kind}/{d.get('metadata', {}).get('name')}"
            if (api, kind) in schemas:
                ncr += 1
                v = jsonschema.Draft7Validator(schemas[(api, kind)])
                for e in sorted(v.iter_errors(d), key=lambda e: list(e.path)):
                    bad.append(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
                continue
            n += 1
            for version in versions:
                try:
                    kv.validate(d, version, strict=True)
                except kv.ValidationError as e:
                    bad.append(f"{where}: Kubernetes {e.version}: {'.'.join(map(str, e.path))}: {e.message}")
                except kv.SchemaNotFoundError:
                    bad.append(f"{where}: no schema for {api} {kind} in Kubernetes {version} "
                               f"(nor in {schema_dir})")
                except (kv.InvalidSchemaError, kv.VersionNotSupportedError) as e:
                    bad.append(f"{where}: {e.message}")
    print("\n".join(bad) or f"ok: {n} objects against Kubernetes {', '.join(versions)}; "
          f"{ncr} custom resources against their CRDs")
    return 1 if bad else 0


def calls(root):
    with open(os.path.join(root, "helm/guestloop/values.yaml")) as f:
        values = yaml.safe_load(f)
    bad = []
    for svc_dir in sorted(glob.glob(os.path.join(root, "services/*/"))):
        svc = os.path.basename(svc_dir.rstrip("/"))
        used = set()
        for src in glob.glob(os.path.join(svc_dir, "src/**/*.rs"), recursive=True):
            with open(src) as f:
                used |= {m.replace("_", "-") for m in re.findall(r'\.peer\("([a-z_]+)"\)', f.read())}
        listed = set(values.get("calls", {}).get(svc, {}).get("rpc") or [])
        if used != listed:
            bad.append(f"{svc}: the code calls {sorted(used)}, values.yaml calls.{svc}.rpc says {sorted(listed)}")
    print("\n".join(bad) or "ok: calls.*.rpc matches the code")
    return 1 if bad else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "invariants":
        sys.exit(invariants(args[0]))
    if cmd == "validate":
        sys.exit(validate(args[0].split(","), args[1], args[2:]))
    if cmd == "calls":
        sys.exit(calls(args[0]))
    sys.exit(f"unknown command {cmd}")
