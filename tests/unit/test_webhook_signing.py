"""Webhook signing checked by the providers' own verification code, never ours: good deliveries pass, faults fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import stripe
from slack_sdk.signature import Clock, SignatureVerifier
from standardwebhooks import Webhook, WebhookVerificationError

from simulatord.errors import SpecErrors
from simulatord.webhooks.signing import (
    CustomHmac,
    Profile,
    SignatureFault,
    Signer,
    fault_problem,
    sign,
    signer,
)

NODE_CLIENT = Path(__file__).resolve().parents[2] / "client" / "node"
# Non-ASCII and a space after a colon: a signer that re-encodes or re-serialises the body would not verify.
BODY = json.dumps({"action": "assigned", "title": "Grüße ✓", "n": 1}, ensure_ascii=False).encode()
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()
STANDARD_ROTATED = "whsec_" + base64.b64encode(b"another-key-of-24-bytes!").decode()


def make(profile: Profile, *secrets: str, custom: CustomHmac | None = None) -> Signer:
    errors = SpecErrors()
    made = signer(profile, secrets, custom, "signing", errors)
    assert errors.violations == []
    return made


def headers_of(made: Signer, fault: SignatureFault = SignatureFault.NONE, event: str = "issues") -> dict[str, str]:
    pairs = sign(made, BODY, delivery_id=DELIVERY, timestamp=int(time.time()), event=event, hook_id="42", fault=fault)
    assert len({name.lower() for name, _ in pairs}) == len(pairs), "a header sent twice"
    return dict(pairs)


# Standard Webhooks: the reference library's Webhook.verify.


def test_standard_webhooks_verifies_with_every_rotated_secret() -> None:
    headers = headers_of(make(Profile.STANDARD, STANDARD_SECRET, STANDARD_ROTATED))
    assert headers["webhook-id"] == DELIVERY
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (STANDARD_SECRET, STANDARD_ROTATED):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


@pytest.mark.parametrize("fault", [f for f in SignatureFault if f != SignatureFault.NONE])
def test_standard_webhooks_rejects_every_fault(fault: SignatureFault) -> None:
    headers = headers_of(make(Profile.STANDARD, STANDARD_SECRET), fault)
    reason = {
        SignatureFault.WRONG_SIGNATURE: "No matching signature",
        SignatureFault.STALE_TIMESTAMP: "too old",  # signed correctly: only the tolerance rejects it
        SignatureFault.MISSING_SIGNATURE: "Missing required headers",
    }[fault]
    with pytest.raises(WebhookVerificationError, match=reason):
        Webhook(STANDARD_SECRET).verify(BODY, headers)


def test_standard_webhooks_signs_bodies_that_are_not_utf8() -> None:
    body = b"\xff\x00\xfe binary"
    made = make(Profile.STANDARD, STANDARD_SECRET)
    headers = dict(sign(made, body, delivery_id="msg_1", timestamp=int(time.time()), event=""))
    Webhook(STANDARD_SECRET).verify(body, headers, json_parse=False)


# Stripe: stripe.Webhook.construct_event, with its default 300-second tolerance.


def test_stripe_verifies_with_every_rotated_secret() -> None:
    headers = headers_of(make(Profile.STRIPE, "whsec_first", "whsec_second"))
    assert headers["Stripe-Signature"].count(",v1=") == 2
    for secret in ("whsec_first", "whsec_second"):
        event = stripe.Webhook.construct_event(BODY, headers["Stripe-Signature"], secret)
        assert event["title"] == "Grüße ✓"


@pytest.mark.parametrize("fault", [f for f in SignatureFault if f != SignatureFault.NONE])
def test_stripe_rejects_every_fault(fault: SignatureFault) -> None:
    headers = headers_of(make(Profile.STRIPE, "whsec_first"), fault)
    assert ("Stripe-Signature" in headers) == (fault != SignatureFault.MISSING_SIGNATURE)
    reason = {
        SignatureFault.WRONG_SIGNATURE: "No signatures found matching",
        SignatureFault.STALE_TIMESTAMP: "tolerance",  # signed correctly: only the tolerance rejects it
        SignatureFault.MISSING_SIGNATURE: "No Stripe-Signature header",
    }[fault]
    with pytest.raises(stripe.SignatureVerificationError, match=reason):
        stripe.Webhook.construct_event(BODY, headers.get("Stripe-Signature"), "whsec_first")


# Slack: slack_sdk's SignatureVerifier, whose stale check allows 5 minutes.


def test_slack_verifies() -> None:
    headers = headers_of(make(Profile.SLACK, "slack-signing-secret"))
    verifier = SignatureVerifier("slack-signing-secret")
    assert verifier.is_valid(BODY, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert verifier.is_valid_request(BODY, headers)


@pytest.mark.parametrize("fault", [f for f in SignatureFault if f != SignatureFault.NONE])
def test_slack_rejects_every_fault(fault: SignatureFault) -> None:
    headers = headers_of(make(Profile.SLACK, "slack-signing-secret"), fault)
    assert "X-Slack-Request-Timestamp" in headers
    assert not SignatureVerifier("slack-signing-secret").is_valid_request(BODY, headers)


def test_slack_stale_timestamp_is_signed_correctly_over_the_old_time() -> None:
    # Only the tolerance rejects it: a verifier whose clock stands an hour back accepts it.
    now = int(time.time())
    made = make(Profile.SLACK, "slack-signing-secret")
    headers = dict(sign(made, BODY, delivery_id="", timestamp=now, event="", fault=SignatureFault.STALE_TIMESTAMP))
    assert headers["X-Slack-Request-Timestamp"] == str(now - 3600)

    class HourAgo(Clock):
        def now(self) -> float:
            return now - 3600

    assert SignatureVerifier("slack-signing-secret", clock=HourAgo()).is_valid_request(BODY, headers)


# GitHub: @octokit/webhooks-methods verify(), run by node from the Node client's dev dependencies.


def octokit_verify(cases: list[tuple[str, str | None]]) -> list[bool | str]:
    """Octokit's verify(secret, body, signature) per case: true, false, or the error it threw."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the GitHub oracle is @octokit/webhooks-methods")
    script = """
import { verify } from "@octokit/webhooks-methods";
import { readFileSync } from "node:fs";
const { body, cases } = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const [secret, signature] of cases) {
  try { out.push(await verify(secret, body, signature)); } catch (e) { out.push(String(e.message)); }
}
console.log(JSON.stringify(out));
"""
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps({"body": BODY.decode(), "cases": cases}),
        capture_output=True,
        text=True,
        cwd=NODE_CLIENT,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"node failed (run `npm ci` in client/node?): {done.stderr}"
    result: list[bool | str] = json.loads(done.stdout)
    return result


def test_github_verified_by_octokit_and_faults_rejected() -> None:
    made = make(Profile.GITHUB, "gh-secret")
    good = headers_of(made)
    assert good["X-GitHub-Delivery"] == DELIVERY and good["X-GitHub-Event"] == "issues"
    assert good["X-GitHub-Hook-ID"] == "42" and good["User-Agent"].startswith("GitHub-Hookshot/")
    wrong = headers_of(made, SignatureFault.WRONG_SIGNATURE)
    missing = headers_of(made, SignatureFault.MISSING_SIGNATURE)
    assert "X-Hub-Signature-256" not in missing and "X-Hub-Signature" not in missing
    assert missing["X-GitHub-Event"] == "issues"
    good_check, wrong_check, missing_check, other_secret = octokit_verify(
        [
            ("gh-secret", good["X-Hub-Signature-256"]),
            ("gh-secret", wrong["X-Hub-Signature-256"]),
            ("gh-secret", missing.get("X-Hub-Signature-256")),
            ("not-the-secret", good["X-Hub-Signature-256"]),
        ]
    )
    assert good_check is True
    assert wrong_check is False
    assert missing_check is not True  # octokit throws: "secret, eventPayload & signature required"
    assert other_secret is False


def test_github_legacy_sha1_header_as_receivers_check_it() -> None:
    headers = headers_of(make(Profile.GITHUB, "gh-secret"))
    expected = "sha1=" + hmac.new(b"gh-secret", BODY, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature"], expected)


def test_github_stale_timestamp_is_refused() -> None:
    assert fault_problem(Profile.GITHUB, SignatureFault.STALE_TIMESTAMP)
    with pytest.raises(ValueError):
        headers_of(make(Profile.GITHUB, "gh-secret"), SignatureFault.STALE_TIMESTAMP)


# Gitea: the receiver check Gitea's docs show, and the exact header set of its services/webhook/deliver.go.


def gitea_receiver_accepts(headers: dict[str, str], secret: str) -> bool:
    sent = headers.get("X-Gitea-Signature")
    return sent is not None and hmac.compare_digest(sent, hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest())


def test_gitea_headers_and_signature() -> None:
    headers = headers_of(make(Profile.GITEA, "gitea-secret"), event="issue_assign")
    digest = hmac.new(b"gitea-secret", BODY, hashlib.sha256).hexdigest()
    assert headers == {
        "X-Gitea-Delivery": DELIVERY,
        "X-Gitea-Event": "issues",
        "X-Gitea-Event-Type": "issue_assign",
        "X-Gitea-Signature": digest,
        "X-Gogs-Delivery": DELIVERY,
        "X-Gogs-Event": "issues",
        "X-Gogs-Event-Type": "issue_assign",
        "X-Gogs-Signature": digest,
        "X-Hub-Signature": "sha1=" + hmac.new(b"gitea-secret", BODY, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + digest,
        "X-GitHub-Delivery": DELIVERY,
        "X-GitHub-Event": "issues",
        "X-GitHub-Event-Type": "issue_assign",
    }
    assert gitea_receiver_accepts(headers, "gitea-secret")
    # The GitHub alias verifies with GitHub's own verifier too.
    assert octokit_verify([("gitea-secret", headers["X-Hub-Signature-256"])]) == [True]


@pytest.mark.parametrize("fault", [SignatureFault.WRONG_SIGNATURE, SignatureFault.MISSING_SIGNATURE])
def test_gitea_rejects_faults(fault: SignatureFault) -> None:
    headers = headers_of(make(Profile.GITEA, "gitea-secret"), fault)
    assert not gitea_receiver_accepts(headers, "gitea-secret")
    if fault == SignatureFault.MISSING_SIGNATURE:
        assert not {"X-Gogs-Signature", "X-Hub-Signature", "X-Hub-Signature-256"} & headers.keys()
        assert headers["X-Gitea-Event"] == "issues"


# GitLab: the token is the secret itself; receivers compare it.


def test_gitlab_token_and_headers() -> None:
    made = make(Profile.GITLAB, "gitlab-token")
    headers = headers_of(made, event="Issue Hook")
    assert headers["X-Gitlab-Token"] == "gitlab-token"
    assert headers["X-Gitlab-Event"] == "Issue Hook"
    assert headers["Idempotency-Key"] == DELIVERY
    assert headers["User-Agent"].startswith("GitLab/")
    assert {"X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "X-Gitlab-Instance"} <= headers.keys()
    assert headers_of(made, SignatureFault.WRONG_SIGNATURE).get("X-Gitlab-Token") != "gitlab-token"
    assert "X-Gitlab-Token" not in headers_of(made, SignatureFault.MISSING_SIGNATURE)


# Custom HMAC: shaped as a provider's scheme, it is verified by that provider's code.


def test_custom_shaped_as_slack_verified_by_slack_sdk() -> None:
    custom = CustomHmac(
        header="X-Slack-Signature",
        prefix="v0=",
        signed="v0:{timestamp}:{body}",
        timestamp_header="X-Slack-Request-Timestamp",
    )
    made = make(Profile.CUSTOM, "slack-signing-secret", custom=custom)
    verifier = SignatureVerifier("slack-signing-secret")
    assert verifier.is_valid_request(BODY, headers_of(made))
    for fault in (SignatureFault.WRONG_SIGNATURE, SignatureFault.STALE_TIMESTAMP, SignatureFault.MISSING_SIGNATURE):
        assert not verifier.is_valid_request(BODY, headers_of(made, fault))


def test_custom_shaped_as_github_verified_by_octokit() -> None:
    made = make(Profile.CUSTOM, "gh-secret", custom=CustomHmac(header="X-Hub-Signature-256", prefix="sha256="))
    good = headers_of(made)["X-Hub-Signature-256"]
    wrong = headers_of(made, SignatureFault.WRONG_SIGNATURE)["X-Hub-Signature-256"]
    assert octokit_verify([("gh-secret", good), ("gh-secret", wrong)]) == [True, False]


def test_custom_sha512_base64_with_id_and_literal_braces() -> None:
    custom = CustomHmac(
        algorithm="sha512", header="X-Sig", signed="{{{id}}}.{body}", encoding="base64", id_header="X-Delivery"
    )
    headers = headers_of(make(Profile.CUSTOM, "k", custom=custom))
    expected = hmac.new(b"k", b"{" + DELIVERY.encode() + b"}." + BODY, hashlib.sha512).digest()
    assert headers == {"X-Sig": base64.b64encode(expected).decode(), "X-Delivery": DELIVERY}


# Validation at programming time.


def violations(profile: Profile | None, secrets: tuple[str, ...], custom: CustomHmac | None = None) -> set[str]:
    errors = SpecErrors()
    signer(profile, secrets, custom, "w", errors)
    return {v.field for v in errors.violations}


def test_validation_names_the_fields() -> None:
    assert violations(None, ("s",)) == {"w.profile"}
    assert violations(Profile.GITLAB, ()) == {"w.secrets"}
    assert violations(Profile.GITHUB, ("a", "b")) == {"w.secrets"}
    assert violations(Profile.GITHUB, ("a",), CustomHmac(header="X")) == {"w.custom"}
    assert violations(Profile.STANDARD, ("plain",)) == {"w.secrets[0]"}
    assert violations(Profile.STANDARD, (STANDARD_SECRET, "whsec_not base64!")) == {"w.secrets[1]"}
    assert violations(Profile.STANDARD, ("whsec_",)) == {"w.secrets[0]"}
    assert violations(Profile.STRIPE, ("a", "")) == {"w.secrets[1]"}
    assert violations(Profile.GITLAB, ("tok\nen",)) == {"w.secrets[0]"}
    assert violations(Profile.CUSTOM, ("s",)) == {"w.custom"}
    bad = CustomHmac(algorithm="md5", header="bad header", signed="{body}{nope}", encoding="hex32")
    assert violations(Profile.CUSTOM, ("s",), bad) == {
        "w.custom.algorithm",
        "w.custom.header",
        "w.custom.encoding",
        "w.custom.signed_content",
    }
    assert violations(Profile.CUSTOM, ("s",), CustomHmac()) == {"w.custom.header"}
    assert violations(Profile.CUSTOM, ("s",), CustomHmac(header="X", signed="{timestamp}.{body}")) == {
        "w.custom.timestamp_header"
    }
    assert violations(Profile.CUSTOM, ("s",), CustomHmac(header="X", signed="{body")) == {"w.custom.signed_content"}
    assert violations(Profile.CUSTOM, ("s",), CustomHmac(header="X", signed="{body!r}")) == {"w.custom.signed_content"}


def test_stale_timestamp_needs_a_timestamp() -> None:
    for profile in (Profile.GITHUB, Profile.GITEA, Profile.GITLAB):
        assert fault_problem(profile, SignatureFault.STALE_TIMESTAMP) is not None
    for profile in (Profile.STRIPE, Profile.SLACK, Profile.STANDARD):
        assert fault_problem(profile, SignatureFault.STALE_TIMESTAMP) is None
    assert fault_problem(Profile.CUSTOM, SignatureFault.STALE_TIMESTAMP, CustomHmac(header="X")) is not None
    with_time = CustomHmac(header="X", timestamp_header="X-Time")
    assert fault_problem(Profile.CUSTOM, SignatureFault.STALE_TIMESTAMP, with_time) is None
    for fault in (SignatureFault.NONE, SignatureFault.WRONG_SIGNATURE, SignatureFault.MISSING_SIGNATURE):
        assert all(fault_problem(profile, fault) is None for profile in Profile)
