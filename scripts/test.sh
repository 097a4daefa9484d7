#!/usr/bin/env bash
# Command two: every check and every test, as CI runs them (.ci/run calls exactly this).
# Formatting, clippy, buf lint, the Helm chart and Dockerfile checks, then all Rust tests
# (unit, per-service integration against a real PostgreSQL, and the cross-process tests in
# tests/, including the Python grpcio client). Installs what it needs (buf, helm, Python
# packages) into ~/.cache/guestloop; starts and stops its own throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guestloop/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# One throwaway cluster for the whole run; the testkit starts it on first use.
run_dir="/tmp/guestloop-test-$$"
mkdir -p "$run_dir" && chmod 755 "$run_dir"
export GUESTLOOP_TEST_PG_DIR="$run_dir/pg"
# A port nothing listens on now (asked of the kernel), unless the caller chose one.
free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export GUESTLOOP_TEST_PG_PORT="${GUESTLOOP_TEST_PG_PORT:-$free_port}"
stop_pg() {
  if [ -f "$GUESTLOOP_TEST_PG_DIR/postmaster.pid" ]; then
    bindir="$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$bindir/pg_ctl" -D "$GUESTLOOP_TEST_PG_DIR" -m immediate stop >/dev/null 2>&1 || true
    else
      "$bindir/pg_ctl" -D "$GUESTLOOP_TEST_PG_DIR" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$run_dir"
}
trap stop_pg EXIT

# The reused target dir's incremental caches only grow (47 GB seen after a few weeks,
# which filled the disk); above 10 GB they are dropped and rebuilt.
incremental="$CARGO_TARGET_DIR/debug/incremental"
if [ -d "$incremental" ] && [ "$(du -s --block-size=1G "$incremental" | cut -f1)" -gt 10 ]; then
  echo "==> dropping $incremental (over 10 GB)"
  # A build running beside this one may be writing into it: what cannot go now goes next time.
  rm -rf "$incremental" 2>/dev/null || echo "    (part of it is in use; left for the next run)"
fi

started=$(date +%s)
step() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "==> $name"
  "$@"
  echo "    $name: ok ($(( $(date +%s) - t0 ))s)"
}

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "buf lint" bash scripts/buf-lint.sh
step "helm chart and Dockerfile" bash scripts/check-deploy.sh
# The benchmarks' floor experiment is a patch beside the report; it must still apply to
# the code it describes (docs/benchmarks/README.md, round of 2026-12-08).
step "floor experiment applies" git apply --check docs/benchmarks/floor-experiment.patch
# The cross-process tests run the service binaries, so build them first.
step "build binaries" cargo build --workspace --bins --locked
# The rolling-upgrade test runs the previous release (tests/previous-release) beside this
# one; its binaries are built once per machine and cached.
previous_release() { GUESTLOOP_PREVIOUS_BIN_DIR=$(bash scripts/previous-release.sh); }
step "previous release's binaries" previous_release
export GUESTLOOP_PREVIOUS_BIN_DIR
step "cargo test" cargo test --workspace --locked --no-fail-fast
# The benchmark tool on every scenario for a second or so: it must keep working, but a
# debug build on a shared machine measures nothing, so no figure is asserted.
step "guestloop-bench --quick" "$CARGO_TARGET_DIR/debug/guestloop-bench" --quick \
  --bin-dir "$CARGO_TARGET_DIR/debug" --out "$run_dir/bench" --work-dir "$run_dir/bench-work"

echo "all checks passed in $(( $(date +%s) - started ))s"
