"""The ASGI side of a WebSocket addressed to a session: the server's messages as serving's `Socket`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from simulatord.responding.reply import Reply, encode_headers
from simulatord.serving.websocket import Incoming

Message = MutableMapping[str, Any]

# Policy violation: what a server without the HTTP-response extension can say instead of an HTTP answer.
REFUSED_CLOSE_CODE = 1008


class AsgiSocket:
    """One ASGI WebSocket scope, from the `websocket.connect` message on."""

    def __init__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        self._can_answer_http = "websocket.http.response" in scope.get("extensions", {})
        self._receive = receive
        self._send = send

    async def connected(self) -> bool:
        """Waits for the client's connect; False when the scope ends without one."""
        return bool((await self._receive())["type"] == "websocket.connect")

    async def accept(self, subprotocol: str | None, headers: Sequence[tuple[str, str]]) -> None:
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": encode_headers(headers)})

    async def refuse(self, reply: Reply) -> None:
        if self._can_answer_http:
            await self._send(
                {
                    "type": "websocket.http.response.start",
                    "status": reply.status,
                    "headers": encode_headers(reply.headers),
                }
            )
            await self._send({"type": "websocket.http.response.body", "body": reply.body})
        else:
            await self._send({"type": "websocket.close", "code": REFUSED_CLOSE_CODE})

    async def receive(self) -> Incoming:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return Incoming(
                    closed=True, code=int(message.get("code", 1005)), reason=str(message.get("reason") or "")
                )
            if message["type"] == "websocket.receive":
                data = message.get("bytes")
                return Incoming(text=message.get("text"), data=bytes(data) if data is not None else None)

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
