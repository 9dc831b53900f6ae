"""Session messages: settings into the domain, sessions and verification reports back."""

from __future__ import annotations

import dataclasses

from simulatord.control.convert.exchanges import exchange_to_proto
from simulatord.control.convert.scalars import duration, seconds, timestamp
from simulatord.control.convert.stubs import stub_to_template
from simulatord.errors import SpecErrors
from simulatord.names import SessionKey
from simulatord.sessions.service import Addressing
from simulatord.sessions.session import Session
from simulatord.sessions.settings import SessionSettings, session_settings
from simulatord.sessions.stubs import Stub
from simulatord.sessions.verify import VerifyReport
from simulatord.v1 import exchange_pb2, llm_pb2, session_pb2
from simulatord.v1 import simulator_service_pb2 as pb


def settings(msg: session_pb2.Session, where: str, errors: SpecErrors) -> SessionSettings:
    limits = msg.journal_limits
    value = session_settings(
        labels=msg.labels,
        ttl_seconds=seconds(msg.ttl),
        max_exchanges=limits.max_exchanges,
        max_bytes=limits.max_bytes,
        max_body_bytes=limits.max_body_bytes,
        unmatched_status=msg.unmatched_status,
        where=where,
        errors=errors,
        redact_headers=msg.redact_headers,
    )
    if not msg.HasField("llm"):
        return value
    from simulatord.control.convert.llm import simulation  # the LLM layer loads on first use, not at start-up

    source = llm_pb2.LlmSimulation()
    source.CopyFrom(msg.llm)
    return dataclasses.replace(value, llm=simulation(msg.llm, f"{where}.llm", errors), llm_source=source)


def session_to_proto(value: Session, addressing: Addressing) -> session_pb2.Session:
    journal = value.journal
    return session_pb2.Session(
        name=value.key.name,
        labels=value.labels,
        create_time=timestamp(value.create_time),
        expire_time=timestamp(value.expire_time),
        ttl=duration(value.ttl),
        base_url=addressing.base_url(value.key),
        host=addressing.host(value.key),
        routing_header=value.key.name,
        journal_limits=session_pb2.JournalLimits(
            max_exchanges=value.limits.max_exchanges,
            max_bytes=value.limits.max_bytes,
            max_body_bytes=value.limits.max_body_bytes,
        ),
        journal_stats=session_pb2.JournalStats(
            total_count=journal.total_count,
            retained_count=len(journal),
            evicted_count=journal.evicted_count,
            retained_bytes=journal.retained_bytes,
            first_sequence=journal.first_sequence,
            last_sequence=journal.last_sequence,
        ),
        unmatched_status=value.unmatched_status,
        stub_count=len(value.stubs),
        state=value.state,
        scenarios=value.scenarios,
        redact_headers=sorted(value.redact_headers),
        llm=value.llm.source if value.llm is not None and isinstance(value.llm.source, llm_pb2.LlmSimulation) else None,
    )


def session_to_template(value: Session, remove_proxies: bool = False) -> pb.CreateSessionRequest:
    """The session as CreateSession takes it: its settings and its stubs in creation order (which decides ties
    between stubs of equal priority), without anything the daemon fills in; without the proxy stubs if asked."""
    settings = session_pb2.Session(
        labels=value.labels,
        ttl=duration(value.ttl),
        journal_limits=session_pb2.JournalLimits(
            max_exchanges=value.limits.max_exchanges,
            max_bytes=value.limits.max_bytes,
            max_body_bytes=value.limits.max_body_bytes,
        ),
        unmatched_status=value.unmatched_status,
        redact_headers=sorted(value.redact_headers),
        llm=value.llm.source if value.llm is not None and isinstance(value.llm.source, llm_pb2.LlmSimulation) else None,
    )
    ordered = sorted((s for s in value.stubs if not (remove_proxies and s.proxies)), key=lambda stub: stub.order)
    return pb.CreateSessionRequest(session=settings, stubs=[stub_to_template(s) for s in ordered])


def _stub_reports(stubs: tuple[Stub, ...]) -> list[exchange_pb2.StubReport]:
    return [
        exchange_pb2.StubReport(
            stub=s.name, description=s.description, match_count=s.match_count, expected=s.expectation_text()
        )
        for s in stubs
    ]


def verify_to_proto(report: VerifyReport, key: SessionKey) -> pb.VerifySessionResponse:
    return pb.VerifySessionResponse(
        ok=report.ok,
        unused_stubs=_stub_reports(report.unused_stubs),
        unmet_expectations=_stub_reports(report.unmet_expectations),
        unmatched_exchanges=[exchange_to_proto(e, key) for e in report.unmatched],
        summary=report.summary(),
    )
