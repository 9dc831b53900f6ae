"""Reaching the raw connection under an ASGI request fails loudly when the server is not hypercorn."""

from __future__ import annotations

import pytest

from simulatord.http_front.connection import RawConnection
from simulatord.responding.wire import NoRawConnection


async def _plain_send(message: object) -> None:
    """An ASGI send that is not hypercorn's bound HTTPStream.app_send."""


def test_an_unknown_server_is_refused() -> None:
    with pytest.raises(NoRawConnection, match="does not expose"):
        RawConnection.of(_plain_send)
