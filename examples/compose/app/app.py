"""Example service under test: a tiny checkout API that charges cards through an upstream payments API.

It stands for "your application" in the compose example. In production it would read the payments
provider's base URL from PAYMENTS_BASE_URL; in tests each test creates its own simulatord session at
run time, so a request may name the upstream base URL in the `x-upstream-base-url` header (a test hook
that a real service would only enable outside production; here ALLOW_UPSTREAM_OVERRIDE=1 turns it on).

Endpoints:
  GET  /healthz   -> 200 {"status": "ok"}
  POST /checkout  {"order_id": "o-1", "amount": 1250, "currency": "eur", "card_token": "tok_visa"}
       -> 201 {"order_id", "status": "paid", "charge_id"}       upstream accepted the charge
       -> 402 {"order_id", "status": "declined", "reason"}      upstream said 402 (card declined)
       -> 502 {"order_id", "status": "payment_unavailable"}     upstream failed twice / unreachable
It calls `POST {base}/v1/charges` with a bearer API key and the order id as Idempotency-Key, and retries
once on a 5xx or a connection error (safe thanks to the idempotency key).

Standard library only, so the image needs nothing but Python.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("checkout")

API_KEY = os.environ.get("PAYMENTS_API_KEY", "sk_test_example")
DEFAULT_BASE_URL = os.environ.get("PAYMENTS_BASE_URL", "")
ALLOW_OVERRIDE = os.environ.get("ALLOW_UPSTREAM_OVERRIDE", "0") == "1"
UPSTREAM_TIMEOUT_S = float(os.environ.get("PAYMENTS_TIMEOUT_S", "5"))


class UpstreamError(Exception):
    """The payments API could not be reached or answered with a server error."""


def charge(base_url: str, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Creates a charge upstream; returns (status, JSON body), retrying once on 5xx or network errors."""
    payload = json.dumps(
        {
            "amount": order["amount"],
            "currency": order["currency"],
            "source": order["card_token"],
            "metadata": {"order_id": order["order_id"]},
        }
    ).encode()
    last_error = ""
    for attempt in (1, 2):
        req = urllib.request.Request(
            base_url.rstrip("/") + "/v1/charges",
            data=payload,
            method="POST",
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {API_KEY}",
                "idempotency-key": order["order_id"],
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=UPSTREAM_TIMEOUT_S) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            body = err.read()
            if err.code < 500:
                return err.code, json.loads(body or b"{}")
            last_error = f"HTTP {err.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last_error = str(err)
        log.warning("charge attempt %d for %s failed: %s", attempt, order["order_id"], last_error)
    raise UpstreamError(last_error)


class Handler(BaseHTTPRequestHandler):
    """Routes the two endpoints; every answer is JSON."""

    server_version = "checkout-example/1"

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/checkout":
            self._send(404, {"error": "not found"})
            return
        try:
            order = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            for key in ("order_id", "amount", "currency", "card_token"):
                if key not in order:
                    raise ValueError(f"missing {key}")
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            self._send(400, {"error": str(err)})
            return
        base_url = DEFAULT_BASE_URL
        if ALLOW_OVERRIDE and self.headers.get("x-upstream-base-url"):
            base_url = self.headers["x-upstream-base-url"]
        if not base_url:
            self._send(500, {"error": "no payments base URL configured"})
            return
        order_id = order["order_id"]
        try:
            status, body = charge(base_url, order)
        except UpstreamError:
            self._send(502, {"order_id": order_id, "status": "payment_unavailable"})
            return
        if status in (200, 201):
            self._send(201, {"order_id": order_id, "status": "paid", "charge_id": body.get("id")})
        elif status == HTTPStatus.PAYMENT_REQUIRED:
            reason = (body.get("error") or {}).get("code", "unknown")
            self._send(402, {"order_id": order_id, "status": "declined", "reason": reason})
        else:
            self._send(502, {"order_id": order_id, "status": "payment_unavailable"})

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True

    # Stop cleanly on SIGTERM (compose down): shutdown() must run off the serving thread.
    def stop(*_: object) -> None:
        import threading

        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    log.info("listening on :%d (payments base URL %r, override %s)", port, DEFAULT_BASE_URL, ALLOW_OVERRIDE)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
