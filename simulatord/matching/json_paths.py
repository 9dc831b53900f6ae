"""JSONPath for body matchers: python-jsonpath, with every regular expression in a query running on RE2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulatord.lazy import per_module
from simulatord.matching.patterns import PatternError, compile_user

if TYPE_CHECKING:
    from jsonpath import JSONPathEnvironment


class _Literal:
    """A `/pattern/flags` literal compiled by RE2, with what python-jsonpath reads of a compiled `re` pattern."""

    def __init__(self, pattern: str, flags: str) -> None:
        # RE2 takes the flags jsonpath allows (i, m, s) inline; `a` (ASCII classes) is what RE2 does anyway.
        inline = "".join(sorted(set(flags) & set("ims")))
        self._compiled = compile_user(f"(?{inline}){pattern}" if inline else pattern)
        self.pattern = pattern
        self.flags = 0

    def fullmatch(self, text: str) -> Any:
        return self._compiled.fullmatch(text)

    def search(self, text: str) -> Any:
        return self._compiled.search(text)


@per_module("jsonpath")
def json_paths() -> JSONPathEnvironment:
    """The environment every JSONPath matcher is compiled in; built (and python-jsonpath imported) on first use."""
    from jsonpath import JSONPathEnvironment, JSONPathSyntaxError
    from jsonpath.filter import RegexLiteral
    from jsonpath.function_extensions import Match, Search
    from jsonpath.parse import Parser
    from jsonpath.token import TOKEN_RE_FLAGS

    class Re2Parser(Parser):
        def parse_regex(self, stream: Any) -> Any:
            token = stream.current()
            flags = ""
            if stream.peek().kind == TOKEN_RE_FLAGS:
                stream.next()
                flags = stream.next().value
            try:
                return RegexLiteral(value=_Literal(token.value, flags))  # type: ignore[arg-type]
            except PatternError as exc:
                raise JSONPathSyntaxError(f"regular expression {token.value!r} {exc}", token=token) from None

    def _cached(self: Any, pattern: str) -> Any:
        # RFC 9535: a pattern that does not compile matches nothing.
        try:
            compiled = self.cache[pattern]
        except KeyError:
            try:
                compiled = compile_user(pattern)
            except PatternError:
                compiled = None
            self.cache[pattern] = compiled
        return compiled

    class Re2Match(Match):
        check_cache = _cached

    class Re2Search(Search):
        check_cache = _cached

    class Environment(JSONPathEnvironment):
        parser_class = Re2Parser

        def setup_function_extensions(self) -> None:
            super().setup_function_extensions()
            self.function_extensions["match"] = Re2Match()
            self.function_extensions["search"] = Re2Search()

    return Environment()
