#!/usr/bin/env bash
# Installs everything the benchmark needs (wrk, WireMock, mountebank, a bench venv with simulatord and pytest-httpserver) into .bench-work/, idempotently, and records how long each install took.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${BENCH_WORK:-$ROOT/.bench-work}"
# Pinned so that two runs months apart measure the same peers; bump deliberately.
WIREMOCK_VERSION="3.13.2"
MOUNTEBANK_VERSION="2.9.1"
PYTEST_HTTPSERVER_VERSION="1.2.0"
PY_DEPS=("pytest-httpserver==$PYTEST_HTTPSERVER_VERSION" "httpx>=0.27" "matplotlib>=3.8" "py-spy>=0.3")

mkdir -p "$WORK"
# Append-only log (date, item, seconds, installed|present) so the first real install time survives re-runs.
TIMES="$WORK/install-log.tsv"

now() { date +%s.%N; }
# record NAME START STATUS: appends one line to the install log (status: installed or present).
record() { printf '%s\t%s\t%.1f\t%s\n' "$(date -u +%FT%TZ)" "$1" "$(awk -v a="$(now)" -v b="$2" 'BEGIN{print a-b}')" "$3" >> "$TIMES"; }

apt_updated=0
apt_install() {
  # apt-get update only once, and only when something is actually missing.
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

t=$(now)
if command -v wrk >/dev/null; then record wrk "$t" present; else apt_install wrk; record wrk "$t" installed; fi

t=$(now)
if command -v java >/dev/null; then record java "$t" present; else apt_install default-jre-headless; record java "$t" installed; fi

t=$(now)
if command -v npm >/dev/null; then record node "$t" present; else apt_install nodejs npm; record node "$t" installed; fi

# npm peers live in their own package dir so node_modules never lands in the repo proper.
NPM_DIR="$WORK/npm"
mkdir -p "$NPM_DIR"
[ -f "$NPM_DIR/package.json" ] || echo '{"name":"simulatord-bench-peers","private":true}' > "$NPM_DIR/package.json"
have_npm() { # have_npm PKG VERSION
  [ -f "$NPM_DIR/node_modules/$1/package.json" ] &&
    grep -q "\"version\": *\"$2\"" "$NPM_DIR/node_modules/$1/package.json"
}
for spec in "wiremock:$WIREMOCK_VERSION" "mountebank:$MOUNTEBANK_VERSION"; do
  pkg="${spec%%:*}"; ver="${spec##*:}"
  t=$(now)
  if have_npm "$pkg" "$ver"; then
    record "$pkg" "$t" present
  else
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error "$pkg@$ver" >/dev/null)
    record "$pkg" "$t" installed
  fi
done

# The bench venv: simulatord (editable, so the run measures this checkout) plus bench-only deps.
VENV="$WORK/venv"
t=$(now)
STAMP_WANT="$(cat "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.bench-stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then
  record venv "$t" present
else
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[fast]" "${PY_DEPS[@]}" 2> "$WORK/pip-install.log" \
    || { cat "$WORK/pip-install.log" >&2; exit 1; }
  echo "$STAMP_WANT" > "$VENV/.bench-stamp"
  record venv "$t" installed
fi
