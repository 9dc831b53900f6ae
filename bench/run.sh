#!/usr/bin/env bash
# The one command: installs the peers if needed (bench/setup.sh), then runs the interleaved benchmark; pass --quick for a smoke run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${BENCH_WORK:-$ROOT/.bench-work}"

usage() {
  cat <<USAGE
usage: bench/run.sh [--quick] [bench.py options]
Installs what is missing (bench/setup.sh: wrk, Java, Node, WireMock, mountebank, a venv in $WORK),
then runs bench/bench.py with these arguments. --quick is a smoke run; bench/README.md says how long each takes.
USAGE
}

# Asking for help installs nothing: the usage, then bench.py's options from a Python that already has the one
# package bench.py needs to start (httpx): the bench venv, or the project's.
for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
    usage
    for py in "$WORK/venv/bin/python" "$ROOT/.venv/bin/python" python3; do
      if "$py" -c "import httpx" 2>/dev/null; then
        echo
        exec "$py" "$ROOT/bench/bench.py" --help
      fi
    done
    echo "(bench/bench.py --help lists every option once bench/setup.sh or scripts/dev.sh has made a venv)"
    exit 0
  fi
done

echo "[setup] installing or checking peers in $WORK" >&2
"$ROOT/bench/setup.sh"
exec "$WORK/venv/bin/python" "$ROOT/bench/bench.py" "$@"
