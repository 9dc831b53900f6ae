"""Verification of a session: unused stubs, unmet call counts and unmatched requests, as one readable report."""

from __future__ import annotations

from dataclasses import dataclass

from simulatord.matching.near_misses import describe_mismatches
from simulatord.sessions.journal import Exchange, ExchangeKind
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub

MAX_UNMATCHED = 100


@dataclass(frozen=True)
class VerifyReport:
    unused_stubs: tuple[Stub, ...]
    unmet_expectations: tuple[Stub, ...]
    unmatched: tuple[Exchange, ...]
    websocket_stubs: int = 0  # to explain a miss without near misses: what it was compared with

    @property
    def ok(self) -> bool:
        return not (self.unused_stubs or self.unmet_expectations or self.unmatched)

    def summary(self) -> str:
        if self.ok:
            return ""
        lines: list[str] = []
        if self.unmet_expectations:
            lines.append("Stubs whose expected call count was not met:")
            for stub in self.unmet_expectations:
                lines.append(
                    f"  - {_label(stub)}: expected {stub.expectation_text()}, matched {stub.match_count} time(s)"
                )
        if self.unused_stubs:
            lines.append("Stubs never used:")
            lines.extend(f"  - {_label(stub)}" for stub in self.unused_stubs)
        if self.unmatched:
            lines.append("Requests no stub matched:")
            for exchange in self.unmatched:
                req = exchange.request
                query = f"?{req.query_string}" if req.query_string else ""
                lines.append(f"  - #{exchange.sequence} {req.method} {req.path}{query}")
                for miss in exchange.near_misses:
                    label = miss.description or miss.stub_name
                    lines.append(f"      nearest {label}: {describe_mismatches(miss.mismatches)}")
                if not exchange.near_misses:
                    lines.append(f"      ({self._why_no_near_miss(exchange)})")
        return "\n".join(lines)

    def _why_no_near_miss(self, exchange: Exchange) -> str:
        if exchange.error:  # the daemon answered it before any stub was tried (a body too large or too slow)
            return f"no stub was tried: {exchange.error}"
        if exchange.kind is ExchangeKind.WEBSOCKET_UPGRADE:
            return "the session has no WebSocket stubs"
        if self.websocket_stubs:
            return "the session has only WebSocket stubs"
        return "the session has no stubs"


def _label(stub: Stub) -> str:
    return f"{stub.name} ({stub.description})" if stub.description else stub.name


def verify(session: Session) -> VerifyReport:
    unused, unmet = [], []
    for stub in sorted(session.stubs, key=lambda s: s.order):
        if stub.has_expectation:
            if not stub.expectation_met():
                unmet.append(stub)
        elif stub.match_count == 0:
            unused.append(stub)
    unmatched = [e for e in session.journal if e.unmatched][:MAX_UNMATCHED]
    websocket_stubs = sum(1 for stub in session.stubs if stub.websocket is not None)
    return VerifyReport(tuple(unused), tuple(unmet), tuple(unmatched), websocket_stubs)
