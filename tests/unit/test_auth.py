"""The auth file and the token check as pure code: parsing, every refusal with its reason, and the tenant of each
request message."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulatord.control.auth import AuthFileError, Credentials, load_credentials, parse_credentials
from simulatord.control.servicer import request_tenant
from simulatord.errors import InvalidArgument, PermissionDenied, Unauthenticated
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import stub_pb2

A = "team-a-token-0123456789"
B = "team-b-token-0123456789"
ROOT = "root-token-0123456789abc"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def credentials() -> Credentials:
    return parse_credentials(
        {
            "tokens": [
                {"name": "team-a", "token": A, "tenants": ["team-a", "shared"]},
                {"sha256": sha(B).upper(), "tenants": ["team-b"]},  # digests may be upper case (some tools print so)
                {"name": "root", "sha256": sha(ROOT), "admin": True},
            ]
        }
    )


def auth(value: str) -> list[tuple[str, str]]:
    return [("user-agent", "grpc-python"), ("authorization", value)]


def test_a_token_is_identified_by_its_value_or_its_sha256(credentials: Credentials) -> None:
    assert credentials.identify(auth(f"Bearer {A}")).name == "team-a"
    assert credentials.identify(auth(f"bearer  {B} ")).name == "tokens[1]"  # the scheme is case-insensitive
    assert credentials.identify([("authorization", f"Bearer {ROOT}".encode())]).admin  # bytes, as -bin keys carry
    assert credentials.identify(auth(f"Bearer {A}")).tenants == {"team-a", "shared"}


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([], "TOKEN_MISSING"),
        ([("user-agent", "x")], "TOKEN_MISSING"),
        (auth(f"Basic {A}"), "TOKEN_INVALID"),
        (auth("Bearer"), "TOKEN_INVALID"),
        (auth("Bearer   "), "TOKEN_INVALID"),
        (auth(A), "TOKEN_INVALID"),
        (auth(f"Bearer {A}x"), "TOKEN_INVALID"),
        (auth(f"Bearer {sha(A)}"), "TOKEN_INVALID"),  # a digest is not a token
        ([*auth(f"Bearer {A}"), ("authorization", f"Bearer {B}")], "TOKEN_INVALID"),
    ],
)
def test_calls_without_a_known_token_are_unauthenticated(
    credentials: Credentials, metadata: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        credentials.identify(metadata)
    assert caught.value.reason == reason
    assert A not in str(caught.value) and B not in str(caught.value)  # refusals never echo a token


def test_a_token_may_use_only_its_tenants(credentials: Credentials) -> None:
    grant = credentials.identify(auth(f"Bearer {A}"))
    grant.check("team-a")
    grant.check("shared")
    grant.check("-")  # may list across tenants, and will see only its own (visible)
    assert grant.visible == {"team-a", "shared"}
    with pytest.raises(PermissionDenied) as caught:
        grant.check("team-b")
    assert caught.value.reason == "TENANT_FORBIDDEN"
    assert caught.value.metadata == {"tenant": "team-b", "token": "team-a"}
    assert str(caught.value) == "token 'team-a' may not use tenant 'team-b' (it may use: shared, team-a)"


def test_an_admin_token_may_use_every_tenant(credentials: Credentials) -> None:
    root = credentials.identify(auth(f"Bearer {ROOT}"))
    for tenant in ("team-a", "team-b", "anything", "-"):
        root.check(tenant)
    assert root.visible is None


def test_json_and_yaml_files_load_alike(tmp_path: Path) -> None:
    data = {"tokens": [{"name": "ci", "token": A, "tenants": ["team-a"]}, {"sha256": sha(ROOT), "admin": True}]}
    (tmp_path / "auth.json").write_text(json.dumps(data))
    (tmp_path / "auth.yaml").write_text(
        f"tokens:\n  - name: ci\n    token: {A}\n    tenants: [team-a]\n  - sha256: {sha(ROOT)}\n    admin: yes\n"
    )
    for name in ("auth.json", "auth.yaml"):
        loaded = load_credentials(tmp_path / name)
        assert [(g.name, g.tenants, g.admin) for g in loaded.grants] == [
            ("ci", {"team-a"}, False),
            ("tokens[1]", frozenset(), True),
        ]
        assert loaded.identify(auth(f"Bearer {ROOT}")).admin


def test_the_readme_example_is_a_valid_file() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- auth file example -->\n```yaml\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    loaded = parse_credentials(yaml.safe_load(block.group(1)), "README.md")
    assert [(g.name, g.tenants, g.admin) for g in loaded.grants] == [
        ("team-a-ci", {"team-a", "team-a-nightly"}, False),
        ("platform", frozenset(), True),
    ]
    assert loaded.identify(auth("Bearer platform-token-example-0123456789")).admin


def test_only_digests_are_kept(credentials: Credentials) -> None:
    assert A not in repr(credentials.grants) and all(len(g.digest) == 32 for g in credentials.grants)


def _entry(**fields: Any) -> dict[str, Any]:
    return {"tokens": [{"name": "first", "token": A, "tenants": ["team-a"]}, fields]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "must be a mapping with one key, 'tokens'"),
        ({"tokens": [], "extra": 1}, "must be a mapping with one key, 'tokens'"),
        ({"tokens": []}, "'tokens' must be a non-empty list"),
        ({"tokens": "abc"}, "'tokens' must be a non-empty list"),
        (_entry(), r"tokens\[1\]: needs exactly one of 'token' and 'sha256'"),
        ({"tokens": ["abc"]}, r"tokens\[0\]: must be a mapping"),
        (_entry(token=B, sha256=sha(B), tenants=["b"]), r"tokens\[1\]: needs exactly one of 'token' and 'sha256'"),
        (_entry(name="b", token="short", tenants=["b"]), r"tokens\[1\] \(b\): token must be at least 16 characters"),
        (_entry(token=12345678901234567890, tenants=["b"]), r"tokens\[1\]: token must be a string \(quote it\)"),
        (_entry(token="has spaces in the token", tenants=["b"]), r"tokens\[1\]: token must be visible ASCII"),
        (_entry(token="pässwörd-0123456789", tenants=["b"]), r"tokens\[1\]: token must be visible ASCII"),
        (_entry(sha256="abc", tenants=["b"]), r"tokens\[1\]: sha256 must be 64 hexadecimal digits"),
        (_entry(sha256="g" * 64, tenants=["b"]), r"tokens\[1\]: sha256 must be 64 hexadecimal digits"),
        (_entry(token=B), r"tokens\[1\]: tenants must be a non-empty list of tenant ids \(or set admin: true\)"),
        (_entry(token=B, tenants=[]), r"tokens\[1\]: tenants must be a non-empty list"),
        (_entry(token=B, tenants="team-b"), r"tokens\[1\]: tenants must be a non-empty list"),
        (_entry(token=B, tenants=["Team B"]), r"tokens\[1\]: tenants\[0\]: 'Team B' must be 1-63 characters"),
        (_entry(token=B, tenants=["-"]), r"tokens\[1\]: tenants\[0\]: '-' must be"),
        (_entry(token=B, tenants=["b"], admin=True), r"tokens\[1\]: an admin token may use every tenant"),
        (_entry(token=B, admin="yes"), r"tokens\[1\]: admin must be true or false"),
        (_entry(token=B, tenant=["b"]), r"tokens\[1\]: unknown key\(s\) tenant \(known: name, token, sha256"),
        (_entry(name="", token=B, tenants=["b"]), r"tokens\[1\]: name must be a non-empty string"),
        (_entry(name="first", token=B, tenants=["b"]), r"tokens\[1\]: name 'first' is used twice"),
        (_entry(name="again", token=A, tenants=["b"]), r"tokens\[1\] \(again\) has the same token as first"),
        (_entry(name="again", sha256=sha(A), tenants=["b"]), r"tokens\[1\] \(again\) has the same token as first"),
    ],
)
def test_a_bad_file_is_refused_naming_the_entry(data: Any, message: str) -> None:
    with pytest.raises(AuthFileError, match=rf"^auth\.yaml: {message}") as caught:
        parse_credentials(data, "auth.yaml")
    assert A not in str(caught.value) and B not in str(caught.value)  # the message may end up in a CI log


def test_an_unreadable_or_malformed_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthFileError, match=r"auth file .*missing\.yaml: cannot read it"):
        load_credentials(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{'tokens': []}")
    with pytest.raises(AuthFileError, match=r"auth file .*bad\.json: not valid JSON"):
        load_credentials(tmp_path / "bad.json")
    (tmp_path / "bad.yml").write_text("tokens: [")
    with pytest.raises(AuthFileError, match=r"auth file .*bad\.yml: not valid YAML"):
        load_credentials(tmp_path / "bad.yml")


def _named(message_type: type[Any], resource: str) -> Any:
    """A request of `message_type` naming `resource` in whichever field names its resource."""
    fields = message_type.DESCRIPTOR.fields_by_name
    if "parent" in fields:
        return message_type(parent=resource)
    if "name" in fields:
        return message_type(name=resource)
    return message_type(stub=stub_pb2.Stub(name=resource))


REQUEST_TYPES = [
    getattr(pb, method.input_type.name)
    for method in pb.DESCRIPTOR.services_by_name["SimulatorService"].methods_by_name.values()
]


@pytest.mark.parametrize("message_type", REQUEST_TYPES, ids=lambda t: t.__name__)
def test_every_request_names_its_tenant(message_type: type[Any]) -> None:
    for resource in ("tenants/acme", "tenants/acme/sessions/s1", "tenants/acme/sessions/s1/stubs/x"):
        assert request_tenant(_named(message_type, resource)) == "acme"
    assert request_tenant(_named(message_type, "tenants/-")) == "-"
    for bad in ("", "acme", "sessions/acme", "tenants/", "tenants/Acme/sessions/s1"):
        with pytest.raises(InvalidArgument):
            request_tenant(_named(message_type, bad))


def test_replace_stub_names_its_tenant_in_the_stub() -> None:
    request = pb.ReplaceStubRequest(stub=stub_pb2.Stub(name="tenants/acme/sessions/s1/stubs/x"))
    assert request_tenant(request) == "acme"
    with pytest.raises(InvalidArgument) as caught:
        request_tenant(pb.ReplaceStubRequest())
    assert caught.value.violations[0].field == "stub.name"


def test_a_request_without_a_resource_is_refused() -> None:
    # An RPC added without a tenant in its request must not slip past the check: it fails (INTERNAL) until it has one.
    with pytest.raises(TypeError):
        request_tenant(pb.ResetSessionResponse())
