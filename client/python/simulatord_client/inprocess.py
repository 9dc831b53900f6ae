"""A `grpc.Channel` to a daemon running on a thread of this process (`simulatord.embedded.ThreadDaemon`).

The client's calls keep their shape (generated stubs, serializers, metadata, deadlines, `grpc.RpcError` with
code, details and the rich status in the trailing metadata); what goes away is the loopback round trip: each
call hands its serialized request to the daemon's own method handler and waits for the serialized answer.

Example::

    from simulatord.embedded import ThreadDaemon
    with ThreadDaemon.from_args() as daemon, Simulator(daemon.grpc_address, channel=InProcessChannel(daemon)) as sim:
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from simulatord.embedded import CallFailed, Stream, ThreadDaemon

Serializer = Callable[[Any], bytes] | None
Metadata = Sequence[tuple[str, str | bytes]] | None


class InProcessRpcError(grpc.RpcError):
    """A failed in-process call, with what `grpc.RpcError`s of real calls offer: code, details, trailers."""

    def __init__(self, failure: CallFailed) -> None:
        super().__init__(str(failure))
        self._failure = failure

    def code(self) -> grpc.StatusCode:
        return self._failure.code

    def details(self) -> str:
        return self._failure.details

    def trailing_metadata(self) -> Any:  # the rich status (grpc-status-details-bin), as real calls carry it
        return self._failure.trailing_metadata

    def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return ()


def _bytes(serializer: Serializer, message: Any) -> bytes:
    return serializer(message) if serializer is not None else message


def _message(deserializer: Serializer, data: bytes) -> Any:
    return deserializer(data) if deserializer is not None else data


class _UnaryUnary:
    def __init__(self, daemon: ThreadDaemon, path: str, serializer: Serializer, deserializer: Serializer) -> None:
        self._daemon, self._path = daemon, path
        self._serializer, self._deserializer = serializer, deserializer

    def __call__(
        self, request: Any, timeout: float | None = None, metadata: Metadata = None, **_: Any
    ) -> Any:  # credentials, wait_for_ready, compression: nothing to do in process
        from simulatord.embedded import CallFailed

        try:
            reply = self._daemon.unary(self._path, _bytes(self._serializer, request), metadata or (), timeout)
        except CallFailed as failure:
            raise InProcessRpcError(failure) from None
        return _message(self._deserializer, reply)


class _Responses(Iterator[Any]):
    """What a server-streaming call returns: an iterator of responses that can be cancelled."""

    def __init__(self, stream: Stream, deserializer: Serializer) -> None:
        self._stream, self._deserializer = stream, deserializer

    def __next__(self) -> Any:
        from simulatord.embedded import CallFailed

        try:
            return _message(self._deserializer, next(self._stream))
        except CallFailed as failure:
            raise InProcessRpcError(failure) from None

    def cancel(self) -> bool:
        self._stream.cancel()
        return True


class _UnaryStream:
    def __init__(self, daemon: ThreadDaemon, path: str, serializer: Serializer, deserializer: Serializer) -> None:
        self._daemon, self._path = daemon, path
        self._serializer, self._deserializer = serializer, deserializer

    def __call__(self, request: Any, timeout: float | None = None, metadata: Metadata = None, **_: Any) -> _Responses:
        from simulatord.embedded import CallFailed

        try:
            stream = self._daemon.stream(self._path, _bytes(self._serializer, request), metadata or (), timeout)
        except CallFailed as failure:
            raise InProcessRpcError(failure) from None
        return _Responses(stream, self._deserializer)


class InProcessChannel(grpc.Channel):
    """Unary and server-streaming calls to a `ThreadDaemon` of this process (the control service has no other
    kind); pass it as `Simulator(daemon.grpc_address, channel=InProcessChannel(daemon))`."""

    def __init__(self, daemon: ThreadDaemon) -> None:
        self.daemon = daemon

    def unary_unary(  # type: ignore[override]
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Serializer = None,
        _registered_method: bool | None = False,
    ) -> _UnaryUnary:
        return _UnaryUnary(self.daemon, method, request_serializer, response_deserializer)

    def unary_stream(  # type: ignore[override]
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Serializer = None,
        _registered_method: bool | None = False,
    ) -> _UnaryStream:
        return _UnaryStream(self.daemon, method, request_serializer, response_deserializer)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the control service has no client-streaming methods")

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the control service has no bidirectional methods")

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False) -> None:
        callback(grpc.ChannelConnectivity.READY)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        pass

    def close(self) -> None:
        pass  # the daemon belongs to whoever started it

    def __enter__(self) -> InProcessChannel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
