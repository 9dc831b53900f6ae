"""The template sandbox: Jinja's SandboxedEnvironment bounded in time, output and the size of what a template
builds, and rendered in short slices, so that one session's template can neither stall the daemon nor fill its
memory.

Jinja's own sandbox stops templates from reaching Python internals, not from running long: `{{ 10**(10**7) }}`
is folded while the stub is compiled (14 s on the event loop), `lipsum(n=20000)` takes a second, `'x' * 10**8`
a hundred megabytes. Here every operator, call, filter, attribute and item access a template makes checks the
rendering's time budget, and the operators and calls that could build something huge in one step (`**`, `*`,
`%`, `str.replace`, `str.format`, widths and counts) are checked before they run and their results after.

Time is shared in two steps. A rendering first runs on the event loop, as nearly all do in well under a
millisecond; one that is still running after `INLINE_SECONDS` is stopped and run again from the start on the
sandbox's own thread, where it has `MAX_RENDER_SECONDS` and steps aside (releasing the GIL) every
`SLICE_SECONDS`, so the event loop, and every other session's traffic, keeps its turn. Templates have no side
effects and their variables are made afresh for the second run (a seeded `random` repeats), so running one
twice is invisible.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from simulatord.lazy import per_module

if TYPE_CHECKING:
    from jinja2.environment import Template
    from jinja2.runtime import Context
    from jinja2.sandbox import SandboxedEnvironment

INLINE_SECONDS = 0.001  # the most a rendering may hold the event loop; longer ones move to the sandbox's thread
MAX_RENDER_SECONDS = 0.1  # one rendering's budget on that thread, not counting the pauses
SLICE_SECONDS = 0.001  # how long it runs there before stepping aside
PAUSE_SECONDS = 0.001  # and for how long
MAX_VALUE_SIZE = 1 << 20  # characters, bytes or items of any one value a template builds: one step stays short
MAX_OUTPUT_CHARS = 16 << 20  # of one rendered template
MAX_INT_BITS = 4096
MAX_ARGUMENT = 100_000  # widths and counts passed to the methods and filters that pad or repeat
MAX_RANGE = 10_000  # items of range()
MAX_SOURCE_CHARS = 64 << 10  # of one template's source, so that compiling it stays quick
MAX_LIPSUM_PARAGRAPHS = 20

T = TypeVar("T")


class TemplateBoundExceeded(Exception):
    """A template went past one of the sandbox's bounds while rendering."""


class _MoveOffTheLoop(BaseException):
    """Raised in a rendering that has held the event loop too long; a BaseException, so no filter swallows it."""


class Budget:
    """The time one rendering may spend: on the event loop it is moved off when it runs long; on the sandbox's
    thread it pauses every slice and fails when its budget is spent (pauses not counted)."""

    __slots__ = ("_inline", "_slice_start", "_used")

    def __init__(self, inline: bool) -> None:
        self._inline = inline
        self._used = 0.0
        self._slice_start = time.perf_counter()

    def check(self) -> None:
        now = time.perf_counter()
        ran = now - self._slice_start
        if self._inline:
            if ran > INLINE_SECONDS:
                raise _MoveOffTheLoop
            return
        if self._used + ran > MAX_RENDER_SECONDS:
            raise TemplateBoundExceeded(f"rendering took longer than its budget of {MAX_RENDER_SECONDS * 1000:.0f} ms")
        if ran >= SLICE_SECONDS:
            self._used += ran
            time.sleep(PAUSE_SECONDS)  # releases the GIL: the event loop thread runs meanwhile
            self._slice_start = time.perf_counter()


_budget: ContextVar[Budget | None] = ContextVar("simulatord_template_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.check()


def _within(budget: Budget, render: Callable[[], T]) -> T:
    token = _budget.set(budget)
    try:
        return render()
    finally:
        _budget.reset(token)


@functools.cache
def _thread() -> ThreadPoolExecutor:
    # One thread: renderings that run long queue behind each other instead of competing with the event loop.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulatord-templates")


async def run(render: Callable[[], T]) -> T:
    """Runs `render` (one or more renderings that make their variables afresh each call) on the event loop, or,
    when it runs long there, again from the start on the sandbox's thread within its budget."""
    try:
        return _within(Budget(inline=True), render)
    except _MoveOffTheLoop:
        pass
    return await asyncio.get_running_loop().run_in_executor(_thread(), _within, Budget(inline=False), render)


# --- what a template builds ----------------------------------------------------------------------


def _sized(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > MAX_VALUE_SIZE:
        raise TemplateBoundExceeded(f"a value of {len(value):,} items or characters exceeds {MAX_VALUE_SIZE:,}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateBoundExceeded(f"an integer of more than {MAX_INT_BITS} bits")
    return value


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_power(base: Any, exponent: Any) -> None:
    growing = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if growing and base.bit_length() * exponent > MAX_INT_BITS:
        raise TemplateBoundExceeded(f"{base} ** {exponent} has more than {MAX_INT_BITS} bits")


def _check_repeat(left: Any, right: Any) -> None:
    for sequence, count in ((left, right), (right, left)):
        size = _length(sequence)
        if size is not None and isinstance(count, int) and size * count > MAX_VALUE_SIZE:
            raise TemplateBoundExceeded(f"repeating {size:,} items {count:,} times exceeds {MAX_VALUE_SIZE:,}")
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise TemplateBoundExceeded(f"a product of more than {MAX_INT_BITS} bits")


_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d*))?")
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*\}")
_DIGITS = re.compile(r"\d+")


def _check_widths(numbers: Any) -> None:
    for number in numbers:
        if number and int(number) > MAX_ARGUMENT:
            raise TemplateBoundExceeded(f"a format width or precision of {number} exceeds {MAX_ARGUMENT:,}")


def _check_percent_format(text: str) -> None:
    for found in _PERCENT_WIDTH.finditer(text):
        _check_widths(found.groups())


def _check_brace_format(text: str) -> None:
    for field in _BRACE_WIDTH.findall(text):
        _check_widths(_DIGITS.findall(field.split(":", 1)[1]))


def _check_numbers(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
            raise TemplateBoundExceeded(f"a width, count or length of {value:,} exceeds {MAX_ARGUMENT:,}")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        grown = len(text) + (text.count(old) if old else len(text) + 1) * (len(new) - len(old))
        if grown > MAX_VALUE_SIZE:
            raise TemplateBoundExceeded(f"a replacement would make {grown:,} characters, more than {MAX_VALUE_SIZE:,}")


# The str methods and the filters whose numbers say how much to build (other numbers are data, unchecked).
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PADDING_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Before a str method runs: its widths, and what a replacement would grow to."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str | bytes):
        return
    name = getattr(obj, "__name__", "")
    if name in _PADDING_METHODS:
        _check_numbers(args, kwargs)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])


# --- the environment -----------------------------------------------------------------------------


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the attribute that tells Jinja to pass the context or environment first.
    @functools.wraps(function)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        _tick()
        # The filtered value is data; what follows it are the filter's own arguments (widths, counts).
        value_at = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
        if name in _PADDING_FILTERS:
            _check_numbers(args[value_at + 1 :], kwargs)
        if name == "replace" and len(args) >= value_at + 3:
            _check_replace(args[value_at], args[value_at + 1], args[value_at + 2])
        if name == "format" and len(args) > value_at and isinstance(args[value_at], str):
            _check_percent_format(args[value_at])
        return _sized(function(*args, **kwargs))

    return filtered


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateBoundExceeded(f"range() of {len(numbers):,} items exceeds {MAX_RANGE:,}")
    return numbers


@per_module("jinja2")
def environment() -> SandboxedEnvironment:
    """The one environment every template is compiled in; Jinja is imported by the first template programmed."""
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import SandboxedEnvironment
    from jinja2.utils import generate_lorem_ipsum

    class BoundedEnvironment(SandboxedEnvironment):
        # Intercepted operators also cannot be folded while compiling, so `{{ 10**(10**7) }}` costs nothing then.
        intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            _tick()
            if operator == "**":
                _check_power(left, right)
            elif operator == "*":
                _check_repeat(left, right)
            elif operator == "%" and isinstance(left, str):
                _check_percent_format(left)
            return _sized(super().call_binop(context, operator, left, right))

        def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            _tick()
            _check_method(obj, args, kwargs)
            return _sized(super().call(context, obj, *args, **kwargs))

        def getattr(self, obj: Any, attribute: str) -> Any:
            _tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            _tick()
            return super().getitem(obj, argument)

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            wrapped = super().wrap_str_format(value)
            if wrapped is not None and isinstance(getattr(value, "__self__", None), str):
                _check_brace_format(value.__self__)
            return wrapped

    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if n > MAX_LIPSUM_PARAGRAPHS or min > 200 or max > 200:
            raise TemplateBoundExceeded(f"lipsum() is bounded to {MAX_LIPSUM_PARAGRAPHS} paragraphs of 200 words")
        return str(generate_lorem_ipsum(n, html, min, max))

    # ChainableUndefined lets `request.json.user.id` render empty when any link is missing, which is what a
    # test author expects from a simulator; `finalize` prints None as nothing rather than "None".
    env = BoundedEnvironment(
        undefined=ChainableUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=lambda value: "" if value is None else value,
    )
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    env.globals.update(range=_range, lipsum=lipsum)
    return env


def render(template: Template, values: Mapping[str, Any]) -> str:
    """Renders inside the current budget (see `run`), the output bounded."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(values):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateBoundExceeded(f"rendered output exceeds {MAX_OUTPUT_CHARS:,} characters")
        parts.append(chunk)
        _tick()
    return "".join(parts)
