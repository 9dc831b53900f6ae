"""Fixtures for the Python client tests: the plugin's real daemon and session fixtures, plus an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # One persistent client for the whole run: the code under test would keep its connections too.
    with httpx.Client(timeout=10) as client:
        yield client
