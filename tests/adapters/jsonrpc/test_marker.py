"""The verify marker table: the form per method, and nothing outside firmware 5.82-7.17."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.adapters.jsonrpc import ABSENT
from crowdsky.adapters.jsonrpc.marker import (
    MARKER_FORMS,
    MarkerForm,
    carries_marker,
    form_of,
    mark,
    unmark,
)
from crowdsky.domain.firmware import Firmware, needs_verify_marker, version_int

WINDOW = Firmware(2670, "6.70", "Seestar S50", marker=True)

scalars = st.one_of(st.integers(), st.text(max_size=8).filter(lambda t: t != "verify"))
objects = st.dictionaries(st.text(max_size=6).filter(lambda k: k != "verify"), scalars, max_size=4)
lists = st.lists(st.one_of(scalars, objects), max_size=4).filter(
    lambda items: not items or items[-1] != "verify"
)
params = st.one_of(st.just(ABSENT), objects, lists, scalars)
methods = st.one_of(st.sampled_from(sorted(MARKER_FORMS)), st.text(min_size=1, max_size=12))
versions = st.builds(version_int, st.integers(1, 9), st.integers(0, 99))


@given(methods, params, versions)
def test_no_marker_outside_the_window(method: str, value: Any, ver_int: int) -> None:
    firmware = Firmware(ver_int, marker=needs_verify_marker(ver_int))
    marked = mark(method, value, firmware)
    if 2582 < ver_int < 2718:
        assert carries_marker(marked)
    else:
        assert marked is value
    assert mark(method, value, None) is value


@given(methods, params)
def test_the_marker_goes_in_the_form_of_the_method(method: str, value: Any) -> None:
    marked = mark(method, value, WINDOW)
    assert carries_marker(marked)
    sent, back = unmark(marked)
    # Nothing of the caller's params is lost or changed: an object that goes into the list form
    # and a bare value travel as the list's first element, and an empty list is no params at
    # all once the marker is its only element.
    if value is ABSENT or value == []:
        assert (sent, back) == (MarkerForm.ALONE, ABSENT)
    elif isinstance(value, list) or sent is MarkerForm.OBJECT:
        assert back == value
    else:
        assert (sent, back) == (MarkerForm.LIST, [value])
    if isinstance(value, dict):
        wanted = form_of(method, value)
        assert sent is (MarkerForm.OBJECT if wanted is MarkerForm.OBJECT else MarkerForm.LIST)
    assert mark(method, marked, WINDOW) == marked  # never twice


@given(methods, params)
def test_mark_never_changes_its_argument(method: str, value: Any) -> None:
    before = repr(value)
    mark(method, value, WINDOW)
    assert repr(value) == before


@pytest.mark.parametrize(
    ("method", "value", "expected"),
    [
        ("scope_get_equ_coord", ABSENT, ["verify"]),
        ("get_albums", ABSENT, ["verify"]),
        ("set_setting", {"lang": "en"}, [{"lang": "en"}, "verify"]),
        ("set_sequence_setting", {"group_name": "M44"}, {"group_name": "M44", "verify": True}),
        ("iscope_start_view", {"mode": "star"}, {"mode": "star", "verify": True}),
        ("get_img_file_page_name", {"page": 2}, {"page": 2, "verify": True}),
        ("set_batch_stack_setting", {"path": "p"}, {"path": "p", "verify": True}),
        ("pi_set_time", [{"year": 2026}], [{"year": 2026}, "verify"]),
        ("scope_goto", [8.69, 19.5], [8.69, 19.5, "verify"]),
    ],
)
def test_recorded_and_sent_forms(method: str, value: Any, expected: Any) -> None:
    assert mark(method, value, WINDOW) == expected


def test_the_handshake_reply_is_never_marked() -> None:
    assert mark("verify_client", {"sign": "s", "data": "d"}, WINDOW) == {"sign": "s", "data": "d"}
