"""Webhook signing: the headers each provider sends with a delivery, byte-exact, and the faults that spoil them."""

from __future__ import annotations

import base64
import binascii
import hmac
import string
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from simulatord.errors import SpecErrors


class Profile(StrEnum):
    """A provider's signing scheme, or a custom HMAC."""

    GITHUB = "github"
    GITEA = "gitea"
    GITLAB = "gitlab"
    STRIPE = "stripe"
    SLACK = "slack"
    STANDARD = "standard"  # Standard Webhooks, as Svix signs
    CUSTOM = "custom"


class SignatureFault(StrEnum):
    """How a delivery's signature is spoiled, for negative tests of the receiver."""

    NONE = ""
    WRONG_SIGNATURE = "wrong_signature"  # signed with another secret: verification fails
    STALE_TIMESTAMP = "stale_timestamp"  # signed correctly over a timestamp an hour old: tolerance checks fail
    MISSING_SIGNATURE = "missing_signature"  # the signature header is left out, the others are sent


@dataclass(frozen=True)
class CustomHmac:
    """A custom HMAC: what is signed (a template of `{body}`, `{timestamp}`, `{id}`), how, and in which header."""

    algorithm: str = "sha256"  # sha1 | sha256 | sha512
    header: str = ""
    prefix: str = ""  # written before the signature, e.g. "sha256="
    signed: str = "{body}"
    encoding: str = "hex"  # hex (lower case) | base64 (standard alphabet, padded)
    timestamp_header: str = ""  # a header carrying the unix timestamp; empty: none
    id_header: str = ""  # a header carrying the delivery id; empty: none


@dataclass(frozen=True)
class Signer:
    """A validated signing set-up: the profile, its secrets (the first signs; others add signatures), custom HMAC."""

    profile: Profile
    secrets: tuple[str, ...]
    custom: CustomHmac | None = None


# How far back STALE_TIMESTAMP moves the timestamp: far past every provider's tolerance (5 minutes for Stripe,
# Slack and Standard Webhooks), and far enough that clock skew between test machines cannot rescue it.
STALE_SECONDS = 3600
# WRONG_SIGNATURE signs with the real key plus this (GitLab sends the token plus this), so the signature is well
# formed but cannot verify.
WRONG_SUFFIX = "-wrong"

# Fixed agent versions: receivers that check the agent check its prefix (GitHub documents `GitHub-Hookshot/`).
GITHUB_USER_AGENT = "GitHub-Hookshot/044aadd"
GITLAB_USER_AGENT = "GitLab/17.11.0"
GITLAB_INSTANCE = "https://gitlab.example.com"
STRIPE_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"

# hashlib's names, which hmac.new takes as its digest.
_ALGORITHMS = ("sha1", "sha256", "sha512")
_ENCODINGS = ("hex", "base64")
_PLACEHOLDERS = ("body", "timestamp", "id")
# RFC 9110 token characters: what a header name may be made of.
_TOKEN = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_WHSEC = "whsec_"
# Providers that send one signature per secret; the others have room for one secret only.
_SEVERAL_SECRETS = (Profile.STRIPE, Profile.STANDARD)
_TIMESTAMPED = (Profile.STRIPE, Profile.SLACK, Profile.STANDARD)

# Gitea sends the hook's event type (`issue_assign`) in X-*-Event-Type and its event (`issues`) in X-*-Event; these
# are the types whose event differs from the type itself (HookEventType.Event() in Gitea's modules/webhook/type.go).
_GITEA_EVENTS = {
    "issue_assign": "issues",
    "issue_label": "issues",
    "issue_milestone": "issues",
    "pull_request_assign": "pull_request",
    "pull_request_label": "pull_request",
    "pull_request_milestone": "pull_request",
    "pull_request_sync": "pull_request",
    "pull_request_review_request": "pull_request",
    "pull_request_comment": "issue_comment",
    "pull_request_review_approved": "pull_request_approved",
    "pull_request_review_rejected": "pull_request_rejected",
    "pull_request_review_comment": "pull_request_comment",
}


def fault_problem(profile: Profile, fault: SignatureFault, custom: CustomHmac | None = None) -> str | None:
    """Why `fault` cannot apply to `profile` (None: it can): a stale timestamp needs a scheme that sends one."""
    if fault != SignatureFault.STALE_TIMESTAMP:
        return None
    if profile in _TIMESTAMPED:
        return None
    if profile == Profile.CUSTOM:
        if custom is not None and custom.timestamp_header:
            return None
        return "stale_timestamp needs a custom signing that sends a timestamp_header"
    return f"{profile} signs no timestamp: stale_timestamp needs stripe, slack, standard or custom with a timestamp"


def signer(
    profile: Profile | None, secrets: Sequence[str], custom: CustomHmac | None, where: str, errors: SpecErrors
) -> Signer:
    """Validate a signing set-up at programming time, adding violations to `errors` under `where`.

    The Signer returned is usable only when no violation was added.
    """
    if profile is None:
        errors.add(f"{where}.profile", f"required: one of {', '.join(p.value for p in Profile)}")
        return Signer(Profile.CUSTOM, tuple(secrets), custom)
    if not secrets:
        # GitLab sends the secret itself as its token, so every profile, GitLab included, needs one.
        errors.add(f"{where}.secrets", "at least one secret is required")
    elif len(secrets) > 1 and profile not in _SEVERAL_SECRETS:
        errors.add(f"{where}.secrets", f"{profile} sends one signature: only stripe and standard take several secrets")
    for index, secret in enumerate(secrets):
        problem = _secret_problem(profile, secret)
        if problem:
            errors.add(f"{where}.secrets[{index}]", problem)
    if profile == Profile.CUSTOM:
        if custom is None:
            errors.add(f"{where}.custom", "required for the custom profile")
        else:
            _check_custom(custom, f"{where}.custom", errors)
    elif custom is not None:
        errors.add(f"{where}.custom", f"only for the custom profile, not {profile}")
    return Signer(profile, tuple(secrets), custom if profile == Profile.CUSTOM else None)


def _secret_problem(profile: Profile, secret: str) -> str | None:
    if not secret:
        return "must not be empty"
    if profile == Profile.GITLAB and any(ch in secret for ch in "\r\n\0"):
        return "is sent as the X-Gitlab-Token header: no line breaks or NUL"
    if profile == Profile.STANDARD:
        if not secret.startswith(_WHSEC):
            return "a Standard Webhooks secret is `whsec_` followed by base64"
        try:
            _standard_key(secret)
        except ValueError as exc:
            return str(exc)
    return None


def _standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`, decoded."""
    encoded = secret.removeprefix(_WHSEC)
    try:
        # Padding is optional in the wild (the reference libraries pad before decoding); other characters are not.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after `whsec_` is not base64") from None
    if not key:
        raise ValueError("the part after `whsec_` decodes to no bytes")
    return key


def _check_custom(custom: CustomHmac, where: str, errors: SpecErrors) -> None:
    if custom.algorithm not in _ALGORITHMS:
        errors.add(f"{where}.algorithm", f"one of {', '.join(_ALGORITHMS)}")
    if not custom.header:
        errors.add(f"{where}.header", "required: the header that carries the signature")
    elif not _is_token(custom.header):
        errors.add(f"{where}.header", "not a valid header name")
    if any(ch in custom.prefix for ch in "\r\n\0"):
        errors.add(f"{where}.prefix", "no line breaks or NUL: it goes into a header value")
    if custom.encoding not in _ENCODINGS:
        errors.add(f"{where}.encoding", f"one of {', '.join(_ENCODINGS)}")
    for field_name, name in (("timestamp_header", custom.timestamp_header), ("id_header", custom.id_header)):
        if not name:
            continue
        if not _is_token(name):
            errors.add(f"{where}.{field_name}", "not a valid header name")
        elif name.lower() == custom.header.lower():
            errors.add(f"{where}.{field_name}", "must differ from the signature header")
    try:
        fields = _template_fields(custom.signed)
    except ValueError as exc:
        errors.add(f"{where}.signed_content", str(exc))
        return
    if "timestamp" in fields and not custom.timestamp_header:
        # The receiver could not verify a signature over a timestamp it is never told.
        errors.add(f"{where}.timestamp_header", "required when the signed content has {timestamp}")
    if "id" in fields and not custom.id_header:
        errors.add(f"{where}.id_header", "required when the signed content has {id}")


def _is_token(name: str) -> bool:
    return bool(name) and all(ch in _TOKEN for ch in name)


def _template_fields(template: str) -> set[str]:
    """The placeholders of a signed-content template; ValueError names a bad one. `{{` and `}}` are literal braces."""
    fields: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in _PLACEHOLDERS or spec or conversion:
            raise ValueError(f"unknown placeholder {{{field}}}: use {{body}}, {{timestamp}} or {{id}}")
        fields.add(field)
    return fields


def _render(template: str, body: bytes, timestamp: str, delivery_id: str) -> bytes:
    """The signed bytes: the template's text as UTF-8 with the body's bytes inserted as they are, never re-encoded."""
    values = {"body": body, "timestamp": timestamp.encode(), "id": delivery_id.encode()}
    out = bytearray()
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        out += literal.encode()
        if field is not None:
            out += values[field]
    return bytes(out)


def _hmac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, algorithm).digest()


def _key(secret: str, wrong: bool) -> bytes:
    """The HMAC key of a plain-text secret; a wrong one is the real key with bytes appended."""
    return secret.encode() + (WRONG_SUFFIX.encode() if wrong else b"")


def sign(
    signer: Signer,
    body: bytes,
    *,
    delivery_id: str,
    timestamp: int,
    event: str,
    hook_id: str = "1",
    target_id: str = "1",
    fault: SignatureFault = SignatureFault.NONE,
) -> list[tuple[str, str]]:
    """The headers the provider sends with `body`, in the provider's order, spoiled as `fault` says.

    `delivery_id` is the id the receiver sees (a GUID for GitHub, Gitea and GitLab), the same on every attempt.
    `event` goes into the provider's event header where it has one. `hook_id` and `target_id` are GitHub's
    X-GitHub-Hook-ID and X-GitHub-Hook-Installation-Target-ID. Raises ValueError for a fault `fault_problem` refuses.
    """
    problem = fault_problem(signer.profile, fault, signer.custom)
    if problem:
        raise ValueError(problem)
    if fault == SignatureFault.STALE_TIMESTAMP:
        timestamp -= STALE_SECONDS
    wrong = fault == SignatureFault.WRONG_SIGNATURE
    headers, signature_headers = _PROFILES[signer.profile](signer, wrong, body, delivery_id, str(timestamp), event)
    if signer.profile == Profile.GITHUB:
        headers = _github_ids(headers, hook_id, target_id)
    if fault == SignatureFault.MISSING_SIGNATURE:
        return [(name, value) for name, value in headers if name not in signature_headers]
    return headers


_Headers = list[tuple[str, str]]
_Built = tuple[_Headers, frozenset[str]]


def _github(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    key = _key(signer.secrets[0], wrong)
    headers = [
        ("User-Agent", GITHUB_USER_AGENT),
        ("X-GitHub-Delivery", delivery_id),
        ("X-GitHub-Event", event),
        ("X-Hub-Signature", "sha1=" + _hmac(key, body, "sha1").hex()),
        ("X-Hub-Signature-256", "sha256=" + _hmac(key, body).hex()),
    ]
    return headers, frozenset({"X-Hub-Signature", "X-Hub-Signature-256"})


def _github_ids(headers: _Headers, hook_id: str, target_id: str) -> _Headers:
    # The hook and its installation target come after the event, as GitHub's deliveries list them.
    at = next(i for i, (name, _value) in enumerate(headers) if name == "X-GitHub-Event") + 1
    ids = [
        ("X-GitHub-Hook-ID", hook_id),
        ("X-GitHub-Hook-Installation-Target-ID", target_id),
        ("X-GitHub-Hook-Installation-Target-Type", "repository"),
    ]
    return headers[:at] + ids + headers[at:]


def _gitea(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    # The set and order of Gitea's addDefaultHeaders (services/webhook/deliver.go): its own headers, the Gogs and
    # GitHub aliases, the SHA-1 and SHA-256 signatures. `event` may be a Gitea event type (issue_assign).
    key = _key(signer.secrets[0], wrong)
    sha256 = _hmac(key, body).hex()
    sha1 = _hmac(key, body, "sha1").hex()
    event_type = event
    event = _GITEA_EVENTS.get(event_type, event_type)
    headers = [
        ("X-Gitea-Delivery", delivery_id),
        ("X-Gitea-Event", event),
        ("X-Gitea-Event-Type", event_type),
        ("X-Gitea-Signature", sha256),
        ("X-Gogs-Delivery", delivery_id),
        ("X-Gogs-Event", event),
        ("X-Gogs-Event-Type", event_type),
        ("X-Gogs-Signature", sha256),
        ("X-Hub-Signature", "sha1=" + sha1),
        ("X-Hub-Signature-256", "sha256=" + sha256),
        ("X-GitHub-Delivery", delivery_id),
        ("X-GitHub-Event", event),
        ("X-GitHub-Event-Type", event_type),
    ]
    return headers, frozenset({"X-Gitea-Signature", "X-Gogs-Signature", "X-Hub-Signature", "X-Hub-Signature-256"})


def _gitlab(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    # GitLab's WebHookService#build_headers. Idempotency-Key is the one id kept across retries, so it is the delivery
    # id; X-Gitlab-Event-UUID (recursion detection) is derived from it so that a delivery's headers are reproducible.
    headers = [
        ("User-Agent", GITLAB_USER_AGENT),
        ("Idempotency-Key", delivery_id),
        ("X-Gitlab-Event", event),
        ("X-Gitlab-Webhook-UUID", delivery_id),
        ("X-Gitlab-Instance", GITLAB_INSTANCE),
        ("X-Gitlab-Token", signer.secrets[0] + (WRONG_SUFFIX if wrong else "")),
        ("X-Gitlab-Event-UUID", str(uuid.uuid5(uuid.NAMESPACE_URL, "gitlab-event:" + delivery_id))),
    ]
    return headers, frozenset({"X-Gitlab-Token"})


def _stripe(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    # Stripe's key is the whole `whsec_...` string, not decoded; one v1 per secret while a secret is rolled.
    signed = ts.encode() + b"." + body
    parts = [f"t={ts}"] + [f"v1={_hmac(_key(secret, wrong), signed).hex()}" for secret in signer.secrets]
    headers = [("User-Agent", STRIPE_USER_AGENT), ("Stripe-Signature", ",".join(parts))]
    return headers, frozenset({"Stripe-Signature"})


def _slack(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    signature = _hmac(_key(signer.secrets[0], wrong), b"v0:" + ts.encode() + b":" + body).hex()
    headers = [("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", "v0=" + signature)]
    return headers, frozenset({"X-Slack-Signature"})


def _standard(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    signed = f"{delivery_id}.{ts}.".encode() + body
    signatures = []
    for secret in signer.secrets:
        # The key is the decoded base64; a wrong one has bytes appended to it, as the base64 text would not decode.
        key = _standard_key(secret) + (WRONG_SUFFIX.encode() if wrong else b"")
        signatures.append("v1," + base64.b64encode(_hmac(key, signed)).decode())
    headers = [("webhook-id", delivery_id), ("webhook-timestamp", ts), ("webhook-signature", " ".join(signatures))]
    return headers, frozenset({"webhook-signature"})


def _custom(signer: Signer, wrong: bool, body: bytes, delivery_id: str, ts: str, event: str) -> _Built:
    custom = signer.custom
    if custom is None:
        raise ValueError("the custom profile needs a CustomHmac")
    digest = _hmac(_key(signer.secrets[0], wrong), _render(custom.signed, body, ts, delivery_id), custom.algorithm)
    encoded = base64.b64encode(digest).decode() if custom.encoding == "base64" else digest.hex()
    headers = [(custom.header, custom.prefix + encoded)]
    if custom.timestamp_header:
        headers.append((custom.timestamp_header, ts))
    if custom.id_header:
        headers.append((custom.id_header, delivery_id))
    return headers, frozenset({custom.header})


_PROFILES: dict[Profile, Callable[[Signer, bool, bytes, str, str, str], _Built]] = {
    Profile.GITHUB: _github,
    Profile.GITEA: _gitea,
    Profile.GITLAB: _gitlab,
    Profile.STRIPE: _stripe,
    Profile.SLACK: _slack,
    Profile.STANDARD: _standard,
    Profile.CUSTOM: _custom,
}
