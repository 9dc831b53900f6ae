"""Reading request bodies at the edge, as pure asyncio: the limit, the read timeout, unannounced bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from simulatord.http_front.edge import BodyTooLarge, BodyTooSlow, ClientGone, SlowBodies, read_body

Message = dict[str, Any]


def messages(*items: Message, then_wait: bool = False) -> Callable[[], Awaitable[Message]]:
    """An ASGI receive that hands out `items`, then (if asked) waits forever, as a silent client does."""
    queue = list(items)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then_wait:
            await asyncio.Event().wait()
        raise AssertionError("read past the end of the request")

    return receive


def chunk(data: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


def read(receive: Callable[[], Awaitable[Message]], limit: int = 100, timeout: float = 5.0, announced: bool = True):  # type: ignore[no-untyped-def]
    async def run() -> bytes:
        return await read_body(receive, limit, SlowBodies(timeout), announced)

    return asyncio.run(run())


@pytest.mark.parametrize("announced", [True, False])
def test_a_body_in_pieces_is_joined(announced: bool) -> None:
    assert read(messages(chunk(b"ab", True), chunk(b"", True), chunk(b"cd", False)), announced=announced) == b"abcd"


def test_a_request_without_a_body_is_read_in_one_message() -> None:
    assert read(messages(chunk(b"", False)), announced=False) == b""


@pytest.mark.parametrize("announced", [True, False])
def test_past_the_limit_the_size_so_far_is_reported(announced: bool) -> None:
    with pytest.raises(BodyTooLarge) as raised:
        read(messages(chunk(b"x" * 60, True), chunk(b"x" * 60, False)), limit=100, announced=announced)
    assert raised.value.size == 120
    with pytest.raises(BodyTooLarge):
        read(messages(chunk(b"x" * 150, False)), limit=100, announced=announced)


def test_a_body_that_stops_arriving_is_stopped_at_the_read_timeout_with_what_arrived() -> None:
    started = asyncio.run(_timed(messages(chunk(b"0123456789", True), then_wait=True)))
    size, seconds = started
    assert size == 10
    assert 0.2 <= seconds < 1.0  # the deadline is 0.2 s, checked every 0.05 s


async def _timed(receive: Callable[[], Awaitable[Message]]) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    begun = loop.time()
    try:
        await read_body(receive, 1000, SlowBodies(0.2))
    except BodyTooSlow as exc:
        return exc.size, loop.time() - begun
    raise AssertionError("the read was not stopped")


def test_a_client_that_leaves_mid_body_is_gone() -> None:
    with pytest.raises(ClientGone):
        read(messages(chunk(b"ab", True), {"type": "http.disconnect"}))


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    """Only the reaper's own stop becomes BodyTooSlow: the server cancelling the request is passed on."""

    async def run() -> None:
        task = asyncio.create_task(read_body(messages(chunk(b"ab", True), then_wait=True), 100, SlowBodies(30)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
