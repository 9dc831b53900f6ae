"""The readable AssertionError texts of a timed-out wait and of a failed verification.

Example of a failed verification::

    simulatord session tenants/t/sessions/s failed verification: 1 unused stub(s), 1 unmatched request(s)
    Stubs never used:
      - delete-user [DELETE /users/{id}]
    Requests no stub matched:
      - #2 GET /users/2 -> 404
          nearest delete-user [DELETE /users/{id}]:
            method: expected DELETE, got 'GET'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import stub_pb2
from simulatord_client.exchanges import Exchange, FilterOptions, exchange_records


def describe_filter(options: FilterOptions) -> str:
    """`POST /users*, unmatched` style text for a filter, for messages; `any request` when empty."""
    method = (options.get("method") or "").upper()
    prefix = options.get("path_prefix")
    path = options.get("path") or (f"{prefix}*" if prefix else "")
    parts = []
    if method or path:
        parts.append(f"{method or '*'} {path or '*'}")
    if options.get("matched") is True:
        parts.append("matched")
    elif options.get("matched") is False:
        parts.append("unmatched")
    if stub := options.get("stub"):
        parts.append(f"answered by {stub if isinstance(stub, str) else stub.id}")
    return ", ".join(parts) or "any request"


def _listing(exchanges: Sequence[Exchange], indent: str = "    ") -> list[str]:
    lines = []
    for exchange in exchanges:
        lines.append(f"{indent}{exchange}")
        lines.extend(f"{indent}    near miss {miss}" for miss in exchange.near_misses)
    return lines


def wait_failure(
    session: str, options: FilterOptions, count: int, timeout: float, reply: pb.WaitForExchangesResponse
) -> str:
    """The AssertionError text for a WaitForExchanges that timed out: what was wanted, what arrived instead."""
    lines = [
        f"timed out after {timeout:g}s waiting for {count} request(s) matching [{describe_filter(options)}] "
        f"in {session}: {reply.count} arrived"
    ]
    matching = exchange_records(reply.exchanges)
    others = exchange_records(reply.other_exchanges)
    if matching:
        lines.append("  matching requests:")
        lines.extend(_listing(matching))
    if others:
        lines.append("  other requests that arrived (latest, at most 10):")
        lines.extend(_listing(others))
    if not matching and not others:
        lines.append("  the session received no requests at all")
    return "\n".join(lines)


def describe_matcher(matcher: stub_pb2.RequestMatcher) -> str:
    """`GET /users/{id} (+1 condition)` style text for a RequestMatcher."""
    method = matcher.method or "*"
    kind = matcher.path.WhichOneof("kind")
    if kind is None:
        path = "any path"
    else:
        operand = getattr(matcher.path, kind)
        path = {"prefix": f"{operand}*", "regex": f"~{operand}"}.get(kind, operand)
    extra = (
        len(matcher.query)
        + len(matcher.headers)
        + len(matcher.body)
        + len(matcher.all_of)
        + len(matcher.any_of)
        + len(matcher.none_of)
    )
    more = f" (+{extra} condition{'s' if extra > 1 else ''})" if extra else ""
    return f"{method} {path}{more}"


def _stub_label(name: str, description: str, stubs: Mapping[str, stub_pb2.Stub]) -> str:
    label = name.rsplit("/", 1)[-1]
    if name in stubs:
        label += f" [{describe_matcher(stubs[name].request)}]"
    if description:
        label += f" {description!r}"
    return label


def verify_failure(session: str, report: pb.VerifySessionResponse, stubs: Mapping[str, stub_pb2.Stub]) -> str:
    """The AssertionError text for a failed VerifySession: each problem on its own line, stubs shown by id
    and what they match, unmatched requests with the nearest stubs and the fields that differed."""
    problems = []
    lines: list[str] = []
    if report.unmet_expectations:
        problems.append(f"{len(report.unmet_expectations)} unmet expectation(s)")
        lines.append("Stubs whose expected call count was not met:")
        lines.extend(
            f"  - {_stub_label(r.stub, r.description, stubs)}: expected {r.expected}, matched {r.match_count} time(s)"
            for r in report.unmet_expectations
        )
    if report.unused_stubs:
        problems.append(f"{len(report.unused_stubs)} unused stub(s)")
        lines.append("Stubs never used:")
        lines.extend(f"  - {_stub_label(r.stub, r.description, stubs)}" for r in report.unused_stubs)
    if report.unmatched_exchanges:
        problems.append(f"{len(report.unmatched_exchanges)} unmatched request(s)")
        lines.append("Requests no stub matched:")
        for exchange in exchange_records(report.unmatched_exchanges):
            lines.append(f"  - #{exchange.sequence} {exchange.method} {exchange.url_path} -> {exchange.status}")
            for miss in exchange.near_misses:
                lines.append(f"      nearest {_stub_label(miss.stub, miss.description, stubs)}:")
                lines.extend(f"        {mismatch}" for mismatch in miss.mismatches)
            if not exchange.near_misses:
                lines.append("      (the session has no stubs)")
    if not lines and report.summary:
        lines.append(report.summary)  # a newer daemon reporting something this client does not know yet
    headline = f"simulatord session {session} failed verification: {', '.join(problems) or 'see below'}"
    return "\n".join([headline, *lines])
