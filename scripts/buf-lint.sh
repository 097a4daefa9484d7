#!/usr/bin/env bash
# Lints and builds every proto under proto/ with buf. buf comes from the npm package
# @bufbuild/buf, installed once into $GUESTLOOP_TOOLS (default ~/.cache/guestloop/tools);
# later runs reuse it. No network is needed once it is installed: buf.yaml has no deps.
set -euo pipefail

BUF_VERSION="1.75.0"
TOOLS="${GUESTLOOP_TOOLS:-$HOME/.cache/guestloop/tools}"
PREFIX="$TOOLS/buf-$BUF_VERSION"
BUF="$PREFIX/node_modules/.bin/buf"

if [[ ! -x "$BUF" ]] || [[ "$("$BUF" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
  echo "installing @bufbuild/buf@$BUF_VERSION into $PREFIX" >&2
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@$BUF_VERSION" >&2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/../proto"
echo "buf $("$BUF" --version): lint" >&2
"$BUF" lint
echo "buf $("$BUF" --version): build" >&2
"$BUF" build -o /dev/null
echo "proto: lint and build ok" >&2
