"""Resource name parsing: good names parse, bad ones fail with the field named."""

from __future__ import annotations

import pytest

from simulatord.errors import InvalidArgument
from simulatord.names import SessionKey, parse_child, parse_session, parse_tenant


def test_round_trip() -> None:
    key = parse_session("tenants/acme/sessions/run-1")
    assert key == SessionKey("acme", "run-1")
    assert parse_child(key.stub_name("chat"), "stubs") == (key, "chat")
    assert parse_tenant("tenants/acme") == "acme"
    assert parse_tenant("tenants/-", allow_wildcard=True) == "-"


@pytest.mark.parametrize("bad", ["", "tenants", "tenants/Acme/sessions/x", "tenants/a/sessions/-x", "x/a/sessions/b"])
def test_bad_session_names(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_session(bad, "parent")
    assert caught.value.violations[0].field == "parent"
