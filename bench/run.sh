#!/usr/bin/env bash
# The one command: installs the peers if needed (bench/setup.sh), then runs the interleaved benchmark; pass --quick for a smoke run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${BENCH_WORK:-$ROOT/.bench-work}"
echo "[setup] installing or checking peers in $WORK" >&2
"$ROOT/bench/setup.sh"
exec "$WORK/venv/bin/python" "$ROOT/bench/bench.py" "$@"
