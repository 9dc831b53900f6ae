"""Objects built from a library imported on first use, kept for as long as that library's module is the one loaded.

A daemon embedded in a test process (simulatord.embedded) shares `sys.modules` with the tests, and pytest's
`pytester` restores a snapshot of it after each test that uses it: a library the daemon imported meanwhile is
dropped, and the next import loads it anew, with new exception classes. An object cached with `functools.cache`
would go on raising the old classes, which `except library.Error` in fresh code no longer catches; these caches
build the object again instead.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_module(module: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """Caches a no-argument builder's result until `sys.modules[module]` is no longer the module it was built with."""

    def wrap(build: Callable[[], T]) -> Callable[[], T]:
        held: list[tuple[object, T]] = []

        @functools.wraps(build)
        def get() -> T:
            if held and held[0][0] is sys.modules.get(module):
                return held[0][1]
            value = build()  # imports the module, so look it up afterwards
            held[:] = [(sys.modules.get(module), value)]
            return value

        return get

    return wrap
