#!/usr/bin/env bash
# Runs the image scripts/build-image.sh built, as Kubernetes runs it (helm/guestloop's
# deployment and migration Job), against a throwaway PostgreSQL: for each of the five
# services `<service> migrate`, then `<service> serve` as the image's USER (10001) with a
# read-only root filesystem, no capabilities, no-new-privileges, the chart's environment,
# its default config (helm/guestloop/values.yaml config.toml) mounted at
# /etc/guestloop/guestloop.toml and JWT keys at /etc/guestloop/keys, /tmp a tmpfs. Each
# container has a network namespace of its own, so it listens on the image's default
# 0.0.0.0:50051 / 0.0.0.0:9090 without colliding with anything here; it reaches PostgreSQL
# through the server's Unix socket mounted at /run/postgresql, and the checks reach it by
# entering its network namespace (nsenter). Checked: grpc.health.v1 Check of "" and of
# "guestloop.liveness" answers SERVING, /metrics answers, the process runs as uid 10001;
# then SIGTERM and the exit code must be 0.
#
# KEEP IN STEP WITH docker/Dockerfile and helm/guestloop (paths, user, environment).
#
# Usage: bash scripts/run-image-check.sh [--runtime auto|podman|runc|crun|chroot]
#   auto (default) takes the first that can run a container here: podman (rootful,
#   storage in a temporary directory, overlay else vfs; crun, else runc, as its OCI
#   runtime), then runc or crun alone on an umoci-unpacked bundle, then chroot + setpriv
#   (no namespaces: no read-only root, the services listen on free loopback ports).
#   Each fallback prints what was refused.
# Needs root, the PostgreSQL 15 binaries and the image (bash scripts/build-image.sh);
# installs podman, crun, runc, umoci, python3-venv and openssl with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
source scripts/image-lib.sh

runtime=auto
while (($#)); do
  case "$1" in
    --runtime) runtime="${2:?--runtime needs a value}"; shift 2 ;;
    --runtime=*) runtime="${1#*=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
case "$runtime" in auto|podman|runc|crun|chroot) ;; *) die "unknown runtime: $runtime" ;; esac
[[ $EUID -eq 0 ]] || die "run as root (containers, and PostgreSQL as the postgres user)"
[[ -f "$IMAGE_ARCHIVE" && -f "$IMAGE_LAYOUT/index.json" ]] \
  || die "no image at $IMAGE_LAYOUT: run bash scripts/build-image.sh first"
PG_BIN="$(pg_config --bindir 2>/dev/null)" || die "PostgreSQL binaries (pg_config) not found"
need_pkgs python3 python3-venv openssl umoci
case "$runtime" in
  auto) need_pkgs podman crun runc ;; podman) need_pkgs podman ;; runc|crun) need_pkgs "$runtime" ;;
esac

# (binary, schema) as libs/testkit's SERVICES; each service's role is <schema>_svc.
SERVICES=(guest-profile:guest_profile feedback-intake:feedback follow-up-scheduler:followup
  notification:notification metrics:metrics)
CONTAINER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

WORK="$(mktemp -d /tmp/guestloop-image-check.XXXXXX)"
chmod 0755 "$WORK"
PG_DIR="$WORK/pg" PG_SOCK="$WORK/pgsock"
PODMAN=()
cleanup() {
  set +e
  if ((${#PODMAN[@]})); then
    "${PODMAN[@]}" rm -f -a >/dev/null 2>&1
    "${PODMAN[@]}" system reset -f >/dev/null 2>&1
  fi
  for oci in runc crun; do
    command -v "$oci" >/dev/null || continue
    for id in $("$oci" list -q 2>/dev/null | grep '^guestloop-check-'); do "$oci" delete -f "$id"; done
  done
  [[ -f "$PG_DIR/postmaster.pid" ]] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -m immediate stop >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the client: Python grpcio (the test venv if it has it, else one of our own) ---------
PY="$HOME/.cache/guestloop/pyenv/bin/python"
if ! "$PY" -c 'import grpc_health.v1.health_pb2' 2>/dev/null; then
  PY="$IMAGE_CACHE/pyenv/bin/python"
  if ! "$PY" -c 'import grpc_health.v1.health_pb2' 2>/dev/null; then
    say "creating $IMAGE_CACHE/pyenv (grpcio, grpcio-health-checking from PyPI)"
    python3 -m venv "$IMAGE_CACHE/pyenv"
    "$PY" -m pip install -q grpcio grpcio-health-checking
  fi
fi
cat >"$WORK/probe.py" <<'PY'
"""probe.py HOST:GRPC_PORT ADMIN_PORT TIMEOUT: waits until grpc.health.v1 Check of "" and of
"guestloop.liveness" answer SERVING, then GETs /metrics on ADMIN_PORT."""
import sys, time, urllib.request
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

addr, admin, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline, last = time.monotonic() + timeout, "no answer"
with grpc.insecure_channel(addr) as channel:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", "guestloop.liveness"):
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2).status
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
            if time.monotonic() > deadline:
                sys.exit(f"health {name!r} at {addr}: {last}")
            time.sleep(0.2)
host = addr.rsplit(":", 1)[0]
body = urllib.request.urlopen(f"http://{host}:{admin}/metrics", timeout=5).read().decode()
if "grpc_server" not in body and "# TYPE" not in body:
    sys.exit(f"/metrics at {host}:{admin} answered without metrics")
print(f"SERVING ('' and guestloop.liveness), /metrics {len(body)} bytes")
PY

# --- PostgreSQL: throwaway, Unix socket (for the containers) and loopback TCP ------------
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$PG_DIR" "$PG_SOCK"
chown postgres: "$PG_DIR" "$PG_SOCK"
chmod 0755 "$PG_SOCK"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR" -U postgres -A trust >"$WORK/initdb.log"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/postgres.log" -w \
  -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
psql_admin() { "$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_admin -d postgres -c 'CREATE DATABASE guestloop'
for entry in "${SERVICES[@]}"; do  # libs/db bootstrap_sql
  schema=${entry#*:} role=${entry#*:}_svc
  psql_admin -d guestloop <<SQL
DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN; END IF; END \$\$;
CREATE SCHEMA IF NOT EXISTS $schema AUTHORIZATION $role;
ALTER ROLE $role SET search_path = $schema;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
done
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT, socket $PG_SOCK; 5 roles and schemas"

# --- what the pod mounts: config (the chart's default), JWT keys ------------------------
python3 - helm/guestloop/values.yaml "$WORK/guestloop.toml" <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
# The block scalar config.toml: `config:` at the top level, then `  toml: |`.
try:
    start = lines.index("config:")
    toml_at = next(i for i in range(start + 1, len(lines))
                   if re.fullmatch(r"\s+toml:\s*\|[-+]?\s*", lines[i]))
except (ValueError, StopIteration):
    sys.exit("run-image-check.sh: no config.toml block in helm/guestloop/values.yaml")
key_indent = len(lines[toml_at]) - len(lines[toml_at].lstrip())
body = []
for line in lines[toml_at + 1:]:
    if line.strip() and len(line) - len(line.lstrip()) <= key_indent:
        break
    body.append(line)
indent = min(len(l) - len(l.lstrip()) for l in body if l.strip())
open(sys.argv[2], "w").write("\n".join(l[indent:] for l in body).rstrip() + "\n")
PY
mkdir -p "$WORK/keys"
openssl genpkey -algorithm ed25519 -out "$WORK/keys/jwt-signing.pem" 2>/dev/null
openssl pkey -in "$WORK/keys/jwt-signing.pem" -pubout -out "$WORK/keys/jwt-public.pem"
# As the chart's Secret volume: defaultMode 0440, readable through fsGroup 10001.
chown 0:10001 "$WORK/keys"/*.pem "$WORK/guestloop.toml"
chmod 0440 "$WORK/keys"/*.pem "$WORK/guestloop.toml"

# The chart's environment (guestloop.envMap), drain delay shortened for the check.
service_env() {  # service_env SERVICE SCHEMA DB_URL: KEY=VALUE lines
  printf '%s\n' \
    GUESTLOOP_CONFIG=/etc/guestloop/guestloop.toml \
    GUESTLOOP__DATABASE__MIGRATE_ON_START=false \
    GUESTLOOP__AUTH__PUBLIC_KEY_PATH=/etc/guestloop/keys/jwt-public.pem \
    GUESTLOOP__AUTH__SIGNING_KEY_PATH=/etc/guestloop/keys/jwt-signing.pem \
    GUESTLOOP__GRPC__DRAIN_DELAY=1s GUESTLOOP__GRPC__SHUTDOWN_GRACE=10000ms \
    "OTEL_SERVICE_NAME=$1" RUST_LOG=info "GUESTLOOP__DATABASE__URL=$3"
}
socket_url() { echo "postgres://${1}_svc@localhost:$PG_PORT/guestloop?host=/run/postgresql"; }

# --- the runtimes: setup (probe), migrate, start, pid, stop ------------------------------
# podman (rootful; its storage in the work dir). Its default ulimits (nofile 1048576) are
# above this host's hard limits, so the host's are passed; crun first, then runc.
ULIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=32768:32768")
PROBE=(/bin/sh -c 'id -u; touch /probe 2>/dev/null && echo writable root || echo read-only root')
podman_setup() {
  local driver oci out
  for driver in overlay vfs; do
    # (overlay wants a runroot path under 50 characters)
    PODMAN=(podman --root "$WORK/p-$driver/root" --runroot "$WORK/p-$driver/run"
      --storage-driver "$driver" --cgroup-manager cgroupfs --events-backend file)
    if ! out="$("${PODMAN[@]}" load -q -i "$IMAGE_ARCHIVE" 2>&1)"; then
      say "podman load refused (storage $driver): $out"
      "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
      continue
    fi
    IMAGE="$(sed -n 's/^Loaded image[^:]*: *//p' <<<"$out" | head -1)"
    [[ -n "$IMAGE" ]] || IMAGE="$IMAGE_REF"
    for oci in crun runc; do
      command -v "$oci" >/dev/null || continue
      if out="$("${PODMAN[@]}" --runtime "$oci" run --rm --network none --read-only \
        --read-only-tmpfs=false "${ULIMITS[@]}" "$IMAGE" "${PROBE[@]}" 2>&1)"; then
        [[ "$out" == $'10001\nread-only root' ]] || die "the image runs as: $out (want 10001, read-only root)"
        PODMAN+=(--runtime "$oci")
        say "podman $(podman --version | awk '{print $NF}') with $oci, storage $driver: image $IMAGE, uid 10001, read-only root"
        return 0
      fi
      say "podman run with $oci refused (storage $driver): $out"
    done
    # The storage driver worked (the image loaded); the runtimes did not.
    break
  done
  "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
  PODMAN=()
  return 1
}
podman_args() {  # podman_args SERVICE SCHEMA
  # shellcheck disable=SC2054 # the commas are podman's
  local e args=(--network none --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m
    --cap-drop ALL --security-opt no-new-privileges "${ULIMITS[@]}"
    -v "$WORK/guestloop.toml:/etc/guestloop/guestloop.toml:ro"
    -v "$WORK/keys:/etc/guestloop/keys:ro" -v "$PG_SOCK:/run/postgresql")
  while IFS= read -r e; do args+=(-e "$e"); done < <(service_env "$1" "$2" "$(socket_url "$2")")
  printf '%s\0' "${args[@]}"
}
podman_migrate() {
  local args; mapfile -d '' args < <(podman_args "$1" "$2")
  "${PODMAN[@]}" run --rm "${args[@]}" "$IMAGE" "$1" migrate
}
podman_start() {
  local args; mapfile -d '' args < <(podman_args "$1" "$2")
  "${PODMAN[@]}" run -d --name "guestloop-check-$1" "${args[@]}" "$IMAGE" "$1" serve >/dev/null
}
podman_pid() { "${PODMAN[@]}" inspect -f '{{.State.Pid}}' "guestloop-check-$1"; }
podman_stop() {  # SIGTERM, then the exit code
  local code
  "${PODMAN[@]}" kill --signal TERM "guestloop-check-$1" >/dev/null
  code="$("${PODMAN[@]}" wait "guestloop-check-$1")"
  "${PODMAN[@]}" logs "guestloop-check-$1" >"$WORK/$1.log" 2>&1
  "${PODMAN[@]}" rm "guestloop-check-$1" >/dev/null
  return "$code"
}
podman_log() { "${PODMAN[@]}" logs "guestloop-check-$1" 2>&1 | tail -20; }

# runc or crun on an umoci-unpacked bundle (umoci writes the OCI runtime config from the
# image's: user, env, cwd; nofile 1024)
ROOTFS="" OCI=""
unpack_rootfs() {
  [[ -n "$ROOTFS" ]] && return 0
  umoci unpack --image "$IMAGE_LAYOUT:$IMAGE_REF" "$WORK/bundle" >/dev/null
  ROOTFS="$WORK/bundle/rootfs"
  say "unpacked: $(du -sm "$ROOTFS" | cut -f1) MB in $ROOTFS"
}
bundle_for() {  # bundle_for SERVICE SCHEMA NAME ARGS...: a bundle for one run, printed
  local svc=$1 schema=$2 dir="$WORK/oci-run/$3"
  shift 3
  mkdir -p "$dir"
  service_env "$svc" "$schema" "$(socket_url "$schema")" >"$dir/env"
  python3 - "$WORK/bundle/config.json" "$dir/config.json" "$dir/env" \
    "$ROOTFS" "$WORK" "$PG_SOCK" "$@" <<'PY'
import json, sys
src, dst, env, rootfs, work, sock, *args = sys.argv[1:]
c = json.load(open(src))
p = c["process"]
p["terminal"] = False
p["args"] = args  # the image's PATH finds the binary, as with CMD
p["env"] += [l for l in open(env).read().splitlines() if l]
p["noNewPrivileges"] = True
p["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
c["root"] = {"path": rootfs, "readonly": True}
bind = lambda s, d, ro: {"destination": d, "type": "bind", "source": s,
                         "options": ["rbind", "ro" if ro else "rw", "nosuid", "nodev"]}
c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/tmp"] + [
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "nodev", "mode=1777", "size=64m"]},
    bind(f"{work}/guestloop.toml", "/etc/guestloop/guestloop.toml", True),
    bind(f"{work}/keys", "/etc/guestloop/keys", True),
    bind(sock, "/run/postgresql", False),
]
json.dump(c, open(dst, "w"), indent=1)
PY
  echo "$dir"
}
bundle_setup() {  # bundle_setup runc|crun
  local out
  OCI=$1
  command -v "$OCI" >/dev/null || { say "$OCI is not installed"; return 1; }
  unpack_rootfs
  # Mount points the read-only root cannot get at run time.
  mkdir -p "$ROOTFS/etc/guestloop/keys" "$ROOTFS/run/postgresql"
  touch "$ROOTFS/etc/guestloop/guestloop.toml"
  if out="$("$OCI" run --bundle "$(bundle_for guest-profile guest_profile probe "${PROBE[@]}")" \
    guestloop-check-probe 2>&1)" && [[ "$out" == $'10001\nread-only root' ]]; then
    say "$OCI $("$OCI" --version | awk 'NR==1{print $NF}') on the unpacked bundle (read-only root)"
    return 0
  fi
  say "$OCI run refused: $out"
  return 1
}
declare -A OCI_JOB=()
bundle_migrate() { "$OCI" run --bundle "$(bundle_for "$1" "$2" "$1-migrate" "$1" migrate)" "guestloop-check-$1-migrate"; }
bundle_start() {
  "$OCI" run --bundle "$(bundle_for "$1" "$2" "$1" "$1" serve)" "guestloop-check-$1" >"$WORK/$1.log" 2>&1 &
  OCI_JOB[$1]=$!
}
bundle_pid() {
  local _
  for _ in $(seq 50); do
    "$OCI" state "guestloop-check-$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' \
      && return 0
    sleep 0.1
  done
  return 1
}
bundle_stop() { "$OCI" kill "guestloop-check-$1" TERM; wait "${OCI_JOB[$1]}"; }
bundle_log() { tail -20 "$WORK/$1.log"; }

# chroot + setpriv: no namespaces, so no read-only root and loopback TCP on free ports
declare -A CHROOT_JOB=() CHROOT_PORTS=()
chroot_setup() {
  unpack_rootfs
  mkdir -p "$ROOTFS/etc/guestloop/keys"
  cp -p "$WORK/guestloop.toml" "$ROOTFS/etc/guestloop/"
  cp -p "$WORK/keys"/*.pem "$ROOTFS/etc/guestloop/keys/"
  say "chroot + setpriv: no read-only root, no namespaces (host network, free loopback ports)"
}
chroot_run() {  # chroot_run SERVICE SCHEMA ARG [KEY=VALUE...]
  local svc=$1 schema=$2 arg=$3 env
  shift 3
  mapfile -t env < <(service_env "$svc" "$schema" "postgres://${schema}_svc@127.0.0.1:$PG_PORT/guestloop")
  chroot "$ROOTFS" /usr/bin/setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all \
    /usr/bin/env -i "PATH=$CONTAINER_PATH" "${env[@]}" "$@" "$svc" "$arg"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
chroot_migrate() { chroot_run "$1" "$2" migrate; }
chroot_start() {
  CHROOT_PORTS[$1]="$(free_port) $(free_port)"
  read -r grpc admin <<<"${CHROOT_PORTS[$1]}"
  chroot_run "$1" "$2" serve "GUESTLOOP__GRPC__LISTEN_ADDR=127.0.0.1:$grpc" \
    "GUESTLOOP__ADMIN__LISTEN_ADDR=127.0.0.1:$admin" >"$WORK/$1.log" 2>&1 &
  CHROOT_JOB[$1]=$!
}
chroot_pid() { pgrep -P "${CHROOT_JOB[$1]}" -x "${1:0:15}" || echo "${CHROOT_JOB[$1]}"; }  # comm: 15 chars
chroot_stop() { kill -TERM "$(chroot_pid "$1")"; wait "${CHROOT_JOB[$1]}"; }
chroot_log() { tail -20 "$WORK/$1.log"; }

# --- pick the runtime ----------------------------------------------------------------------
pick() {
  case "$1" in
    podman) podman_setup ;;
    runc|crun) bundle_setup "$1" ;;
    chroot) chroot_setup ;;
  esac
}
if [[ "$runtime" == auto ]]; then
  for candidate in podman runc crun chroot; do
    if pick "$candidate"; then runtime=$candidate; break; fi
    say "falling back from $candidate"
  done
  [[ "$runtime" != auto ]] || die "no runtime could run the image"
else
  pick "$runtime" || die "$runtime cannot run the image here"
fi
kind=$runtime
[[ "$runtime" == runc || "$runtime" == crun ]] && kind=bundle

# --- the check, service by service -----------------------------------------------------------
passed=0 failed=0
for entry in "${SERVICES[@]}"; do
  svc=${entry%%:*} schema=${entry#*:}
  t0=$SECONDS
  if ! "${kind}_migrate" "$svc" "$schema" >"$WORK/$svc.migrate.log" 2>&1; then
    say "FAIL $svc migrate:"; tail -20 "$WORK/$svc.migrate.log" >&2
    failed=$((failed + 1)); continue
  fi
  "${kind}_start" "$svc" "$schema"
  pid="$("${kind}_pid" "$svc")"
  if [[ "$runtime" == chroot ]]; then
    read -r grpc admin <<<"${CHROOT_PORTS[$svc]}"
    probe=("$PY" "$WORK/probe.py" "127.0.0.1:$grpc" "$admin" 60)
  else
    probe=(nsenter --target "$pid" --net -- "$PY" "$WORK/probe.py" 127.0.0.1:50051 9090 60)
  fi
  ok=1
  if ! health="$("${probe[@]}" 2>&1)"; then
    say "FAIL $svc: $health"; "${kind}_log" "$svc" >&2; ok=0
  fi
  # Once it serves (chroot + setpriv changes user on the way there).
  [[ "$runtime" == chroot ]] && pid="$("${kind}_pid" "$svc")"
  uid="$(awk '/^Uid:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo '?')"
  [[ "$uid" == 10001 ]] || { say "FAIL $svc runs as uid $uid, not 10001"; ok=0; }
  t1=$SECONDS
  code=0
  "${kind}_stop" "$svc" || code=$?
  if ((code != 0)); then
    say "FAIL $svc exited $code after SIGTERM"; tail -5 "$WORK/$svc.log" >&2; ok=0
  fi
  if ((ok)); then
    passed=$((passed + 1))
    say "ok   $svc: migrate ok; serve as uid $uid: $health; SIGTERM -> exit 0 after $((SECONDS - t1))s ($((SECONDS - t0))s in all)"
  else
    failed=$((failed + 1))
  fi
done
echo "image-check ($runtime): $passed passed, $failed failed"
((failed == 0))
