"""The gRPC SimulatorService: parses names, converts messages and calls the domain; nothing more."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from simulatord.control import convert
from simulatord.control.errors import internal_status, to_status
from simulatord.errors import NotFound, SimulatorError, SpecErrors, invalid
from simulatord.names import SessionKey, new_id, parse_child, parse_session, parse_tenant
from simulatord.sessions import websockets
from simulatord.sessions.service import MAX_WAIT_SECONDS, Simulator
from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Unary = Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]
Streaming = Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]]

_RESET = {
    pb.RESET_TARGET_STUBS: "stubs",
    pb.RESET_TARGET_JOURNAL: "journal",
    pb.RESET_TARGET_STATE: "state",
}
DEFAULT_WAIT_SECONDS = 5.0


def unary(method: Unary[Req, Resp]) -> Unary[Req, Resp]:
    """Turns domain errors into rich statuses, so methods are written for the happy path."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
        try:
            return await method(self, request, context)
        except SimulatorError as exc:
            await context.abort_with_status(to_status(exc))
        except Exception as exc:  # the client gets INTERNAL, the log gets the traceback
            await context.abort_with_status(internal_status(exc))
        raise AssertionError("unreachable")

    return wrapper


def streaming(method: Streaming[Req, Resp]) -> Streaming[Req, Resp]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> AsyncIterator[Resp]:
        try:
            async for item in method(self, request, context):
                yield item
        except SimulatorError as exc:
            await context.abort_with_status(to_status(exc))
        except Exception as exc:
            await context.abort_with_status(internal_status(exc))

    return wrapper


class SimulatorServicer(pb_grpc.SimulatorServiceServicer):
    def __init__(self, simulator: Simulator, templates: dict[str, pb.CreateSessionRequest] | None = None) -> None:
        self.sim = simulator
        self.templates = templates or {}

    def _session(self, value: Any) -> session_pb2.Session:
        return convert.session_to_proto(value, self.sim.addressing)

    def _stubs(
        self, key: SessionKey, items: list[tuple[stub_pb2.Stub, str, str, str]], errors: SpecErrors
    ) -> list[Any]:
        now = self.sim.clock()
        return [
            convert.stub(msg, key, stub_id, where, id_where, errors, now) for msg, stub_id, where, id_where in items
        ]

    # --- sessions --------------------------------------------------------------------------------

    @unary
    async def CreateSession(self, request: pb.CreateSessionRequest, context: Any) -> pb.CreateSessionResponse:
        tenant = parse_tenant(request.parent)
        errors = SpecErrors()
        convert.check_id(request.session_id, "session_id", errors)
        template = None
        if request.template:
            template = self.templates.get(request.template)
            if template is None:
                known = ", ".join(sorted(self.templates)) or "none loaded"
                raise NotFound(
                    f"template {request.template!r} not found (known: {known})",
                    "TEMPLATE_NOT_FOUND",
                    {"template": request.template},
                )
        settings = session_pb2.Session()
        if template is not None:
            settings.CopyFrom(template.session)
        settings.MergeFrom(request.session)
        key = SessionKey(tenant, request.session_id or new_id("s"))
        convert.check_labels(settings.labels, "session.labels", errors)
        ttl = convert.ttl_seconds(settings.ttl, "session.ttl", errors)
        limits = convert.journal_limits(settings.journal_limits, self.sim.limits, "session.journal_limits", errors)
        if settings.unmatched_status and not 100 <= settings.unmatched_status <= 599:
            errors.add("session.unmatched_status", "must be 0 or between 100 and 599")
        items = [(s, "", f"template.stubs[{i}]", "") for i, s in enumerate(template.stubs)] if template else []
        items += [(s, "", f"stubs[{i}]", "") for i, s in enumerate(request.stubs)]
        stubs = self._stubs(key, items, errors)
        only_stubs = all(v.field.startswith(("stubs[", "template.")) for v in errors.violations)
        errors.raise_if_any(reason="INVALID_STUB" if only_stubs else "INVALID_ARGUMENT")
        session = self.sim.create_session(key, dict(settings.labels), ttl, limits, settings.unmatched_status, stubs)
        return pb.CreateSessionResponse(session=self._session(session), stubs=[convert.stub_to_proto(s) for s in stubs])

    @unary
    async def GetSession(self, request: pb.GetSessionRequest, context: Any) -> pb.GetSessionResponse:
        return pb.GetSessionResponse(session=self._session(self.sim.session(parse_session(request.name))))

    @unary
    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> pb.ListSessionsResponse:
        tenant = parse_tenant(request.parent, allow_wildcard=True)
        sessions, token = self.sim.list_sessions(tenant, request.page_size, request.page_token, request.label_selector)
        return pb.ListSessionsResponse(sessions=[self._session(s) for s in sessions], next_page_token=token)

    @unary
    async def DeleteSession(self, request: pb.DeleteSessionRequest, context: Any) -> pb.DeleteSessionResponse:
        self.sim.delete_session(parse_session(request.name), request.allow_missing)
        return pb.DeleteSessionResponse()

    @unary
    async def ResetSession(self, request: pb.ResetSessionRequest, context: Any) -> pb.ResetSessionResponse:
        key = parse_session(request.name)
        targets = set()
        for i, target in enumerate(request.targets):
            if target not in _RESET:
                raise invalid(f"targets[{i}]", f"unknown ResetTarget value {target}")
            targets.add(_RESET[target])
        if not targets:
            targets = set(_RESET.values())
        session = self.sim.session(key)
        session.reset("stubs" in targets, "journal" in targets, "state" in targets)
        return pb.ResetSessionResponse(session=self._session(session))

    @unary
    async def RefreshSession(self, request: pb.RefreshSessionRequest, context: Any) -> pb.RefreshSessionResponse:
        key = parse_session(request.name)
        errors = SpecErrors()
        ttl = convert.ttl_seconds(request.ttl, "ttl", errors) if request.HasField("ttl") else None
        errors.raise_if_any()
        return pb.RefreshSessionResponse(session=self._session(self.sim.refresh_session(key, ttl)))

    @unary
    async def SetSessionState(self, request: pb.SetSessionStateRequest, context: Any) -> pb.SetSessionStateResponse:
        key = parse_session(request.name)
        errors = SpecErrors()
        convert.check_scenario(request.scenario, "scenario", errors)
        errors.raise_if_any()
        session = self.sim.session(key)
        session.set_state(request.scenario, request.state)
        return pb.SetSessionStateResponse(session=self._session(session))

    @unary
    async def VerifySession(self, request: pb.VerifySessionRequest, context: Any) -> pb.VerifySessionResponse:
        key = parse_session(request.name)
        report = self.sim.verify(key)

        def reports(stubs: tuple[Any, ...]) -> list[exchange_pb2.StubReport]:
            return [
                exchange_pb2.StubReport(
                    stub=s.name,
                    description=s.description,
                    match_count=s.match_count,
                    expected=s.expectation_text(),
                )
                for s in stubs
            ]

        return pb.VerifySessionResponse(
            ok=report.ok,
            unused_stubs=reports(report.unused_stubs),
            unmet_expectations=reports(report.unmet_expectations),
            unmatched_exchanges=[convert.exchange_to_proto(e, key) for e in report.unmatched],
            summary=report.summary(),
        )

    # --- stubs -----------------------------------------------------------------------------------

    @unary
    async def CreateStub(self, request: pb.CreateStubRequest, context: Any) -> pb.CreateStubResponse:
        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        stubs = self._stubs(key, [(request.stub, request.stub_id, "stub", "stub_id")], errors)
        errors.raise_if_any(reason="INVALID_STUB")
        self.sim.session(key).add_stubs(stubs)
        return pb.CreateStubResponse(stub=convert.stub_to_proto(stubs[0]))

    @unary
    async def BatchCreateStubs(self, request: pb.BatchCreateStubsRequest, context: Any) -> pb.BatchCreateStubsResponse:
        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        for i, item in enumerate(request.requests):
            if item.parent and item.parent != request.parent:
                errors.add(f"requests[{i}].parent", "must be empty or equal to the batch's parent")
        items = [
            (item.stub, item.stub_id, f"requests[{i}].stub", f"requests[{i}].stub_id")
            for i, item in enumerate(request.requests)
        ]
        stubs = self._stubs(key, items, errors)
        errors.raise_if_any(reason="INVALID_STUB")
        self.sim.session(key).add_stubs(stubs)
        return pb.BatchCreateStubsResponse(stubs=[convert.stub_to_proto(s) for s in stubs])

    @unary
    async def GetStub(self, request: pb.GetStubRequest, context: Any) -> pb.GetStubResponse:
        key, stub_id = parse_child(request.name, "stubs")
        return pb.GetStubResponse(stub=convert.stub_to_proto(self.sim.session(key).get_stub(stub_id)))

    @unary
    async def ListStubs(self, request: pb.ListStubsRequest, context: Any) -> pb.ListStubsResponse:
        key = parse_session(request.parent, "parent")
        stubs, token = self.sim.list_stubs(key, request.page_size, request.page_token)
        return pb.ListStubsResponse(stubs=[convert.stub_to_proto(s) for s in stubs], next_page_token=token)

    @unary
    async def ReplaceStub(self, request: pb.ReplaceStubRequest, context: Any) -> pb.ReplaceStubResponse:
        key, stub_id = parse_child(request.stub.name, "stubs", "stub.name")
        session = self.sim.session(key)
        session.get_stub(stub_id)
        errors = SpecErrors()
        stubs = self._stubs(key, [(request.stub, stub_id, "stub", "stub.name")], errors)
        errors.raise_if_any(reason="INVALID_STUB")
        session.replace_stub(stubs[0])
        return pb.ReplaceStubResponse(stub=convert.stub_to_proto(stubs[0]))

    @unary
    async def DeleteStub(self, request: pb.DeleteStubRequest, context: Any) -> pb.DeleteStubResponse:
        key, stub_id = parse_child(request.name, "stubs")
        self.sim.session(key).delete_stub(stub_id)
        return pb.DeleteStubResponse()

    # --- exchanges -------------------------------------------------------------------------------

    @unary
    async def GetExchange(self, request: pb.GetExchangeRequest, context: Any) -> pb.GetExchangeResponse:
        key, raw = parse_child(request.name, "exchanges")
        if not raw.isdigit() or int(raw) < 1:
            raise invalid("name", f"exchange id must be a sequence number >= 1, got {raw!r}")
        return pb.GetExchangeResponse(exchange=convert.exchange_to_proto(self.sim.get_exchange(key, int(raw)), key))

    def _filter(self, request: Any) -> Any:
        errors = SpecErrors()
        filt = convert.exchange_filter(request.filter, "filter", errors)
        errors.raise_if_any()
        return filt

    @unary
    async def ListExchanges(self, request: pb.ListExchangesRequest, context: Any) -> pb.ListExchangesResponse:
        key = parse_session(request.parent, "parent")
        filt = self._filter(request)
        page, token, evicted = self.sim.list_exchanges(key, filt, request.page_size, request.page_token)
        return pb.ListExchangesResponse(
            exchanges=[convert.exchange_to_proto(e, key) for e in page],
            next_page_token=token,
            evicted_count=evicted,
        )

    @unary
    async def CountExchanges(self, request: pb.CountExchangesRequest, context: Any) -> pb.CountExchangesResponse:
        key = parse_session(request.parent, "parent")
        count, evicted = self.sim.count_exchanges(key, self._filter(request))
        return pb.CountExchangesResponse(count=count, evicted_count=evicted)

    @unary
    async def WaitForExchanges(self, request: pb.WaitForExchangesRequest, context: Any) -> pb.WaitForExchangesResponse:
        key = parse_session(request.parent, "parent")
        filt = self._filter(request)
        if request.count < 0:
            raise invalid("count", "must not be negative")
        timeout = convert.seconds(request.timeout) if request.HasField("timeout") else DEFAULT_WAIT_SECONDS
        if not 0 <= timeout <= MAX_WAIT_SECONDS:
            raise invalid("timeout", f"must be between 0 and {MAX_WAIT_SECONDS:.0f} seconds")
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, max(0.0, remaining - 0.05))
        result = await self.sim.wait_for_exchanges(key, filt, request.count or 1, timeout)
        return pb.WaitForExchangesResponse(
            satisfied=result.satisfied,
            count=len(result.matching),
            exchanges=[convert.exchange_to_proto(e, key) for e in result.matching],
            other_exchanges=[convert.exchange_to_proto(e, key) for e in result.others],
        )

    @streaming
    async def WatchExchanges(
        self, request: pb.WatchExchangesRequest, context: Any
    ) -> AsyncIterator[pb.WatchExchangesResponse]:
        key = parse_session(request.parent, "parent")
        filt = self._filter(request)
        if request.start_sequence < 0:
            raise invalid("start_sequence", "must not be negative")
        async for item in self.sim.watch_exchanges(key, filt, request.start_sequence):
            if isinstance(item, int):
                yield pb.WatchExchangesResponse(evicted_count=item)
            else:
                yield pb.WatchExchangesResponse(exchange=convert.exchange_to_proto(item, key))

    # --- WebSockets ------------------------------------------------------------------------------

    @unary
    async def SendWebSocketMessage(
        self, request: pb.SendWebSocketMessageRequest, context: Any
    ) -> pb.SendWebSocketMessageResponse:
        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        message = convert.out_message(request.message, "message", errors) if request.HasField("message") else None
        close = convert.close_spec(request.close, "close", errors) if request.HasField("close") else None
        if message is None and close is None:
            errors.add("message", "set message, close or both")
        if request.connection < 0:
            errors.add("connection", "must not be negative")
        errors.raise_if_any()
        ids = websockets.push(self.sim.session(key), request.stub, request.connection, websockets.Push(message, close))
        return pb.SendWebSocketMessageResponse(connections=ids)
