"""Regular expressions a tenant programs run on RE2, in time linear in their input, so none can stall the daemon.

Python's `re` backtracks: `(a+)+$` against 28 `a`s and a `b` takes seconds, and while it runs every other
tenant waits. RE2 (google-re2) never backtracks; it refuses what it cannot do in linear time (backreferences,
look-around) when the stub is programmed. Its Python binding costs a few microseconds a call more than `re`, so
the patterns the daemon writes itself (path templates and globs) stay on `re` when they are linear by
construction, and move to RE2 when they are not.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Protocol

MAX_PATTERN_LENGTH = 4096  # longer patterns are refused when programmed: nobody writes them by hand
MAX_REPEAT = 1000  # RE2's own limit on a counted repetition; larger counts it would read as literal text
# A counted repetition `{n}`, `{n,}` or `{n,m}` that is not escaped.
_COUNTED = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")
# RE2 keeps its compiled program within this many bytes and refuses a pattern that needs more.
MAX_PROGRAM_BYTES = 8 << 20


class PatternError(ValueError):
    """A pattern that cannot be compiled, or not in linear time; the message says why."""


class Match(Protocol):
    def groupdict(self) -> dict[str, Any]: ...


class Pattern(Protocol):
    """What matchers need of a compiled pattern: the common part of `re.Pattern` and RE2's."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, /) -> Match | None: ...

    def fullmatch(self, text: str, /) -> Match | None: ...


@functools.cache
def _options(ignore_case: bool) -> Any:
    import re2  # a daemon whose stubs program no regex never loads it

    options = re2.Options()
    options.log_errors = False  # errors are reported to the client, not to the daemon's stderr
    options.max_mem = MAX_PROGRAM_BYTES
    options.case_sensitive = not ignore_case
    return options


def compile_user(pattern: str, ignore_case: bool = False) -> Pattern:
    """A tenant's regular expression, on RE2 (search semantics are Python's; `\\Z` is written `\\z`)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"is longer than {MAX_PATTERN_LENGTH} characters")
    for found in _COUNTED.finditer(pattern):
        if any(count and int(count) > MAX_REPEAT for count in found.groups()):
            raise PatternError(f"repetition {found.group(0)[:40]} exceeds the limit of {MAX_REPEAT}")
    import re2

    try:
        compiled: Pattern = re2.compile(pattern, _options(ignore_case))
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(f"not a regular expression RE2 can run in linear time: {detail}") from None
    except (OverflowError, RecursionError, MemoryError) as exc:  # the binding's own limits
        raise PatternError(f"too large to compile: {type(exc).__name__}") from None
    return compiled


def compile_generated(pattern: str, linear: bool) -> Pattern:
    """A pattern the daemon wrote from a template or glob: on `re` when `linear` (at most one unbounded
    wildcard, so no backtracking blow-up), otherwise on RE2."""
    if linear:
        return re.compile(pattern)
    return compile_user(pattern)
