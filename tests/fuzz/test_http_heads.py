"""The header reads' own HTTP head parser takes any bytes: facts, or one of its two refusals."""

from __future__ import annotations

import contextlib

import httpx
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crowdsky.adapters.direct_http import NotPlain, parse_head

_LINES = st.one_of(
    st.sampled_from(
        [
            b"HTTP/1.1 206 Partial Content",
            b"HTTP/1.0 200 OK",
            b"HTTP/1.1 100 Continue",
            b"Content-Length: 5760",
            b"Content-Range: bytes 0-5759/4150080",
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            b"Content-Encoding: gzip",
            b" folded: value",
            b"no colon here",
        ]
    ),
    st.binary(max_size=60).filter(lambda b: b"\r\n" not in b),
)


@settings(max_examples=300)
@given(st.lists(_LINES, min_size=1, max_size=8))
@example([b"HTTP/1.1 206 Partial Content", b"Content-Length: 5760"])
@example([b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked"])
def test_a_head_gives_its_facts_or_a_refusal(lines: list[bytes]) -> None:
    try:
        status, headers, keep_alive = parse_head(b"\r\n".join(lines))
    except (httpx.RemoteProtocolError, NotPlain):
        return
    assert 200 <= status <= 999
    assert all(name == name.lower() for name in headers)
    assert "transfer-encoding" not in headers
    assert isinstance(keep_alive, bool)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_give_facts_or_a_refusal(head: bytes) -> None:
    # Any other exception (a decode error, an index error) escapes and fails the test.
    with contextlib.suppress(httpx.RemoteProtocolError, NotPlain):
        parse_head(head)
