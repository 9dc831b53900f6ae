"""`StubRef`, the handle of a created stub, and how any stub reference (handle, full name or id) becomes a name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simulatord.v1 import stub_pb2


@dataclass(frozen=True)
class StubRef:
    """A created stub: `name` (full resource name), `id`, and `stub` (the message as the daemon stored it).

    Pass it to `exchanges(stub=...)`, `count(stub=...)`, `delete_stub()` or `replace_stub()`.
    """

    name: str
    stub: stub_pb2.Stub = field(repr=False)

    @property
    def id(self) -> str:
        """The stub id, the last part of `name`."""
        return self.name.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.id


#: A stub as methods taking one accept it: its StubRef, its full resource name or its id.
StubRefLike = StubRef | str


def stub_name(session: str, ref: StubRefLike) -> str:
    """The full stub name for a StubRef, a stub name or a bare stub id."""
    if isinstance(ref, StubRef):
        return ref.name
    return ref if "/" in ref else f"{session}/stubs/{ref}"


def stub_refs(stubs: Iterable[stub_pb2.Stub]) -> list[StubRef]:
    """Handles for stubs as the daemon returned them."""
    return [StubRef(s.name, s) for s in stubs]
