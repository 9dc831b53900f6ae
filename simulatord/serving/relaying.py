"""HTTP traffic for a session another replica owns, relayed to it: the request as it came (method, raw path,
headers, Host included, so it is routed there as it was here), its answer streamed back as the owner sends it."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from simulatord.responding.proxy import HOP_BY_HOP
from simulatord.responding.reply import Reply, error_reply
from simulatord.responding.wire import NoRawConnection, Out, Wire, send_plain

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0  # seconds: the owner is on the same network, or it is gone


def _request_headers(scope: dict[str, Any], body: bytes) -> list[tuple[bytes, bytes]]:
    # The body was read whole here, so it travels with its length, whatever framing the client chose.
    kept = [(n, v) for n, v in scope["headers"] if n.decode("latin-1") not in HOP_BY_HOP and n != b"content-length"]
    if body or scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        kept.append((b"content-length", str(len(body)).encode()))
    return kept


async def relay(client: httpx.AsyncClient, owner: str, scope: dict[str, Any], body: bytes, wire: Wire) -> None:
    """Sends the request to the owner's HTTP address and its answer back; the owner records the exchange."""
    import httpx

    target = owner.rstrip("/") + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    # No read timeout: the owner's answer may be a long stream or a programmed hang, bound by the owner itself.
    timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT).as_dict()
    request = httpx.Request(
        scope["method"],
        target,
        headers=_request_headers(scope, body),
        content=body,
        extensions={"timeout": timeout},
    )
    try:
        response = await client.send(request, stream=True, follow_redirects=False)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # the owner is gone: its lease runs out soon
        log.warning("relaying to the owner at %s failed: %s", owner, exc)
        message = f"the replica that owns this session ({owner}) did not answer: {type(exc).__name__}: {exc}"
        await send_plain(error_reply("OWNER_UNAVAILABLE", message, [("retry-after", "1")], status=503), wire)
        return
    except httpx.HTTPError:  # it answered with a broken connection (a fault it was asked for): so do we
        out = Out(wire)
        await _break(out)
        out.close(Reply(0, []))
        return
    try:
        await _stream_back(response, wire)
    finally:
        await response.aclose()


async def _stream_back(response: httpx.Response, wire: Wire) -> None:
    reply = Reply(response.status_code, [])
    length: int | None = None
    headers: list[tuple[str, str]] = []
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if name == "content-length":
            with contextlib.suppress(ValueError):
                length = int(raw_value)
        elif name not in HOP_BY_HOP:
            headers.append((name, raw_value.decode("latin-1")))
    reply.headers = headers
    out = Out(wire)
    try:
        await out.start(reply, length)
        async for chunk in response.aiter_raw():
            await out.body(chunk)
        await out.end()
    except OSError:  # the client left
        return
    except Exception as exc:  # the owner broke the answer off (a fault it was asked for, or it died): so do we
        log.debug("the owner broke off a relayed answer: %s", exc)
        await _break(out)
    finally:
        out.close(reply)


async def _break(out: Out) -> None:
    with contextlib.suppress(NoRawConnection, OSError):
        await out.connection().reset()
