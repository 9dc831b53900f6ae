"""Forwarding proxied requests to their upstream and streaming the answer back, captured for recording."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from simulatord.responding.proxy import HOP_BY_HOP, MAX_RECORDED_BODY, Proxy, ProxyMode, ProxyRecord, Recording
from simulatord.responding.wire import End, NoRawConnection, Out
from simulatord.serving.outbound import Outbound
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub
from simulatord.webhooks.targets import TargetForbidden

if TYPE_CHECKING:
    import httpx

    from simulatord.matching.request import HttpRequest
    from simulatord.responding.behaviour import Context
    from simulatord.responding.reply import Reply

# Never forwarded: framing is the client library's, and the routing header addresses this daemon.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "x-simulatord-session"}
# The path is kept percent-decoded; these stay as they are when it is encoded again for the upstream.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
# An event block ends at a blank line, whichever of CRLF, LF or CR ends its lines (WHATWG HTML 9.2.5).
_BLANK_LINE = re.compile(rb"(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r(?!\n))")


class Recorder(Protocol):
    """Turns one upstream answer into a stub of the session; returns (stub name, why not recorded)."""

    def __call__(self, session: Session, stub: Stub, proxy: Proxy, recording: Recording) -> tuple[str, str]: ...


def upstream_url(proxy: Proxy, request: HttpRequest) -> str:
    url = proxy.upstream + quote(request.path, safe=_PATH_SAFE)
    return f"{url}?{request.query_string}" if request.query_string else url


def forwarded_headers(proxy: Proxy, request: HttpRequest) -> list[tuple[str, str]]:
    """The client's headers as the upstream gets them: per-connection ones dropped, the proxy's own set."""
    replaced = {name for name, _ in proxy.request_headers}
    kept = [(n, v) for n, v in request.headers if n not in _NOT_FORWARDED and n not in replaced]
    return kept + list(proxy.request_headers)


@dataclass
class _Capture:
    """What recording keeps of an answer while it streams through: the body, and for SSE each event's timing."""

    sse: bool
    started: float  # when the response headers arrived
    body: bytearray = field(default_factory=bytearray)
    too_large: bool = False
    events: list[tuple[bytes, float]] = field(default_factory=list)
    _pending: bytearray = field(default_factory=bytearray)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self._last = self.started

    def feed(self, chunk: bytes, now: float) -> None:
        if self.too_large or len(self.body) + len(chunk) > MAX_RECORDED_BODY:
            self.too_large = True
            return
        self.body += chunk
        if self.sse:
            self._pending += chunk
            self._split(now, final=False)

    def _split(self, now: float, final: bool) -> None:
        while True:
            found = _BLANK_LINE.search(self._pending)
            # A CR at the end may be the first half of a CRLF still on its way.
            if found is None or (not final and found.end() == len(self._pending) and found.group().endswith(b"\r")):
                break
            self.events.append((bytes(self._pending[: found.end()]), max(0.0, now - self._last)))
            self._last = now
            del self._pending[: found.end()]
        if final and self._pending:
            self.events.append((bytes(self._pending), max(0.0, now - self._last)))
            self._pending.clear()

    def finish(self, now: float) -> None:
        if self.sse and not self.too_large:
            self._split(now, final=True)


class Forwarder:
    """Forwards the requests of proxy stubs through the daemon's HTTP client, under its target policy."""

    def __init__(self, outbound: Outbound, recorder: Recorder | None) -> None:
        self.outbound = outbound
        self.recorder = recorder

    async def forward(self, session: Session, stub: Stub, proxy: Proxy, reply: Reply, context: Context) -> End:
        """Sends the request upstream and its answer back; leaves what happened in `context.proxied`."""
        request = context.request
        url = upstream_url(proxy, request)
        recording = proxy.mode is not ProxyMode.TRANSPARENT
        context.proxied = ProxyRecord(url)
        try:
            await self.outbound.targets.check(proxy.host, proxy.port)
        except TargetForbidden as exc:
            return await self._refused(reply, context, 502, "PROXY_TARGET_FORBIDDEN", str(exc), url, recording)
        import httpx  # loaded with the first proxied request, as for webhooks

        upstream = httpx.Request(request.method, url, headers=forwarded_headers(proxy, request), content=request.body)
        sent = time.monotonic()
        try:
            response = await asyncio.wait_for(self.outbound.http().send(upstream, stream=True), proxy.timeout)
        except TimeoutError:
            message = f"the upstream {proxy.upstream} sent no response headers within {proxy.timeout:g} s"
            return await self._refused(reply, context, 504, "PROXY_UPSTREAM_TIMEOUT", message, url, recording)
        except httpx.HTTPError as exc:
            message = f"the upstream {proxy.upstream} could not be reached: {type(exc).__name__}: {exc}"
            return await self._refused(reply, context, 502, "PROXY_UPSTREAM_UNAVAILABLE", message, url, recording)
        latency = time.monotonic() - sent
        try:
            return await self._stream_back(session, stub, proxy, reply, context, response, url, latency)
        finally:
            await response.aclose()

    async def _refused(
        self, reply: Reply, context: Context, status: int, reason: str, message: str, url: str, recording: bool
    ) -> End:
        not_recorded = "the upstream gave no answer" if recording else ""
        context.proxied = ProxyRecord(url, not_recorded=not_recorded)
        return await context.finish(reply.explain(status, reason, message))

    async def _stream_back(
        self,
        session: Session,
        stub: Stub,
        proxy: Proxy,
        reply: Reply,
        context: Context,
        response: httpx.Response,
        url: str,
        latency: float,
    ) -> End:
        headers: list[tuple[str, str]] = []
        content_length: int | None = None
        for raw_name, raw_value in response.headers.raw:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            if name == "content-length":
                with contextlib.suppress(ValueError):
                    content_length = int(value)
            elif name not in HOP_BY_HOP:
                headers.append((name, value))
        reply.status = response.status_code
        reply.headers = [*headers, *reply.headers]  # a rate limit's headers stay on top of the upstream's
        reply.body = b""
        recording = proxy.mode is not ProxyMode.TRANSPARENT
        content_type = response.headers.get("content-type", "")
        capture = _Capture(sse=content_type.startswith("text/event-stream"), started=time.monotonic())
        out = context.out()
        await out.start(reply, content_length)
        pump = asyncio.ensure_future(self._pump(response, out, capture if recording else None, content_length))
        watch = asyncio.ensure_future(out.sleep(out.max_seconds))
        await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        watch.cancel()
        end = End.COMPLETE
        broke_off = ""
        if not pump.done():
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            if out.gone or out.stopping:
                end = await out.interrupted(reply)
            else:
                reply.error = "the upstream's body lasted longer than the daemon's --max-stream-seconds"
                end = await _break_off(out)
        elif (failure := pump.exception()) is not None:
            broke_off = f"the upstream broke off the body: {type(failure).__name__}: {failure}"
            reply.error = broke_off
            end = await _break_off(out)
        elif out.gone:
            end = End.CLIENT_DISCONNECTED
        record = ProxyRecord(url, latency)
        if recording:
            record = self._record(session, stub, proxy, reply, context, capture, record, end, broke_off)
        context.proxied = record
        if end is End.COMPLETE:
            # Only now does the client get the last bytes: once it has the answer, the recording answers too.
            # The upstream's response is closed first, as nothing may wait between the last bytes and the
            # journal's record of them (a client asking again at once would be recorded first).
            await response.aclose()
            try:
                await out.body(pump.result())
                await out.end()
            except OSError:
                end = End.CLIENT_DISCONNECTED
        return end

    async def _pump(
        self, response: httpx.Response, out: Out, capture: _Capture | None, content_length: int | None
    ) -> bytes:
        """Relays the body as it arrives, but for its last bytes, which it returns: with a Content-Length they
        are the chunk that completes it, otherwise the end of the chunked coding is. The upstream's body is read
        to its end either way, so that its connection goes back to the pool."""
        sent, last = 0, b""
        async for chunk in response.aiter_raw():
            if capture is not None:
                capture.feed(chunk, time.monotonic())
            sent += len(chunk)
            if content_length is not None and sent >= content_length:
                last = chunk
                continue
            try:
                await out.body(chunk)
            except OSError:  # the client left: not the upstream's failure
                out.gone = True
                return b""
        return last

    def _record(
        self,
        session: Session,
        stub: Stub,
        proxy: Proxy,
        reply: Reply,
        context: Context,
        capture: _Capture,
        record: ProxyRecord,
        end: End,
        broke_off: str,
    ) -> ProxyRecord:
        capture.finish(time.monotonic())
        why = ""
        aborted = bool(broke_off) and capture.sse and bool(capture.events)
        if capture.too_large:
            why = f"the body exceeded the {MAX_RECORDED_BODY // (1024 * 1024)} MiB a recording keeps"
        elif broke_off and not aborted:
            why = broke_off
        elif end is not End.COMPLETE and not aborted:
            why = "the answer did not reach its end: " + (reply.error or end.value)
        elif self.recorder is None:
            why = "this daemon does not record"
        if why:
            return ProxyRecord(record.url, record.latency, not_recorded=why)
        recording = Recording(
            request=context.request,
            status=reply.status,
            headers=tuple((n, v) for n, v in reply.headers),
            body=bytes(capture.body),
            events=tuple(capture.events) if capture.sse else None,
            aborted=aborted,
            url=record.url,
        )
        assert self.recorder is not None
        name, why = self.recorder(session, stub, proxy, recording)
        return ProxyRecord(record.url, record.latency, recorded_stub=name, not_recorded=why)


async def _break_off(out: Out) -> End:
    """Ends the client's response the way the upstream ended ours: the connection goes, mid-body."""
    with contextlib.suppress(NoRawConnection, OSError):
        await out.connection().reset()
    return End.ABORTED
