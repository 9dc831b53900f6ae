#!/usr/bin/env bash
# Lints protos/ with buf (buf.yaml: STANDARD + COMMENTS) and checks them for breaking changes against the last released image, installing buf from npm when it is missing.
#
# Usage: scripts/buf_check.sh [--against IMAGE] [--print-buf]
#   --against IMAGE  compare with IMAGE instead of protos/released/simulatord-v1.binpb
#   --print-buf      install buf if needed, print its path and exit (used by release_protos.sh)
# Env: BUF=/path/to/buf uses that buf instead of the pinned one.
#
# The reference for `buf breaking` is a committed image file, not a git tag, because
# CI runs from a fresh clone that may have no tags (and buf's git inputs would need them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_PKG="$ROOT/client/node"
AGAINST="$ROOT/protos/released/simulatord-v1.binpb"
PRINT_BUF=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --against) AGAINST="$2"; shift 2 ;;
    --print-buf) PRINT_BUF=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "buf_check: unknown argument $1" >&2; exit 2 ;;
  esac
done

# buf is pinned as a devDependency of client/node (package-lock.json holds its version
# and integrity hashes), so every machine checks with the same buf; `npm ci` brings it
# from the npm registry, the platform binary coming as an optional dependency package.
ensure_buf() {
  if [[ -n "${BUF:-}" ]]; then
    return
  fi
  BUF="$NODE_PKG/node_modules/.bin/buf"
  if [[ ! -x "$BUF" ]] || ! "$BUF" --version >/dev/null 2>&1; then
    echo "buf_check: installing buf from npm (npm ci in client/node)" >&2
    # --include=dev: buf is a devDependency, and NODE_ENV=production would skip it.
    (cd "$NODE_PKG" && npm ci --include=dev --no-audit --no-fund >&2)
  fi
}

ensure_buf
if [[ "$PRINT_BUF" == 1 ]]; then
  echo "$BUF"
  exit 0
fi

cd "$ROOT"
echo "buf $("$BUF" --version)"

echo "== buf lint"
"$BUF" lint
echo "lint: ok"

echo "== buf breaking (against $(realpath -m --relative-to="$ROOT" "$AGAINST"))"
if [[ ! -f "$AGAINST" ]]; then
  echo "buf_check: no released image at $AGAINST; make one with scripts/release_protos.sh VERSION" >&2
  exit 1
fi
if [[ -f "$ROOT/protos/released/RELEASE" && "$AGAINST" == "$ROOT/protos/released/simulatord-v1.binpb" ]]; then
  grep -v '^#' "$ROOT/protos/released/RELEASE" | sed 's/^/  released: /'
fi
"$BUF" breaking --against "$AGAINST"
echo "breaking: ok"
