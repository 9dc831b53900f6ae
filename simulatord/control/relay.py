"""Control calls for a session another replica owns, relayed to it as they came: same request, same token, its
answer or its error (with the error's details) passed back unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc
from google.protobuf import message_factory

from simulatord.errors import SimulatorError
from simulatord.names import SessionKey, parse_child, parse_session
from simulatord.v1 import simulator_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["SimulatorService"]
# Set on relayed calls: the replica that gets one answers it itself, so a call is relayed at most once.
RELAYED = "x-simulatord-relayed"
# Per-connection and transport metadata gRPC sets itself; everything else (the token) travels on.
_NOT_RELAYED = frozenset({"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-timeout"})


class Placement(Protocol):
    """Where sessions live when replicas share them (stores.redis_store.RedisStore)."""

    async def locate(self, key: SessionKey) -> str | None:
        """The gRPC address of the live replica that owns `key`; None when it is this one (taking over a session
        whose owner died) or when no replica has it."""

    async def reserve(self, key: SessionKey) -> None:
        """Takes a new session's name and quota slot across every replica; AlreadyExists or ResourceExhausted."""

    def release(self, key: SessionKey) -> None:
        """Gives back what `reserve` took, for a session that was not made after all."""

    async def peers(self) -> list[str]:
        """The gRPC addresses of the other live replicas."""


def session_of(request: Any) -> SessionKey | None:
    """The session a request addresses (in `parent`, `name` or `stub.name`), or None for tenant-level calls and
    names that do not parse (the method itself then says what is wrong with them)."""
    fields = request.DESCRIPTOR.fields_by_name
    if "parent" in fields:
        name = request.parent
    elif "name" in fields:
        name = request.name
    elif "stub" in fields:
        name = request.stub.name
    else:
        return None
    try:
        if name.count("/") == 3:
            return parse_session(name)
        if name.count("/") == 5:
            return parse_child(name, name.split("/")[4])[0]
    except SimulatorError:
        return None
    return None


class RelayedError(Exception):
    """The owner's error for a relayed call, to be passed back as it is (code, message, details)."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        super().__init__(error.details())
        self.code = error.code()
        self.details = error.details() or ""
        self.trailing_metadata = tuple(error.trailing_metadata() or ())  # abort() takes a tuple only


def relayed(metadata: Any) -> bool:
    """Whether a call's metadata says another replica relayed it here."""
    return any(k == RELAYED for k, _ in metadata or ())


class ControlRelay:
    """Sends control calls on to other replicas over one channel per replica."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._types = {m.name: message_factory.GetMessageClass(m.output_type) for m in SERVICE.methods_by_name.values()}

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            # A replica that is gone or stalled fails a relayed call within about 2 s (gRPC's default connect
            # deadline is 20 s), so that callers retry while its lease runs out rather than hang.
            options = [("grpc.min_reconnect_backoff_ms", 2000), ("grpc.max_reconnect_backoff_ms", 2000)]
            channel = self._channels[address] = grpc.aio.insecure_channel(address, options=options)
        return channel

    def _call_metadata(self, context: grpc.aio.ServicerContext[Any, Any]) -> list[tuple[str, Any]]:
        kept = [(k, v) for k, v in context.invocation_metadata() or () if k not in _NOT_RELAYED and k != RELAYED]
        return [*kept, (RELAYED, "1")]

    def _timeout(self, context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
        remaining = context.time_remaining()
        return remaining if remaining is not None and remaining < 1e9 else None

    async def unary(self, address: str, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = self._channel(address).unary_unary(
            f"/{SERVICE.full_name}/{method}",
            request_serializer=_serialize,
            response_deserializer=self._types[method].FromString,
        )
        try:
            return await call(request, metadata=self._call_metadata(context), timeout=self._timeout(context))
        except grpc.aio.AioRpcError as exc:
            raise RelayedError(exc) from None

    async def stream(
        self, address: str, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        call = self._channel(address).unary_stream(
            f"/{SERVICE.full_name}/{method}",
            request_serializer=_serialize,
            response_deserializer=self._types[method].FromString,
        )
        responses = call(request, metadata=self._call_metadata(context), timeout=self._timeout(context))
        try:
            async for item in responses:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise RelayedError(exc) from None
        finally:
            responses.cancel()

    async def all_sessions(
        self, address: str, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> list[Any]:
        """Every session a ListSessions request selects on one replica (that replica's own only), all pages."""
        found: list[Any] = []
        ask = pb.ListSessionsRequest(parent=request.parent, label_selector=request.label_selector, page_size=1000)
        while True:
            page = await self.unary(address, "ListSessions", ask, context)
            found += page.sessions
            if not page.next_page_token:
                return found
            ask.page_token = page.next_page_token

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
