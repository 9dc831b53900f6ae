#!/usr/bin/env bash
# Records the current protos as a released API: builds the buf image protos/released/simulatord-v1.binpb that scripts/buf_check.sh compares against.
#
# Usage: scripts/release_protos.sh VERSION [--ref GITREF] [--allow-breaking]
#   VERSION           the release, e.g. 0.2.0 (written to protos/released/RELEASE)
#   --ref GITREF      release the protos of a commit or tag instead of the working tree,
#                     so uncommitted proto work in progress is never frozen into a release
#   --allow-breaking  release even if the protos break the previous release (a new major version)
#
# Run it when cutting a release and commit protos/released/ with the release; from then
# on every change to protos/ is checked for compatibility with what users have.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$ROOT/protos/released"
IMAGE="$OUT_DIR/simulatord-v1.binpb"
VERSION=""
ALLOW_BREAKING=0
REF=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --allow-breaking) ALLOW_BREAKING=1; shift ;;
    --ref) REF="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "release_protos: unknown option $1" >&2; exit 2 ;;
    *) VERSION="$1"; shift ;;
  esac
done
if [[ ! "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
  echo "release_protos: give the release version, e.g. scripts/release_protos.sh 0.2.0" >&2
  exit 2
fi

BUF="$("$ROOT/scripts/buf_check.sh" --print-buf)"

# The directory buf builds in: the working tree, or an export of GITREF's buf.yaml and protos/.
SRC="$ROOT"
if [[ -n "$REF" ]]; then
  COMMIT="$(git -C "$ROOT" rev-parse --verify "$REF^{commit}")"
  SRC="$(mktemp -d)"
  trap 'rm -rf "$SRC"' EXIT
  git -C "$ROOT" archive "$COMMIT" buf.yaml protos | tar -x -C "$SRC"
  # The last commit that changed the protos identifies the release better than GITREF.
  PROTOS_FROM="$(git -C "$ROOT" log -1 --format=%H "$COMMIT" -- protos buf.yaml ':!protos/released')"
else
  COMMIT="$(git -C "$ROOT" log -1 --format=%H -- protos buf.yaml ':!protos/released' 2>/dev/null || echo unknown)"
  # Mark a release made from uncommitted proto changes, so it can be told apart later.
  if [[ -n "$(git -C "$ROOT" status --porcelain -- protos buf.yaml ':!protos/released' 2>/dev/null)" ]]; then
    PROTOS_FROM="$COMMIT+uncommitted"
  else
    PROTOS_FROM="$COMMIT"
  fi
fi
cd "$SRC"

# A release must not break the previous one unless explicitly allowed.
if [[ -f "$IMAGE" && "$ALLOW_BREAKING" == 0 ]]; then
  "$BUF" lint
  "$BUF" breaking --against "$IMAGE"
fi

mkdir -p "$OUT_DIR"
TMP="$(mktemp "$OUT_DIR/.image.XXXXXX")"
trap 'rm -f "$TMP"; [[ "$SRC" != "$ROOT" ]] && rm -rf "$SRC"' EXIT
# Without source info (comments, positions) the image is small and changes only when
# the API does; breaking-change rules do not need it. Imports (well-known types) stay
# in, so the image is self-contained.
"$BUF" build --exclude-source-info -o "$TMP"
chmod 644 "$TMP"
mv "$TMP" "$IMAGE"

{
  echo "# The release that protos/released/simulatord-v1.binpb holds; written by scripts/release_protos.sh."
  echo "version=$VERSION"
  echo "image=simulatord-v1.binpb"
  echo "sha256=$(sha256sum "$IMAGE" | cut -d' ' -f1)"
  echo "protos_commit=$PROTOS_FROM"
  echo "buf=$("$BUF" --version)"
} >"$OUT_DIR/RELEASE"

echo "released protos $VERSION -> $(realpath -m --relative-to="$ROOT" "$IMAGE")"
grep -v "^#" "$OUT_DIR/RELEASE"
