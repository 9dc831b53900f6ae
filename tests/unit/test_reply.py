"""A reply's ASGI headers: the spec's encoding while the reply is the spec's own, a fresh one once rewritten."""

from __future__ import annotations

from simulatord.responding.reply import ResponseSpec


def test_a_plain_reply_sends_the_headers_encoded_when_the_stub_was_programmed() -> None:
    spec = ResponseSpec(200, (("Content-Type", "text/plain"),), b"hello")
    assert spec.render().asgi_headers() is spec.wire_headers
    assert spec.wire_headers == ((b"content-type", b"text/plain"), (b"content-length", b"5"))


def test_rewritten_headers_or_body_are_encoded_as_they_are_now() -> None:
    spec = ResponseSpec(200, (("x-a", "1"),), b"hello")
    headers = spec.render()
    headers.headers = [*headers.headers, ("x-b", "2")]
    assert headers.asgi_headers() == ((b"x-a", b"1"), (b"x-b", b"2"), (b"content-length", b"5"))
    body = spec.render()
    body.body = b"a longer body"
    assert body.asgi_headers() == ((b"x-a", b"1"), (b"content-length", b"13"))


def test_a_stub_set_content_length_is_kept() -> None:
    spec = ResponseSpec(200, (("Content-Length", "5"),), b"hello")
    assert spec.wire_headers == ((b"content-length", b"5"),)
