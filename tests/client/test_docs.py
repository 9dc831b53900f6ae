"""Examples in docs/python-client.md marked `<!-- doctest: file.py -->` run as test files, so they cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-client.md"
_BLOCK = re.compile(r"<!-- doctest: (\S+) -->\n```python\n(.*?)\n```", re.DOTALL)


def test_the_doc_has_tested_examples() -> None:
    assert [name for name, _ in _BLOCK.findall(DOC.read_text())] == ["test_quickstart.py", "test_migrated.py"]


def test_doc_examples_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, simulatord_address: str) -> None:
    monkeypatch.setenv("SIMULATORD_ADDRESS", simulatord_address)  # the outer run's daemon: no start-up here
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    blocks = _BLOCK.findall(DOC.read_text())
    pytester.makepyfile(**{name.removesuffix(".py"): code for name, code in blocks})
    # A subprocess, because an in-process run drops the modules it imported first from sys.modules.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(len(re.findall(r"^def test_", code, re.MULTILINE)) for _, code in blocks))
