"""HTTP traffic for a session another replica owns, relayed to it: the request as it came (method, raw path,
headers, Host included, so it is routed there as it was here), its answer streamed back as the owner sends it.

The relay uses aiohttp's client, not the httpx client of webhooks and proxies: on this 2-core machine httpx
managed 228 requests/s at 16 concurrent requests to one daemon against aiohttp's 3,606 (and 521 against 1,707 one
at a time), and a relayed request is every request a replica serves for another's session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from simulatord.responding.proxy import HOP_BY_HOP
from simulatord.responding.reply import Reply, error_reply
from simulatord.responding.wire import NoRawConnection, Out, Wire, send_plain
from simulatord.serving.websocket import HANDSHAKE_HEADERS, Socket

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0  # seconds: the owner is on the same network, or it is gone
# The owner's handshake headers that the client's own server sets again when it accepts.
_HANDSHAKE = HANDSHAKE_HEADERS | {"date", "server"}
# Close codes that only say how a connection ended and are never sent in a close frame (RFC 6455 7.4.1).
_UNSENDABLE = frozenset({1006, 1015})
# Marks a relayed request: the replica that gets one never relays it again (ownership moving between lookups
# would otherwise send it round), and the owner's journal shows that it came through another replica.
RELAYED = b"x-simulatord-relayed"
# Headers aiohttp would add on its own: a relayed request carries the client's, and only those.
_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


def relayed(scope: dict[str, Any]) -> bool:
    return any(name == RELAYED for name, _ in scope["headers"])


def _request_headers(scope: dict[str, Any], body: bytes) -> list[tuple[str, str]]:
    # The body was read whole here, so it travels with its length, whatever framing the client chose.
    kept = [
        (n.decode("latin-1"), v.decode("latin-1"))
        for n, v in scope["headers"]
        if n.decode("latin-1") not in HOP_BY_HOP and n != b"content-length"
    ]
    if body or scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        kept.append(("content-length", str(len(body))))
    kept.append((RELAYED.decode(), "1"))
    return kept


def _target(owner: str, scope: dict[str, Any]) -> str:
    """The request's URL at the owner: its raw path and query as the client sent them."""
    target: str = owner.rstrip("/") + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return target


def owner_unavailable(owner: str, why: str) -> Reply:
    message = f"the replica that owns this session ({owner}) {why}"
    return error_reply("OWNER_UNAVAILABLE", message, [("retry-after", "1")], status=503)


class Relayer:
    """Relays HTTP requests to other replicas over one pool of kept-alive connections, made on first use."""

    def __init__(self) -> None:
        self._client: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        if self._client is None:
            import aiohttp  # with the redis extra: only replicas relay

            self._client = aiohttp.ClientSession(
                # Idle connections go before the owner's server would close them (uvicorn: after 5 s), so
                # that a request is never sent on a connection the owner is closing.
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=3.0),
                # No read timeout: the owner's answer may be a long stream or a programmed hang, which the
                # owner bounds itself.
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT),
                auto_decompress=False,
                trust_env=False,
            )
            # aiohttp sends an idempotent request again when its kept-alive connection broke: a reset the owner
            # was asked for would then be served, and recorded, twice. Every request goes once (private switch,
            # aiohttp 3.x; without it, as with any other client, a broken connection is the client's to retry).
            self._client._retry_connection = False
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def relay(self, owner: str, scope: dict[str, Any], body: bytes, wire: Wire) -> None:
        """Sends the request to the owner's HTTP address and its answer back; the owner records the exchange."""
        import aiohttp
        import yarl

        target = _target(owner, scope)
        try:
            response = await self.client().request(
                scope["method"],
                yarl.URL(target, encoded=True),  # the raw path as the client sent it, not re-quoted
                headers=_request_headers(scope, body),
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=_AUTO_HEADERS,
            )
        except (aiohttp.ClientConnectorError, TimeoutError) as exc:  # the owner is gone: its lease runs out soon
            log.warning("relaying to the owner at %s failed: %s", owner, exc)
            await send_plain(owner_unavailable(owner, f"did not answer: {type(exc).__name__}: {exc}"), wire)
            return
        except aiohttp.ClientError:  # it answered with a broken connection (a fault it was asked for): so do we
            out = Out(wire)
            await _break(out)
            out.close(Reply(0, []))
            return
        try:
            await _stream_back(response, wire)
        finally:
            response.release()


async def _stream_back(response: aiohttp.ClientResponse, wire: Wire) -> None:
    length: int | None = None
    headers: list[tuple[str, str]] = []
    for raw_name, raw_value in response.raw_headers:
        name = raw_name.decode("latin-1").lower()
        if name == "content-length":
            with contextlib.suppress(ValueError):
                length = int(raw_value)
        elif name not in HOP_BY_HOP:
            headers.append((name, raw_value.decode("latin-1")))
    reply = Reply(response.status, headers)
    out = Out(wire)
    try:
        await out.start(reply, length)
        async for chunk in response.content.iter_any():
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


async def relay_websocket(owner: str, scope: dict[str, Any], socket: Socket, session: str | None) -> None:
    """Opens the same WebSocket at the owner (same path, headers and offered subprotocols) and passes messages
    and the close both ways; an upgrade the owner refuses is refused here with its answer. `session`: the
    session's name when the Host header named it, which the WebSocket client cannot pass on (the owner then
    gets it in the routing header)."""
    try:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus
    except ImportError:  # the websockets library comes with the fast extra
        await socket.refuse(not_relayed(owner, "this daemon has no WebSocket client (pip install 'simulatord[fast]')"))
        return
    target = _target(owner.replace("http", "ws", 1), scope)
    offered: list[str] = []
    headers: list[tuple[str, str]] = [(RELAYED.decode(), "1")]
    if session is not None:
        headers.append(("x-simulatord-session", session))
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name == "sec-websocket-protocol":
            offered += [p.strip() for p in value.split(",") if p.strip()]
        elif not name.startswith("sec-websocket-") and name not in HOP_BY_HOP and name != "host":
            headers.append((name, value))
    try:
        upstream = await connect(
            target,
            additional_headers=headers,
            subprotocols=offered or None,  # type: ignore[arg-type]
            open_timeout=CONNECT_TIMEOUT,
            max_size=None,
            ping_interval=None,
            compression=None,
        )
    except InvalidStatus as refused:  # the owner answered the upgrade with an ordinary response: so do we
        answer = refused.response
        kept = [(n.lower(), v) for n, v in answer.headers.raw_items() if n.lower() not in HOP_BY_HOP]
        await socket.refuse(Reply(answer.status_code, kept, bytes(answer.body or b"")))
        return
    except (OSError, TimeoutError) as exc:
        await socket.refuse(owner_unavailable(owner, f"did not answer: {type(exc).__name__}: {exc}"))
        return
    async with upstream:
        assert upstream.response is not None  # the handshake is done
        given = [(n.lower(), v) for n, v in upstream.response.headers.raw_items() if n.lower() not in _HANDSHAKE]
        await socket.accept(upstream.subprotocol, given)
        inbound = asyncio.ensure_future(_client_to_owner(socket, upstream))
        try:
            async for message in upstream:
                if isinstance(message, str):
                    await socket.send_text(message)
                else:
                    await socket.send_bytes(message)
        except ConnectionClosed:
            pass
        finally:
            inbound.cancel()
        with contextlib.suppress(Exception):
            await socket.close(upstream.close_code or 1006, upstream.close_reason or "")


async def _client_to_owner(socket: Socket, upstream: Any) -> None:
    try:
        while True:
            incoming = await socket.receive()
            if incoming.closed:
                break
            await upstream.send(incoming.text if incoming.text is not None else incoming.data or b"")
    except Exception as exc:  # the owner's side went first: the other direction ends the conversation
        log.debug("relaying a WebSocket message to its owner failed: %s", exc)
        return
    if incoming.code in _UNSENDABLE:  # the client left without a closing handshake: so does the relay
        upstream.transport.abort()
    else:
        await upstream.close(1000 if incoming.code == 1005 else incoming.code, incoming.reason)


def not_relayed(owner: str, why: str) -> Reply:
    return error_reply(
        "WEBSOCKET_NOT_RELAYED", f"this session is served by another replica ({owner}); {why}", status=421
    )
