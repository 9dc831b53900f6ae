"""Generates the Python protobuf and gRPC code in simulatord/v1 from protos/; `--check` proves it is current."""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = "simulatord/v1"
HEADER = '"""Generated protobuf and gRPC code for simulatord.v1: do not edit; run scripts/gen_protos.py."""\n'


def generate(out: Path) -> None:
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / PACKAGE).glob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *sources,
        ],
        check=True,
    )
    (out / PACKAGE / "__init__.py").write_text(HEADER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the checked-in code differs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh, current = out / PACKAGE, ROOT / PACKAGE
        if args.check:
            names = sorted({p.name for p in fresh.iterdir()} | {p.name for p in current.glob("*") if p.is_file()})
            stale = [
                n
                for n in names
                if not (fresh / n).exists()
                or not (current / n).exists()
                or not filecmp.cmp(fresh / n, current / n, shallow=False)
            ]
            if stale:
                print(f"generated code is stale: {', '.join(stale)}; run python scripts/gen_protos.py")
                return 1
            print(f"generated code matches protos/ ({len(names)} files)")
            return 0
        shutil.rmtree(current, ignore_errors=True)
        shutil.copytree(fresh, current)
        print(f"wrote {current.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
