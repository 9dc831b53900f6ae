"""`MockHttpServer`: the register/get_requests API of home-grown mock HTTP servers, backed by a session.

Suites written against a thread-based mock server fixture keep their tests unchanged and gain
isolation (one session per test, so xdist workers never see each other's stubs or requests).

Example::

    def test_fetches_user(mock_http_server):
        mock_http_server.register("GET", "/users/1", json={"id": 1})
        assert httpx.get(f"{mock_http_server.url}/users/1").json() == {"id": 1}
        assert mock_http_server.request_count("GET", "/users/1") == 1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simulatord.v1 import stub_pb2
from simulatord_client.builders import MISSING, response
from simulatord_client.client import Session
from simulatord_client.exchanges import Exchange
from simulatord_client.stub_refs import StubRef

# The keys a sequence entry may use, mapped to `response()` keywords.
_ENTRY_KEYS = {
    "status": "status",
    "json": "json",
    "text": "text",
    "body": "body",
    "headers": "headers",
    "delay_seconds": "delay",
    "delay": "delay",
}


def _response(
    status: int,
    json: Any,
    text: str | None,
    body: bytes | str | None,
    headers: Mapping[str, str] | None,
    delay_seconds: float,
) -> stub_pb2.Response:
    options: dict[str, Any] = {}
    if json is not MISSING:
        options["json"] = json
    if text is not None:
        options["text"] = text
    if body is not None:
        options["body"] = body
    if headers:
        options["headers"] = dict(headers)
    if delay_seconds:
        options["delay"] = delay_seconds
    return response(status, **options)


class MockHttpServer:
    """A mock HTTP server API over an isolated simulatord session (`.session` for everything else).

    Registering the same method and path again overrides the earlier answer (newest stub wins).
    Requests nothing was registered for get 404 and show up in `get_requests()`.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: `f"{server.url}/path"`."""
        return self.session.url

    def register(
        self,
        method: str,
        path: str,
        json: Any = MISSING,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay_seconds: float = 0.0,
        body: bytes | str | None = None,
        text: str | None = None,
    ) -> StubRef:
        """Answer `method path` (exact path; the query string is ignored) with one response, every time."""
        answer = _response(status, json, text, body, headers, delay_seconds)
        return self.session.add(self._stub(method, path, [answer]))[0]

    def register_sequence(
        self, method: str, path: str, responses: Sequence[Mapping[str, Any]], *, cycle: bool = False
    ) -> StubRef:
        """Answer successive requests with successive entries (`{"status": 503}`, `{"json": {...}}`,
        keys: status, json, text, body, headers, delay_seconds); the last repeats unless `cycle`."""
        answers = []
        for i, entry in enumerate(responses):
            unknown = set(entry) - set(_ENTRY_KEYS)
            if unknown:
                raise TypeError(f"responses[{i}] has unknown key(s) {sorted(unknown)}; use {sorted(_ENTRY_KEYS)}")
            options = {_ENTRY_KEYS[key]: value for key, value in entry.items()}
            status = options.pop("status", 200)
            answers.append(response(status, **options))
        message = self._stub(method, path, answers)
        if cycle:
            message.after_last = stub_pb2.SEQUENCE_END_CYCLE
        return self.session.add(message)[0]

    @staticmethod
    def _stub(method: str, path: str, answers: list[stub_pb2.Response]) -> stub_pb2.Stub:
        return stub_pb2.Stub(
            request=stub_pb2.RequestMatcher(method=method.upper(), path=stub_pb2.PathMatcher(exact=path)),
            responses=answers,
        )

    def get_requests(self) -> list[Exchange]:
        """Every request received, oldest first, as Exchanges (`.method`, `.path`, `.headers`, `.query`, `.body`,
        `.json()`)."""
        return self.session.exchanges()

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests were received, optionally only with this method and/or exact path."""
        return self.session.count(method=method, path=path)

    def reset(self) -> None:
        """Forgets every registration and every recorded request."""
        self.session.reset()

    def clear_requests(self) -> None:
        """Forgets recorded requests, keeping registrations."""
        self.session.reset(stubs=False, state=False)
