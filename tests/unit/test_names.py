"""Resource name parsing: good names parse, bad ones fail with the field named."""

from __future__ import annotations

import pytest

from simulatord.errors import InvalidArgument
from simulatord.names import SessionKey, new_session_id, parse_child, parse_session, parse_tenant, valid_id


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


def test_generated_session_ids_are_valid_and_unguessable() -> None:
    # The session URL is the data plane's only capability: 128 random bits, not a counter or a short suffix.
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    for session_id in ids:
        assert valid_id(session_id) and session_id.startswith("s-")
        assert len(session_id) == len("s-") + 26  # 26 base32 characters carry 130 bits; 128 are random
