"""Examples in README.md and docs/python-client.md marked `<!-- doctest: file.py -->` run as test files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "docs" / "python-client.md")
_BLOCK = re.compile(r"<!-- doctest: (\S+) -->\n```python\n(.*?)\n```", re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return [block for doc in DOCS for block in _BLOCK.findall(doc.read_text())]


def test_the_docs_have_tested_examples() -> None:
    assert [name for name, _ in _blocks()] == ["test_readme_example.py", "test_quickstart.py", "test_migrated.py"]


def test_doc_examples_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, simulatord_address: str) -> None:
    monkeypatch.setenv("SIMULATORD_ADDRESS", simulatord_address)  # the outer run's daemon: no start-up here
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    blocks = _blocks()
    pytester.makepyfile(**{name.removesuffix(".py"): code for name, code in blocks})
    # A subprocess, because an in-process run drops the modules it imported first from sys.modules.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(len(re.findall(r"^def test_", code, re.MULTILINE)) for _, code in blocks))
