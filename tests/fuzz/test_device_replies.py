"""The Seestar's JSON-RPC results: every ``parse_*`` gives a value or a :class:`SeestarError`."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crowdsky.adapters.seestar.replies import (
    page_length,
    parse_albums,
    parse_app_state,
    parse_batch_stack,
    parse_device_time,
    parse_page,
    parse_page_count,
)
from crowdsky.errors import SeestarError

FUZZ = settings(max_examples=300)

KEYS = [
    "list", "files", "name", "count", "size_k", "is_dir", "year", "mon", "day", "hour", "min",
    "sec", "time_zone", "BatchStack", "state", "percent", "output_file", "path", "code", "error",
    "page", "time", "stacked_img", "total_img", "remaining_sec",
]  # fmt: skip
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.sampled_from(["1e999", "nan", "-inf", " 7 ", "9" * 5000]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=20,
)
PARSERS = (
    page_length,
    parse_albums,
    parse_page,
    parse_page_count,
    parse_device_time,
    parse_app_state,
    parse_batch_stack,
)


@pytest.mark.parametrize("size_k", [1e308, 10**400, "1e999"], ids=["1e308", "10**400", "str"])
def test_an_impossible_file_size_is_a_device_error(size_k: object) -> None:
    with pytest.raises(SeestarError, match="size_k"):
        parse_page([{"name": "a.fit", "size_k": size_k}])


@pytest.mark.parametrize("field", ["percent", "remaining_sec", "stacked_img", "total_img"])
def test_an_impossible_batch_stack_number_is_a_device_error(field: str) -> None:
    with pytest.raises(SeestarError, match=field):
        parse_batch_stack({"state": "working", field: 10**400})


def test_an_impossible_page_count_is_a_device_error() -> None:
    # Believed, it would have the listing ask for pages without end.
    with pytest.raises(SeestarError, match="page count"):
        parse_page_count(10**400)


def test_ordinary_numbers_still_read() -> None:
    assert parse_page([{"name": "a.fit", "size_k": "4050"}])[0].size == 4050 * 1024
    status = parse_batch_stack({"state": "working", "percent": 150, "stacked_img": 3})
    assert status is not None
    assert (status.percent, status.stacked_img) == (100.0, 3)


@FUZZ
@given(json_values)
@example({"list": [{"name": "a.fit", "size_k": 1e308}]})
@example({"BatchStack": {"state": "x", "percent": 10**400}})
def test_reply_parsers_give_a_value_or_a_device_error(value: Any) -> None:
    for parse in PARSERS:
        with contextlib.suppress(SeestarError):
            parse(value)
