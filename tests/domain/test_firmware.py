"""Firmware numbers and the rules that hang on them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain.firmware import (
    Firmware,
    PathForm,
    batch_path_form,
    needs_verify_marker,
    version_int,
    version_text,
)


@given(st.integers(1, 9), st.integers(0, 99))
def test_number_and_text_agree(major: int, minor: int) -> None:
    number = version_int(major, minor)
    assert version_text(number) == f"{major}.{minor:02d}"
    assert Firmware(number).text == version_text(number)


def test_the_windows_of_the_reference() -> None:
    # §1.3: marker for 5.82 < fw < 7.18; §4.1: full paths from 7.75 on.
    assert [needs_verify_marker(v) for v in (2225, 2427, 2582, 2583, 2670, 2706, 2717, 2718)] == [
        False, False, False, True, True, True, True, False,
    ]  # fmt: skip
    assert [batch_path_form(v) for v in (2670, 2732, 2774, 2775, 2800)] == [
        PathForm.BARE, PathForm.BARE, PathForm.BARE, PathForm.FULL, PathForm.FULL,
    ]  # fmt: skip
    assert batch_path_form(None) is PathForm.FULL
    assert PathForm.FULL.other is PathForm.BARE
    assert PathForm.BARE.other is PathForm.FULL


def test_handshake_is_unknown_until_the_version_is() -> None:
    assert Firmware().has_handshake is None
    assert Firmware(marker=True).has_handshake is False
    assert Firmware(2706, marker=True).has_handshake is False
    assert Firmware(2732).has_handshake is True
    assert Firmware(2427).has_handshake is False
