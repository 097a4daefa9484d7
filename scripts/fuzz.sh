#!/usr/bin/env bash
# R8, the long run: every cargo-fuzz target in fuzz/ (request parsers of the five services,
# the event envelope decoder, page tokens and field values) under libFuzzer for
# SECONDS each (default 60). Fails if any target finds a crash — a panic, a broken
# invariant, a timeout or running out of memory — and names the input that did it
# (fuzz/artifacts/<target>/); replay one with
#   cargo fuzz run -s none <target> fuzz/artifacts/<target>/<file>
# The short versions of the same checks are property tests in `cargo test`.
#
# cargo-fuzz is installed into ~/.cache/guestloop/cargo-fuzz if it is missing. It builds
# without a sanitizer (-s none): the code has no `unsafe` (the workspace forbids it), so
# AddressSanitizer would find nothing the Rust checks do not, and without it the build
# needs no nightly-only flag; on a machine whose one toolchain is stable it runs as is.
# The corpus (fuzz/corpus/<target>) is kept between runs, so each run starts where the last
# one stopped.
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target ...]
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${HOME}/.cache/guestloop"
tools="${cache}/cargo-fuzz"
export PATH="${tools}/bin:${PATH}"
# Fuzz builds use other flags than the workspace's: a target dir of their own, so neither
# rebuilds the other.
export CARGO_TARGET_DIR="${GUESTLOOP_FUZZ_TARGET_DIR:-${cache}/fuzz-target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz into ${tools}"
    cargo install cargo-fuzz --locked --root "${tools}"
fi

cd "${root}"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building"
# `cargo fuzz build` takes one target or builds them all.
if [ "${#targets[@]}" -eq 1 ]; then
    cargo fuzz build -s none "${targets[0]}"
else
    cargo fuzz build -s none
fi

failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/${t}" "fuzz/artifacts/${t}"
    log="fuzz/artifacts/${t}/last-run.log"
    echo "== ${t}: ${seconds} s"
    # -max_len: requests larger than this add little (the choice bytes run out into
    # defaults); -timeout and -rss_limit_mb turn a hang or a memory blow-up into a failure.
    if cargo fuzz run -s none "${t}" "fuzz/corpus/${t}" -- \
        -max_total_time="${seconds}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/${t}/" >"${log}" 2>&1; then
        # The final statistics: executions, their rate, and coverage reached.
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "${log}" |
            sed 's/^stat::/   /' || true
        grep -E '#[0-9]+.*(DONE|pulse)' "${log}" | tail -n 1 | sed 's/^/   /' || true
    else
        failed+=("${t}")
        echo "   FAILED; the input is in fuzz/artifacts/${t}/, the output in ${log}:"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "${log}" |
            head -n 8 | sed 's/^/   /'
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== crashes in: ${failed[*]}"
    exit 1
fi
echo "== no crash in ${#targets[@]} targets, ${seconds} s each"
