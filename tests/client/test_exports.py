"""`simulatord_client` exports what users need: `__all__`, the lazy table and the typing imports agree, and resolve."""

from __future__ import annotations

import ast
import inspect

import simulatord_client


def _typing_imports() -> set[str]:
    """The names `__init__.py` imports for type checkers (under `if TYPE_CHECKING:`)."""
    tree = ast.parse(inspect.getsource(simulatord_client))
    [block] = [node for node in tree.body if isinstance(node, ast.If)]
    return {alias.name for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}


def test_every_exported_name_resolves() -> None:
    for name in simulatord_client.__all__:
        assert getattr(simulatord_client, name) is not None, name


def test_the_export_lists_agree() -> None:
    exported = set(simulatord_client._EXPORTS) | simulatord_client._SUBMODULES
    assert sorted(simulatord_client.__all__) == sorted(exported)
    assert _typing_imports() == exported
    assert set(dir(simulatord_client)) >= exported
