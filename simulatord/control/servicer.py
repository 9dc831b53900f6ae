"""The gRPC SimulatorService: checks tokens (with --auth), parses names, converts messages and calls the domain's
Simulator; nothing more."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import grpc

from simulatord.control.auth import Credentials
from simulatord.control.convert import exchanges, sessions, stubs, websockets
from simulatord.control.convert.scalars import seconds
from simulatord.control.errors import internal_status, to_status
from simulatord.control.relay import ControlRelay, RelayedError, relayed, session_of
from simulatord.control.templates import merge
from simulatord.errors import FailedPrecondition, SimulatorError, SpecErrors, invalid
from simulatord.names import (
    WILDCARD,
    SessionKey,
    new_session_id,
    parse_child,
    parse_exchange,
    parse_session,
    parse_tenant,
    tenant_of,
)
from simulatord.serving.metrics import Metrics
from simulatord.serving.outbound import Outbound
from simulatord.sessions import connections
from simulatord.sessions.journal import ExchangeFilter
from simulatord.sessions.service import Simulator, page_of
from simulatord.sessions.settings import ttl
from simulatord.sessions.stubs import Stub, check_id, check_scenario
from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord.webhooks.targets import DEFAULT as DEFAULT_TARGETS
from simulatord.webhooks.targets import Targets

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Ctx = grpc.aio.ServicerContext
Unary = Callable[[Any, Req, Ctx[Req, Resp]], Awaitable[Resp]]
Streaming = Callable[[Any, Req, Ctx[Req, Resp]], AsyncIterator[Resp]]

_RESET = {
    pb.RESET_TARGET_STUBS: "stubs",
    pb.RESET_TARGET_JOURNAL: "journal",
    pb.RESET_TARGET_STATE: "state",
}
DEFAULT_WAIT_SECONDS = 5.0
MAX_WEBHOOKS_PER_CALL = 100
DEFAULT_DELIVERY_WAIT = 30.0
MAX_DELIVERY_WAIT = 600.0


def request_tenant(request: Any) -> str:
    """The tenant a SimulatorService request names, in its `parent`, its `name` or (ReplaceStub) its `stub.name`:
    `tenants/{tenant}` or a resource below it; `-` when ListSessions lists across tenants."""
    fields = request.DESCRIPTOR.fields_by_name
    if "parent" in fields:
        return tenant_of(request.parent, "parent", allow_wildcard=True)
    if "name" in fields:
        return tenant_of(request.name, "name", allow_wildcard=True)
    if isinstance(request, pb.ReplaceStubRequest):
        return tenant_of(request.stub.name, "stub.name", allow_wildcard=True)
    # An RPC added without a resource must say whose it is before anyone may call it: INTERNAL until then.
    raise TypeError(f"{type(request).__name__} names no tenant")


def unary(method: Unary[Req, Resp]) -> Unary[Req, Resp]:
    """Checks the call's token (with --auth) and turns domain errors into rich statuses, so methods are written
    for the happy path."""

    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: SimulatorServicer, request: Req, context: Ctx[Req, Resp]) -> Resp:
        try:
            self.authorize(request, context)
            owner = await self.owner_elsewhere(request, context)
            if owner is not None and self.relay is not None:
                response = cast(Resp, await self.relay.unary(owner, name, request, context))
            else:
                response = await method(self, request, context)
                await self.sim.store.flush()  # a store outside the process has what the call changed before it answers
        except RelayedError as exc:  # the owner's answer, passed on as it is
            self.metrics.rpcs[(name, exc.code.name)] += 1
            await context.abort(exc.code, exc.details, exc.trailing_metadata)
        except SimulatorError as exc:
            status = to_status(exc)
            self.metrics.rpcs[(name, status.code.name)] += 1
            await context.abort_with_status(status)
        except Exception as exc:  # the client gets INTERNAL, the log gets the traceback
            self.metrics.rpcs[(name, "INTERNAL")] += 1
            await context.abort_with_status(internal_status(exc))
        else:
            self.metrics.rpcs[(name, "OK")] += 1
            return response
        raise AssertionError("unreachable")

    return wrapper


def streaming(method: Streaming[Req, Resp]) -> Streaming[Req, Resp]:
    """`unary` for server-streaming methods: the token is checked before the first message."""

    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: SimulatorServicer, request: Req, context: Ctx[Req, Resp]) -> AsyncIterator[Resp]:
        metrics = self.metrics
        code = "OK"
        metrics.watch_streams += 1
        try:
            self.authorize(request, context)
            owner = await self.owner_elsewhere(request, context)
            if owner is not None and self.relay is not None:
                async for item in self.relay.stream(owner, name, request, context):
                    yield item
            else:
                async for item in method(self, request, context):
                    yield item
        except RelayedError as exc:
            code = exc.code.name
            await context.abort(exc.code, exc.details, exc.trailing_metadata)
        except SimulatorError as exc:
            status = to_status(exc)
            code = status.code.name
            await context.abort_with_status(status)
        except Exception as exc:
            code = "INTERNAL"
            await context.abort_with_status(internal_status(exc))
        finally:  # a stream the client cancels ends here too, counted as what it was until then
            metrics.watch_streams -= 1
            metrics.rpcs[(name, code)] += 1

    return wrapper


def _filter(msg: exchange_pb2.ExchangeFilter) -> ExchangeFilter:
    errors = SpecErrors()
    filt = exchanges.exchange_filter(msg, "filter", errors)
    errors.raise_if_any()
    return filt


class SimulatorServicer(pb_grpc.SimulatorServiceServicer):
    def __init__(
        self,
        simulator: Simulator,
        templates: Mapping[str, pb.CreateSessionRequest] | None = None,
        credentials: Credentials | None = None,
        outbound: Outbound | None = None,
        metrics: Metrics | None = None,
        relay: ControlRelay | None = None,
    ) -> None:
        self.sim = simulator
        self.relay = relay  # set when replicas share sessions: calls for another's session go to it
        self.metrics = metrics or Metrics()
        self.outbound = outbound or Outbound(Targets.parse(DEFAULT_TARGETS), clock=simulator.clock)
        self.templates = dict(templates or {})
        self.credentials = credentials  # None: no --auth, every call may use every tenant

    def authorize(self, request: Any, context: Ctx[Any, Any]) -> None:
        """With --auth: the call's token is known and may use the tenant its request names. Run by `unary` and
        `streaming` before any method, so no RPC can forget it."""
        if self.credentials is not None:
            # The token first: a caller without one learns nothing, not even whether its request is well formed.
            grant = self.credentials.identify(context.invocation_metadata() or ())
            grant.check(request_tenant(request))

    async def owner_elsewhere(self, request: Any, context: Ctx[Any, Any]) -> str | None:
        """The gRPC address of the replica that owns the session this call addresses, when that is another one."""
        if self.relay is None or relayed(context.invocation_metadata()):
            return None
        key = session_of(request)
        if key is None or self.sim.store.find(key) is not None:
            return None
        return await self.relay.placement.locate(key)

    def _visible_tenants(self, context: Ctx[Any, Any]) -> frozenset[str] | None:
        """The tenants a listing of `tenants/-` may show this caller; None: every tenant."""
        if self.credentials is None:
            return None
        return self.credentials.identify(context.invocation_metadata() or ()).visible

    def _session(self, key: SessionKey) -> session_pb2.Session:
        return sessions.session_to_proto(self.sim.session(key), self.sim.addressing)

    def _stubs(
        self, key: SessionKey, items: list[tuple[stub_pb2.Stub, str, str, str]], errors: SpecErrors
    ) -> list[Stub]:
        now = self.sim.clock()
        return [
            stubs.stub(msg, key.name, stub_id, where, id_where, errors, now) for msg, stub_id, where, id_where in items
        ]

    # --- sessions --------------------------------------------------------------------------------

    @unary
    async def CreateSession(
        self, request: pb.CreateSessionRequest, context: Ctx[pb.CreateSessionRequest, pb.CreateSessionResponse]
    ) -> pb.CreateSessionResponse:
        tenant = parse_tenant(request.parent)
        errors = SpecErrors()
        check_id(request.session_id, "session_id", errors)
        merged = merge(request, self.templates)
        key = SessionKey(tenant, request.session_id or new_session_id())
        settings = sessions.settings(merged.settings, "session", errors)
        built = self._stubs(key, [(msg, "", where, "") for msg, where in merged.stubs], errors)
        only_stubs = all(v.field.startswith(("stubs[", "template.")) for v in errors.violations)
        errors.raise_if_any(reason="INVALID_STUB" if only_stubs else "INVALID_ARGUMENT")
        await self.outbound.check_upstreams(built)
        if self.relay is not None:
            await self.relay.placement.reserve(key)
        try:
            session = self.sim.create_session(key, settings, built)
        except SimulatorError:
            if self.relay is not None:
                self.relay.placement.release(key)
            raise
        return pb.CreateSessionResponse(
            session=sessions.session_to_proto(session, self.sim.addressing),
            stubs=[stubs.stub_to_proto(s) for s in built],
        )

    @unary
    async def ExportSession(
        self, request: pb.ExportSessionRequest, context: Ctx[pb.ExportSessionRequest, pb.ExportSessionResponse]
    ) -> pb.ExportSessionResponse:
        return pb.ExportSessionResponse(
            session=sessions.session_to_template(self.sim.session(parse_session(request.name)), request.remove_proxies)
        )

    @unary
    async def GetSession(
        self, request: pb.GetSessionRequest, context: Ctx[pb.GetSessionRequest, pb.GetSessionResponse]
    ) -> pb.GetSessionResponse:
        return pb.GetSessionResponse(session=self._session(parse_session(request.name)))

    @unary
    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Ctx[pb.ListSessionsRequest, pb.ListSessionsResponse]
    ) -> pb.ListSessionsResponse:
        tenant = parse_tenant(request.parent, allow_wildcard=True)
        within = self._visible_tenants(context) if tenant == WILDCARD else None
        if self.relay is None or relayed(context.invocation_metadata()):
            found, token = self.sim.list_sessions(
                tenant, request.page_size, request.page_token, request.label_selector, within=within
            )
            return pb.ListSessionsResponse(
                sessions=[sessions.session_to_proto(s, self.sim.addressing) for s in found], next_page_token=token
            )
        # Every replica holds its own sessions: the listing is theirs and ours, in one order, paged here.
        listed = [
            sessions.session_to_proto(s, self.sim.addressing)
            for s in self.sim.select_sessions(tenant, request.label_selector, within)
        ]
        for peer in await self.relay.placement.peers():
            listed += await self.relay.all_sessions(peer, request, context)
        listed.sort(key=lambda s: (s.create_time.seconds, s.create_time.nanos, s.name))
        page, token = page_of(
            listed, request.page_size, request.page_token, f"sessions:{tenant}:{request.label_selector}"
        )
        return pb.ListSessionsResponse(sessions=page, next_page_token=token)

    @unary
    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: Ctx[pb.DeleteSessionRequest, pb.DeleteSessionResponse]
    ) -> pb.DeleteSessionResponse:
        self.sim.delete_session(parse_session(request.name), request.allow_missing)
        return pb.DeleteSessionResponse()

    @unary
    async def ResetSession(
        self, request: pb.ResetSessionRequest, context: Ctx[pb.ResetSessionRequest, pb.ResetSessionResponse]
    ) -> pb.ResetSessionResponse:
        key = parse_session(request.name)
        targets = set()
        for i, target in enumerate(request.targets):
            if target not in _RESET:
                raise invalid(f"targets[{i}]", f"unknown ResetTarget value {target}")
            targets.add(_RESET[target])
        if not targets:
            targets = set(_RESET.values())
        session = self.sim.reset_session(key, "stubs" in targets, "journal" in targets, "state" in targets)
        return pb.ResetSessionResponse(session=sessions.session_to_proto(session, self.sim.addressing))

    @unary
    async def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: Ctx[pb.RefreshSessionRequest, pb.RefreshSessionResponse]
    ) -> pb.RefreshSessionResponse:
        key = parse_session(request.name)
        errors = SpecErrors()
        new_ttl = ttl(seconds(request.ttl), "ttl", errors) if request.HasField("ttl") else None
        errors.raise_if_any()
        session = self.sim.refresh_session(key, new_ttl)
        return pb.RefreshSessionResponse(session=sessions.session_to_proto(session, self.sim.addressing))

    @unary
    async def SetSessionState(
        self, request: pb.SetSessionStateRequest, context: Ctx[pb.SetSessionStateRequest, pb.SetSessionStateResponse]
    ) -> pb.SetSessionStateResponse:
        key = parse_session(request.name)
        errors = SpecErrors()
        check_scenario(request.scenario, "scenario", errors)
        errors.raise_if_any()
        session = self.sim.set_state(key, request.scenario, request.state)
        return pb.SetSessionStateResponse(session=sessions.session_to_proto(session, self.sim.addressing))

    @unary
    async def VerifySession(
        self, request: pb.VerifySessionRequest, context: Ctx[pb.VerifySessionRequest, pb.VerifySessionResponse]
    ) -> pb.VerifySessionResponse:
        key = parse_session(request.name)
        return sessions.verify_to_proto(self.sim.verify(key), key)

    # --- stubs -----------------------------------------------------------------------------------

    @unary
    async def CreateStub(
        self, request: pb.CreateStubRequest, context: Ctx[pb.CreateStubRequest, pb.CreateStubResponse]
    ) -> pb.CreateStubResponse:
        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        built = self._stubs(key, [(request.stub, request.stub_id, "stub", "stub_id")], errors)
        errors.raise_if_any(reason="INVALID_STUB")
        await self.outbound.check_upstreams(built)
        self.sim.create_stubs(key, built)
        return pb.CreateStubResponse(stub=stubs.stub_to_proto(built[0]))

    @unary
    async def BatchCreateStubs(
        self,
        request: pb.BatchCreateStubsRequest,
        context: Ctx[pb.BatchCreateStubsRequest, pb.BatchCreateStubsResponse],
    ) -> pb.BatchCreateStubsResponse:
        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        for i, item in enumerate(request.requests):
            if item.parent and item.parent != request.parent:
                errors.add(f"requests[{i}].parent", "must be empty or equal to the batch's parent")
        items = [
            (item.stub, item.stub_id, f"requests[{i}].stub", f"requests[{i}].stub_id")
            for i, item in enumerate(request.requests)
        ]
        built = self._stubs(key, items, errors)
        errors.raise_if_any(reason="INVALID_STUB")
        await self.outbound.check_upstreams(built)
        self.sim.create_stubs(key, built)
        return pb.BatchCreateStubsResponse(stubs=[stubs.stub_to_proto(s) for s in built])

    @unary
    async def ImportWireMockMappings(
        self,
        request: pb.ImportWireMockMappingsRequest,
        context: Ctx[pb.ImportWireMockMappingsRequest, pb.ImportWireMockMappingsResponse],
    ) -> pb.ImportWireMockMappingsResponse:
        from simulatord.control.convert import wiremock  # loaded by the first import, not at start-up

        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        mappings: list[tuple[str, Any]] = []
        for i, file in enumerate(request.mapping_files):
            try:
                mappings.append((file.path or f"mapping_files[{i}]", json.loads(file.content.decode("utf-8-sig"))))
            except ValueError as exc:  # UnicodeDecodeError too
                errors.add(f"mapping_files[{i}].content", f"is not JSON: {exc}")
        errors.raise_if_any()
        conversion = wiremock.convert(mappings, {file.path: file.content for file in request.body_files})
        gaps = [pb.WireMockGap(mapping=g.mapping, field=g.field, reason=g.reason) for g in conversion.unmapped]
        what = [f"{g.mapping}: {g.field}: {g.reason}" for g in gaps]
        made = await self._import(
            key, conversion.stubs, what, "WIREMOCK_NOT_CONVERTED", request.strict, request.validate_only
        )
        return pb.ImportWireMockMappingsResponse(stubs=made, unconverted=gaps)

    @unary
    async def ImportOpenApi(
        self, request: pb.ImportOpenApiRequest, context: Ctx[pb.ImportOpenApiRequest, pb.ImportOpenApiResponse]
    ) -> pb.ImportOpenApiResponse:
        from simulatord.control.convert import openapi  # loaded by the first import, not at start-up

        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        try:
            document = openapi.parse_document(bytes(request.document))
        except ValueError as exc:
            errors.add("document", f"is {exc}")
        else:
            if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
                errors.add("document", "is not an OpenAPI 3 document (it has no `openapi: 3.x`)")
        errors.raise_if_any()
        conversion = openapi.convert(document, base_path=request.base_path or None)
        gaps = [pb.OpenApiGap(operation=g.operation, field=g.field, reason=g.reason) for g in conversion.unmapped]
        what = [f"{g.operation}: {g.field}: {g.reason}" for g in gaps]
        made = await self._import(
            key, conversion.stubs, what, "OPENAPI_NOT_CONVERTED", request.strict, request.validate_only
        )
        return pb.ImportOpenApiResponse(stubs=made, unconverted=gaps)

    async def _import(
        self,
        key: SessionKey,
        converted: Sequence[stub_pb2.Stub],
        unconverted: Sequence[str],
        reason: str,
        strict: bool,
        validate_only: bool,
    ) -> list[stub_pb2.Stub]:
        """Creates the stubs an import converted (all or none, as BatchCreateStubs does), unless `strict` and
        something was not converted, or `validate_only`; returns them as created (or as they would be)."""
        if strict and unconverted:
            raise FailedPrecondition(
                f"{len(unconverted)} part(s) were not converted (strict): {'; '.join(unconverted[:5])}",
                reason,
                {"session": key.name, "unconverted": str(len(unconverted))},
            )
        errors = SpecErrors()
        items = [(stub, "", f"converted[{i}] ({stub.description})", "") for i, stub in enumerate(converted)]
        built = self._stubs(key, items, errors)
        errors.raise_if_any(reason="INVALID_STUB")
        await self.outbound.check_upstreams(built)
        if validate_only:
            self.sim.session(key)  # the session must exist all the same
            return [stubs.stub_to_template(s) for s in built]
        self.sim.create_stubs(key, built)
        return [stubs.stub_to_proto(s) for s in built]

    @unary
    async def GetStub(
        self, request: pb.GetStubRequest, context: Ctx[pb.GetStubRequest, pb.GetStubResponse]
    ) -> pb.GetStubResponse:
        key, stub_id = parse_child(request.name, "stubs")
        return pb.GetStubResponse(stub=stubs.stub_to_proto(self.sim.get_stub(key, stub_id)))

    @unary
    async def ListStubs(
        self, request: pb.ListStubsRequest, context: Ctx[pb.ListStubsRequest, pb.ListStubsResponse]
    ) -> pb.ListStubsResponse:
        key = parse_session(request.parent, "parent")
        page, token = self.sim.list_stubs(key, request.page_size, request.page_token)
        return pb.ListStubsResponse(stubs=[stubs.stub_to_proto(s) for s in page], next_page_token=token)

    @unary
    async def ReplaceStub(
        self, request: pb.ReplaceStubRequest, context: Ctx[pb.ReplaceStubRequest, pb.ReplaceStubResponse]
    ) -> pb.ReplaceStubResponse:
        key, stub_id = parse_child(request.stub.name, "stubs", "stub.name")
        self.sim.get_stub(key, stub_id)  # a missing stub is NOT_FOUND before its new definition is judged
        errors = SpecErrors()
        built = self._stubs(key, [(request.stub, stub_id, "stub", "stub.name")], errors)
        errors.raise_if_any(reason="INVALID_STUB")
        await self.outbound.check_upstreams(built)
        return pb.ReplaceStubResponse(stub=stubs.stub_to_proto(self.sim.replace_stub(key, built[0])))

    @unary
    async def DeleteStub(
        self, request: pb.DeleteStubRequest, context: Ctx[pb.DeleteStubRequest, pb.DeleteStubResponse]
    ) -> pb.DeleteStubResponse:
        key, stub_id = parse_child(request.name, "stubs")
        self.sim.delete_stub(key, stub_id)
        return pb.DeleteStubResponse()

    # --- exchanges -------------------------------------------------------------------------------

    @unary
    async def GetExchange(
        self, request: pb.GetExchangeRequest, context: Ctx[pb.GetExchangeRequest, pb.GetExchangeResponse]
    ) -> pb.GetExchangeResponse:
        key, sequence = parse_exchange(request.name)
        return pb.GetExchangeResponse(exchange=exchanges.exchange_to_proto(self.sim.get_exchange(key, sequence), key))

    @unary
    async def ListExchanges(
        self, request: pb.ListExchangesRequest, context: Ctx[pb.ListExchangesRequest, pb.ListExchangesResponse]
    ) -> pb.ListExchangesResponse:
        key = parse_session(request.parent, "parent")
        page, token, evicted = self.sim.list_exchanges(
            key, _filter(request.filter), request.page_size, request.page_token
        )
        return pb.ListExchangesResponse(
            exchanges=[exchanges.exchange_to_proto(e, key) for e in page],
            next_page_token=token,
            evicted_count=evicted,
        )

    @unary
    async def CountExchanges(
        self, request: pb.CountExchangesRequest, context: Ctx[pb.CountExchangesRequest, pb.CountExchangesResponse]
    ) -> pb.CountExchangesResponse:
        key = parse_session(request.parent, "parent")
        count, evicted = self.sim.count_exchanges(key, _filter(request.filter))
        return pb.CountExchangesResponse(count=count, evicted_count=evicted)

    @unary
    async def WaitForExchanges(
        self,
        request: pb.WaitForExchangesRequest,
        context: Ctx[pb.WaitForExchangesRequest, pb.WaitForExchangesResponse],
    ) -> pb.WaitForExchangesResponse:
        key = parse_session(request.parent, "parent")
        filt = _filter(request.filter)
        timeout = seconds(request.timeout) if request.HasField("timeout") else DEFAULT_WAIT_SECONDS
        result = await self.sim.wait_for_exchanges(key, filt, request.count, timeout, context.time_remaining())
        return pb.WaitForExchangesResponse(
            satisfied=result.satisfied,
            count=len(result.matching),
            exchanges=[exchanges.exchange_to_proto(e, key) for e in result.matching],
            other_exchanges=[exchanges.exchange_to_proto(e, key) for e in result.others],
        )

    @streaming
    async def WatchExchanges(
        self, request: pb.WatchExchangesRequest, context: Ctx[pb.WatchExchangesRequest, pb.WatchExchangesResponse]
    ) -> AsyncIterator[pb.WatchExchangesResponse]:
        key = parse_session(request.parent, "parent")
        filt = _filter(request.filter)
        async for item in self.sim.watch_exchanges(key, filt, request.start_sequence):
            if isinstance(item, int):
                yield pb.WatchExchangesResponse(evicted_count=item)
            else:
                yield pb.WatchExchangesResponse(exchange=exchanges.exchange_to_proto(item, key))

    # --- WebSockets ------------------------------------------------------------------------------

    @unary
    async def SendWebSocketMessage(
        self,
        request: pb.SendWebSocketMessageRequest,
        context: Ctx[pb.SendWebSocketMessageRequest, pb.SendWebSocketMessageResponse],
    ) -> pb.SendWebSocketMessageResponse:
        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        message = websockets.out_message(request.message, "message", errors) if request.HasField("message") else None
        close = websockets.close_spec(request.close, "close", errors) if request.HasField("close") else None
        push = connections.push(message, close, request.connection, errors)
        errors.raise_if_any()
        ids = self.sim.push(key, request.stub, request.connection, push)
        return pb.SendWebSocketMessageResponse(connections=ids)

    # --- webhooks --------------------------------------------------------------------------------

    @unary
    async def DeliverWebhooks(
        self,
        request: pb.DeliverWebhooksRequest,
        context: Ctx[pb.DeliverWebhooksRequest, pb.DeliverWebhooksResponse],
    ) -> pb.DeliverWebhooksResponse:
        from simulatord.control.convert import webhooks  # the webhook code loads with the first delivery

        key = parse_session(request.parent, "parent")
        errors = SpecErrors()
        if not 1 <= len(request.webhooks) <= MAX_WEBHOOKS_PER_CALL:
            errors.add("webhooks", f"must hold 1 to {MAX_WEBHOOKS_PER_CALL} webhooks, got {len(request.webhooks)}")
        specs = [webhooks.webhook(w, f"webhooks[{i}]", errors) for i, w in enumerate(request.webhooks)]
        if request.order not in (pb.DELIVERY_ORDER_UNSPECIFIED, pb.DELIVERY_ORDER_IN_ORDER, pb.DELIVERY_ORDER_REVERSED):
            errors.add("order", "unknown DeliveryOrder value")
        timeout = seconds(request.timeout) if request.HasField("timeout") else DEFAULT_DELIVERY_WAIT
        if not 0 < timeout <= MAX_DELIVERY_WAIT:
            errors.add("timeout", f"must be positive and at most {MAX_DELIVERY_WAIT:g} seconds")
        errors.raise_if_any()
        session = self.sim.session(key)
        for spec in specs:
            await self.outbound.check(spec)
        deliveries = self.outbound.start(session, specs, reverse=request.order == pb.DELIVERY_ORDER_REVERSED)
        if request.wait:
            waits = [asyncio.ensure_future(d.done.wait()) for d in deliveries]
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for task in pending:
                task.cancel()
        return pb.DeliverWebhooksResponse(deliveries=[webhooks.delivery_to_proto(d) for d in deliveries])
