#!/usr/bin/env bash
# One entry point for developers and CI: sets up .venv on first use, then serves, demos, tests or lints.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=$VENV/bin/python

setup() {
  # Re-install only when pyproject.toml changed since the last install.
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e ".[dev,fast]"
    touch "$VENV/.installed"
  fi
  # An editable install leaves the project's own modules uncompiled, and with PYTHONDONTWRITEBYTECODE set
  # Python never caches them: compiling them here takes ~80 ms off every daemon's start-up. Quick when
  # nothing changed (only sources newer than their .pyc are compiled); a syntax error is ruff's to report.
  "$PY" -m compileall -q simulatord client/python >/dev/null || true
}

usage() {
  cat <<USAGE
usage: scripts/dev.sh COMMAND [ARGS...]
  serve [ARGS]   run the daemon on 127.0.0.1 (HTTP 8080, gRPC 50051 unless ARGS say otherwise)
  demo           start a daemon, program a session over gRPC, call it over HTTP, show the journal
  test [ARGS]    run the whole test suite (pytest -n 2); ARGS go to pytest
  lint           generated-code check, ruff, mypy, import contracts
USAGE
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  serve) setup; exec "$VENV/bin/simulatord" serve "$@" ;;
  demo) setup; exec "$PY" examples/demo.py ;;
  test) setup; exec "$VENV/bin/pytest" -n 2 "$@" ;;
  lint)
    setup
    "$PY" scripts/gen_protos.py --check
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"
    "$VENV/bin/lint-imports"
    ;;
  *) usage; exit 2 ;;
esac
