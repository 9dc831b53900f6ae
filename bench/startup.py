"""Embedded daemon start-up to ready, A/B across source trees: the figure to watch when adding imports.

    .venv/bin/python bench/startup.py /tmp/old-tree .     # trees are git worktrees; --runs 7 by default

Each run spawns `python -m simulatord serve` from the tree (its directory first on sys.path) through
EmbeddedDaemon and times it until the daemon prints its ready line; runs alternate between trees. Compile the
trees first (`python -m compileall -q TREE/simulatord`): with PYTHONDONTWRITEBYTECODE set, source that was
never compiled is compiled on every start. Prints median and min milliseconds per tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client" / "python"))

from simulatord_client.embedded import EmbeddedDaemon  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="source trees whose daemons to start")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees]
    times: dict[str, list[float]] = {t: [] for t in trees}
    here = os.getcwd()
    for _ in range(args.runs):
        for tree in trees:
            os.chdir(tree)  # `python -m simulatord` imports the package from the working directory
            try:
                started = time.perf_counter()
                daemon = EmbeddedDaemon(env={"PYTHONPATH": tree}).start()
                times[tree].append((time.perf_counter() - started) * 1000)
                daemon.stop()
            finally:
                os.chdir(here)
    for tree, values in times.items():
        print(f"{tree}: median {statistics.median(values):.0f} ms, min {min(values):.0f} ms")


if __name__ == "__main__":
    main()
