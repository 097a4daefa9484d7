#!/usr/bin/env bash
# Builds the previous release's five service binaries (the commit in tests/previous-release)
# once per machine and prints the folder that holds them, for the rolling-upgrade test
# (GUESTLOOP_PREVIOUS_BIN_DIR). The source comes from this clone's history (git archive),
# so a shallow clone cannot run it; the build has a target folder of its own, without
# debug info, so it neither evicts nor bloats the main one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${GUESTLOOP_CACHE:-$HOME/.cache/guestloop}
BINS=(guest-profile feedback-intake follow-up-scheduler notification metrics)

commit=$(grep -v '^#' "$ROOT/tests/previous-release" | grep -m1 -E '^[0-9a-f]{40}$' || true)
[[ -n $commit ]] || { echo "tests/previous-release names no commit" >&2; exit 1; }
out=$CACHE/previous/$commit

have_all() { for b in "${BINS[@]}"; do [[ -x $out/$b ]] || return 1; done; }
if have_all; then echo "$out"; exit 0; fi

if ! git -C "$ROOT" cat-file -e "$commit^{commit}" 2>/dev/null; then
  echo "previous release $commit is not in this clone's history (a shallow clone?);" \
       "clone with full history to run the rolling-upgrade test" >&2
  exit 1
fi

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git -C "$ROOT" archive "$commit" | tar -x -C "$src"
echo "building the previous release ($commit) into $out" >&2
packages=()
for b in "${BINS[@]}"; do
  [[ $b == metrics ]] && packages+=(-p metrics-service) || packages+=(-p "$b")
done
(cd "$src" && SQLX_OFFLINE=true CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0 \
   CARGO_TARGET_DIR=$CACHE/previous-target \
   cargo build --locked --quiet --bins "${packages[@]}" >&2)
# A directory of this run's own, moved into place whole: two runs sharing the cache (two
# CI checkouts at once) each build, and neither sees the other's half-installed binaries.
tmp=$(mktemp -d "$out.tmp.XXXXXX")
for b in "${BINS[@]}"; do install -m 0755 "$CACHE/previous-target/debug/$b" "$tmp/"; done
if have_all; then
  rm -rf "$tmp"  # another run put the same commit's binaries in place meanwhile
else
  rm -rf "$out"
  mv -T "$tmp" "$out" 2>/dev/null || { rm -rf "$tmp"; have_all; }
fi
echo "$out"
