"""The CrowdSky server's answers: JSON bodies and download names."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crowdsky.adapters.collab.answers import json_answer, safe_filename
from crowdsky.errors import ServerError, ServerProtocolError

FUZZ = settings(max_examples=200)

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("status", [200, 400, 500])
def test_deeply_nested_json_is_a_protocol_error_not_a_recursion(status: int) -> None:
    with pytest.raises(ServerError):
        json_answer(httpx.Response(status, text=DEEP), "the stack list")


def test_deep_json_on_200_says_it_is_no_json() -> None:
    with pytest.raises(ServerProtocolError, match="not JSON"):
        json_answer(httpx.Response(200, text=DEEP), "the stack list")


bodies = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(str.encode),
    st.sampled_from([DEEP.encode(), b'{"error": 1e999}', b"9" * 5000, b'{"a": NaN}', b"[]"]),
)


@FUZZ
@given(st.sampled_from([200, 201, 302, 401, 404, 500]), bodies)
def test_json_answer_gives_a_value_or_a_server_error(status: int, body: bytes) -> None:
    with contextlib.suppress(ServerError):
        json_answer(httpx.Response(status, content=body), "x")


dispositions = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.builds("attachment; filename={}".format, st.text(max_size=40)),
    st.builds('attachment; filename="{}"'.format, st.text(max_size=40)),
    st.builds(
        "attachment; filename*={}''{}".format,
        st.sampled_from(["utf-8", "UTF-8", "latin-1", "", "no-such-codec", "utf-16"]),
        st.text(max_size=40),
    ),
)


def test_an_unknown_charset_in_filename_star_falls_back() -> None:
    header = "attachment; filename*=no-such-codec''%C3%A9.fits"
    assert safe_filename(header, "k") == "k.fits"


def test_a_name_with_dot_dot_falls_back() -> None:
    assert safe_filename('attachment; filename="a..fits"', "k") == "k.fits"
    assert safe_filename(None, "..a..b.") == "_a_b.fits"


@FUZZ
@given(dispositions, st.text(max_size=30))
@example("attachment; filename*=no-such-codec''%C3%A9.fits", "k")
@example('attachment; filename="\ud800.fits"', "k")
@example(None, "a..b")
def test_safe_filename_is_always_a_plain_fits_name(header: str | None, key: str) -> None:
    name = safe_filename(header, key)
    assert "/" not in name
    assert "\\" not in name
    assert ".." not in name
    assert not name.startswith(".")
    assert name.lower().endswith((".fit", ".fits"))
    name.encode("utf-8")  # a name every file system API takes
