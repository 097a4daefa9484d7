#!/usr/bin/env bash
# Command one: runs the whole platform on this machine. Builds the services, starts a
# PostgreSQL of its own (data kept in .local/pgdata between runs), migrates, starts all
# five services, and prints where each listens and a token to call them with.
# Needs: the Rust toolchain and PostgreSQL 15 binaries (no server running, no Docker).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guestloop/target}"
cargo build --bins --quiet
exec "$CARGO_TARGET_DIR/debug/guestloop-local" --bin-dir "$CARGO_TARGET_DIR/debug" --state-dir .local "$@"
