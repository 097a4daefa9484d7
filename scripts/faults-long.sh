#!/usr/bin/env bash
# The long versions of the fault suite (issue 10, R1–R7; docs/reliability.md): the same
# tests the README's test command runs in seconds, with their kills, outages, floods and
# load multiplied by SCALE (default 10: 30 SIGKILLs of feedback-intake, 30 of a scheduler
# replica over 3,000 email timers, PostgreSQL down 12 s, a 30 s flood, 7.5 s phases of
# provider faults). Takes a few minutes; not part of CI.
#
#   bash scripts/faults-long.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guestloop/target}"
export GUESTLOOP_FAULT_SCALE="${1:-10}"

run_dir="/tmp/guestloop-faults-$$"
mkdir -p "$run_dir" && chmod 755 "$run_dir"
export GUESTLOOP_TEST_PG_DIR="$run_dir/pg"
export GUESTLOOP_TEST_PG_PORT="${GUESTLOOP_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
stop_pg() {
  if [ -f "$GUESTLOOP_TEST_PG_DIR/postmaster.pid" ]; then
    bindir="$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
    runuser -u postgres -- "$bindir/pg_ctl" -D "$GUESTLOOP_TEST_PG_DIR" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$run_dir"
}
trap stop_pg EXIT

cargo build --workspace --bins --locked
# One at a time: each fault test measures what a process does under its own load.
run() {
  local pkg=$1 t=$2 log="$run_dir/$2.log"
  echo "==> $t (scale $GUESTLOOP_FAULT_SCALE)"
  if cargo test --locked -p "$pkg" --test "$t" -- --nocapture --test-threads 1 >"$log" 2>&1; then
    grep -E "^R[0-9]|numbers|^test " "$log" || true
  else
    tail -n 60 "$log"
    echo "$t failed at scale $GUESTLOOP_FAULT_SCALE"
    exit 1
  fi
}
for t in crash_durability scheduler_crash database_outage overload graceful_shutdown; do
  run guestloop-e2e "$t"
done
run notification provider_faults
run guest-profile rate_limit
echo "long fault suite passed at scale $GUESTLOOP_FAULT_SCALE"
