"""RequestMatcher, StringMatcher, FieldMatcher and BodyMatcher messages into the domain's pure matchers."""

from __future__ import annotations

from collections.abc import Iterable

from simulatord.control.convert.scalars import from_value
from simulatord.errors import SpecErrors
from simulatord.matching import matchers as m
from simulatord.v1 import stub_pb2


def string_matcher(msg: stub_pb2.StringMatcher, where: str, errors: SpecErrors) -> m.StringTest:
    kind = msg.WhichOneof("kind")
    return m.string_test(kind or "", getattr(msg, kind) if kind else "", msg.ignore_case, where, errors)


def field_matchers(
    source: m.FieldSource, items: Iterable[stub_pb2.FieldMatcher], where: str, errors: SpecErrors
) -> list[m.FieldValueTest]:
    out = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        value = string_matcher(item.value, f"{at}.value", errors) if item.HasField("value") else None
        out.append(m.field_value_test(source, item.name, value, item.absent, at, errors))
    return out


def body_matchers(items: Iterable[stub_pb2.BodyMatcher], where: str, errors: SpecErrors) -> list[m.BodyTest]:
    out = []
    for i, item in enumerate(items):
        at, label = f"{where}[{i}]", f"body[{i}]"
        kind = item.WhichOneof("kind") or ""
        if kind == "equals":
            out.append(m.body_test(kind, bytes(item.equals), at, errors, label=label))
        elif kind in ("contains", "regex"):
            out.append(m.body_test(kind, getattr(item, kind), at, errors, label=label))
        elif kind in ("json_equals", "json_subset", "json_schema"):
            value = from_value(getattr(item, kind), f"{at}.{kind}", errors)
            out.append(m.body_test(kind, value, at, errors, label=label))
        elif kind == "json_path":
            jp = item.json_path
            node_equals = from_value(jp.equals, f"{at}.json_path.equals", errors) if jp.HasField("equals") else None
            out.append(
                m.body_test(
                    kind,
                    jp.expression,
                    at,
                    errors,
                    node_equals=node_equals,
                    has_node_equals=jp.HasField("equals"),
                    node_value=string_matcher(jp.value, f"{at}.json_path.value", errors)
                    if jp.HasField("value")
                    else None,
                    label=label,
                )
            )
        else:
            out.append(m.body_test("", None, at, errors))
    return out


def request_matcher(msg: stub_pb2.RequestMatcher, where: str, errors: SpecErrors) -> m.RequestMatcher:
    path = None
    if msg.HasField("path"):
        kind = msg.path.WhichOneof("kind") or ""
        path = m.path_test(kind, getattr(msg.path, kind) if kind else "", f"{where}.path", errors)
    return m.request_matcher(
        method=msg.method,
        path=path,
        query=field_matchers(m.FieldSource.QUERY, msg.query, f"{where}.query", errors),
        headers=field_matchers(m.FieldSource.HEADERS, msg.headers, f"{where}.headers", errors),
        body=body_matchers(msg.body, f"{where}.body", errors),
        all_of=[request_matcher(x, f"{where}.all_of[{i}]", errors) for i, x in enumerate(msg.all_of)],
        any_of=[request_matcher(x, f"{where}.any_of[{i}]", errors) for i, x in enumerate(msg.any_of)],
        none_of=[request_matcher(x, f"{where}.none_of[{i}]", errors) for i, x in enumerate(msg.none_of)],
        where=where,
        errors=errors,
    )
