"""FITS headers from the device and from local stacks: a dict / StackMeta, or a project error."""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from crowdsky.adapters.collab.stack_meta import (
    LocalFitsFiles,
    _meta_from,
    _plain_header,
    _read_cards,
    stack_meta,
)
from crowdsky.adapters.seestar import fits_cards
from crowdsky.adapters.seestar.fits_cards import plain_cards
from crowdsky.adapters.seestar.http_files import BLOCK, _parse
from crowdsky.errors import CrowdskyError, StorageError

FUZZ = settings(max_examples=150)

_SIMPLE = "SIMPLE  =                    T"
_BASIC = ("BITPIX  =                   16", "NAXIS   =                    0")
_KEYS = ["STACKCNT", "DATE-OBS", "RA", "DEC", "OBJECT", "NAXIS", "NAXIS1", "BITPIX", "CONTINUE"]


def header_bytes(*cards: str) -> bytes:
    text = "".join(card[:80].ljust(80) for card in (_SIMPLE, *cards, "END"))
    return text.ljust(-(-len(text) // BLOCK) * BLOCK).encode("latin-1")


value_texts = st.one_of(
    st.sampled_from(
        ["-1E400", "1E400", "9" * 70, "'0001-01-01T00:00:00+05:00'", "'unterminated", "(1, 2",
         "(1E400, 0)", "T", "'x&'", "'2026-02-27T20:15:03'", "2", "a"]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70),
)  # fmt: skip
cards = st.one_of(
    st.builds(lambda key, value: f"{key:<8}= {value}", st.sampled_from(_KEYS), value_texts),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)


def test_an_infinite_card_value_makes_the_header_unreadable() -> None:
    with pytest.raises(StorageError, match="STACKCNT"):
        _parse(header_bytes("STACKCNT= -1E400"), "p.fit")


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383.fit"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "cards",
    [
        ("BITPIX  =                   16", "NAXIS   =                    2"),  # no NAXIS1
        (*_BASIC, "STACKCNT= -1E400"),
        (*_BASIC, "STACKCNT= 'x"),  # astropy's VerifyError
        (*_BASIC, "DATE-OBS= (1,2"),
        (*_BASIC, "DATE-OBS= '0001-01-01T00:00:00+05:00'"),
        (*_BASIC, "SIMPLE  =                    0"),  # astropy's AttributeError
    ],
    ids=[
        "no-naxis1",
        "stackcnt-inf",
        "stackcnt-bad",
        "date-obs-bad",
        "date-obs-year-one",
        "simple-again",
    ],
)
def test_odd_stack_headers_give_meta_or_a_project_error(
    tmp_path: Path, cards: tuple[str, ...]
) -> None:
    try:
        meta = stack_meta(write(tmp_path, header_bytes(*cards)))
    except CrowdskyError:
        return
    assert meta.n_frames_input == 3  # from the name
    assert meta.date_obs_start is None


@FUZZ
@given(st.lists(cards, max_size=6))
@example(["STACKCNT= -1E400"])
@example(["RA      = " + "9" * 70])
def test_the_header_card_parser_gives_a_dict_or_a_storage_error(lines: list[str]) -> None:
    try:
        header = _parse(header_bytes(*lines), "p.fit")
    except StorageError:
        return
    assert isinstance(header, dict)


@FUZZ
@given(st.binary(max_size=3 * 80))
def test_the_header_card_parser_takes_any_bytes(data: bytes) -> None:
    padded = (b"SIMPLE  =" + data).ljust(BLOCK, b" ")
    with contextlib.suppress(StorageError):
        _parse(padded, "p.fit")


@settings(max_examples=60)
@given(st.lists(cards, max_size=5))
@example(["NAXIS   =                    2"])
@example(["STACKCNT= 'x"])
def test_stack_meta_gives_meta_or_a_project_error(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    path = write(tmp_path_factory.mktemp("stack"), header_bytes(*_BASIC, *lines))
    try:
        meta: Any = stack_meta(path)
    except CrowdskyError:
        return
    assert meta.n_frames_input is None or meta.n_frames_input >= 0


plain_values = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x!r}".upper()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.6E}".replace("E", "D")),
    st.sampled_from(["T", "F", "", "1.", ".5", "+3", "-0", "1E5", "1e5", "(1.0, 2.0)", "1.5E"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
        lambda t: "'" + t.replace("'", "''") + "'"
    ),
)
plain_lines = st.builds(
    lambda key, value, comment: f"{key:<8}= {value:>20}{comment}",
    st.sampled_from([*_KEYS, "FILTER", "EXPTIME", "CCD-TEMP", "X_1"]),
    plain_values,
    st.sampled_from(["", " / a comment", "/", " / it's"]),
)


def astropy_cards(data: bytes) -> dict[str, object]:
    header = fits.Header.fromstring(data.decode("ascii"))
    return {
        card.keyword: None
        if isinstance(card.value, fits.card.Undefined)
        else card.value.rstrip()
        if isinstance(card.value, str)
        else card.value
        for card in header.cards
        if card.keyword not in ("", "COMMENT", "HISTORY")
    }


@FUZZ
@given(st.lists(st.one_of(plain_lines, cards), max_size=8))
@example(["OBJECT  = 'it''s M 42  '", "EXPTIME =                 10.0"])
@example(["RA      =            1.5D+01 / deg", "FILTER  = 'LP      '"])
@example(["DATE-OBS= '2025-09-29T06:01:02.382641'", "GAIN    =                   80"])
def test_the_fast_card_reader_answers_as_astropy_does(lines: list[str]) -> None:
    """Where the direct reader answers, astropy reads the same values; else astropy is used."""
    data = header_bytes(*lines)
    fast = plain_cards(data.decode("ascii"))
    if fast is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fast == astropy_cards(data)
        assert all(type(fast[k]) is type(v) for k, v in astropy_cards(data).items())


def test_the_fast_card_reader_reads_a_seestar_sub_header() -> None:
    data = header_bytes(
        "BITPIX  =                   16 / array data type",
        "NAXIS   =                    2",
        "NAXIS1  =                 1080",
        "NAXIS2  =                 1920",
        "BZERO   =                32768",
        "DATE-OBS= '2025-09-29T06:01:02.382641' / Image created time",
        "RA      =            13.633335",
        "DEC     =            56.775833",
        "FILTER  = 'LP      '",
        "COMMENT a comment card",
        "EQMODE  =                    0",
    )
    assert plain_cards(data.decode("ascii")) == {
        "SIMPLE": True,
        "BITPIX": 16,
        "NAXIS": 2,
        "NAXIS1": 1080,
        "NAXIS2": 1920,
        "BZERO": 32768,
        "DATE-OBS": "2025-09-29T06:01:02.382641",
        "RA": 13.633335,
        "DEC": 56.775833,
        "FILTER": "LP",
        "EQMODE": 0,
    }
    assert _parse(data, "p.fit") == plain_cards(data.decode("ascii"))


def test_remembered_cards_read_the_same_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readings of cards are remembered up to a bound; past it, cards are still read."""
    monkeypatch.setattr(fits_cards, "_KNOWN_CARDS", {})
    monkeypatch.setattr(fits_cards, "_CARDS_KEPT", 4)
    exposure = "EXPTIME =                 10.0"
    first = header_bytes("DATE-OBS= '2025-09-29T06:01:02.382641'", exposure)
    second = header_bytes("DATE-OBS= '2025-09-29T06:01:15.114000'", exposure)
    fresh = [plain_cards(data.decode("ascii")) for data in (first, second)]
    again = [plain_cards(data.decode("ascii")) for data in (second, first)]
    assert fresh == again[::-1]
    assert fresh[1] == {
        "SIMPLE": True, "DATE-OBS": "2025-09-29T06:01:15.114000", "EXPTIME": 10.0
    }  # fmt: skip
    assert len(fits_cards._KNOWN_CARDS) == 4
    odd = header_bytes("CPLX    = (1.0, 2.0)")
    assert plain_cards(odd.decode("ascii")) is None  # unsure, though no longer remembered


@pytest.mark.parametrize(
    "line",
    [
        "CPLX    = (1.0, 2.0)",
        "LONG    = 'abc&'",
        "HIERARCH ESO X = 1",
        "LOWER   = 1e5",
        "odd     = 1",
    ],
)
def test_the_fast_card_reader_leaves_other_cards_to_astropy(line: str) -> None:
    assert plain_cards(header_bytes(line).decode("ascii")) is None


def _meta_or_error(path: Path, *, direct: bool) -> object:
    try:
        return _meta_from(path, _read_cards(path, direct=direct))
    except CrowdskyError as exc:
        return type(exc)


primary_starts = st.sampled_from(
    [
        _BASIC,
        ("BITPIX  =                  -32", "NAXIS   =                    0"),
        ("BITPIX  =                   16", "NAXIS   =                    1", "NAXIS1  = 0"),
        ("BITPIX  =                   16", "NAXIS   =                    2", "NAXIS1  = 0"),
        ("BITPIX  =                   16", "NAXIS   =                    1", "NAXIS1  = 2880"),
        ("BITPIX  =                   17", "NAXIS   =                    0"),
        ("NAXIS   =                    0", "BITPIX  =                   16"),
        ("BITPIX  =                   16", "NAXIS   =                   -1"),
    ]
)
stack_lines = st.builds(
    lambda key, value, comment: f"{key:<8}= {value:>20}{comment}",
    st.sampled_from(["STACKCNT", "DATE-OBS", "RA", "DEC", "OBJECT", "FILTER", "TOTALEXP",
                     "TELESCOP", "EXPTIME", "SIMPLE"]),
    st.one_of(
        plain_values,
        st.sampled_from(["'2026-02-27T20:15:03'", "'2026-02-27T20:15:03.5'", "'M 42  '",
                         "'2026-02-27'", "'2026-13-01T00:00:00'", "1E400", "-1E400", "'IC 434'"]),
    ),
    st.sampled_from(["", " / a comment"]),
)  # fmt: skip


@settings(max_examples=200)
@given(
    primary_starts,
    st.lists(stack_lines, max_size=8) | st.lists(stack_lines | cards, max_size=8),
    st.booleans(),
)
@example(_BASIC, ["STACKCNT=                   31", "DATE-OBS= '2026-02-27T20:15:03'"], False)
@example(_BASIC, ["OBJECT  =                      ", "RA      =                 83.8"], False)
def test_a_plain_stack_header_gives_the_same_upload_fields_as_astropy(
    tmp_path_factory: pytest.TempPathFactory,
    start: tuple[str, ...],
    lines: list[str],
    legacy_name: bool,
) -> None:
    """Read directly or by astropy, a stack's header gives the same fields or the same error."""
    folder = tmp_path_factory.mktemp("stack")
    name = "IC434_stack.fit" if legacy_name else "CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383.fit"
    path = folder / name
    path.write_bytes(header_bytes(*start, *lines))
    with path.open("rb") as handle:
        event("read directly" if _plain_header(handle) is not None else "left to astropy")
    assert _meta_or_error(path, direct=True) == _meta_or_error(path, direct=False)


def test_a_plain_stack_header_is_read_without_astropy(tmp_path: Path) -> None:
    data = header_bytes(*_BASIC, "STACKCNT=                   31", "OBJECT  = 'M 42    '")
    with io.BytesIO(data) as handle:
        assert _plain_header(handle) == {
            "SIMPLE": True,
            "BITPIX": 16,
            "NAXIS": 0,
            "STACKCNT": 31,
            "OBJECT": "M 42",
        }


@pytest.mark.parametrize(
    "cards",
    [
        ("BITPIX  =                   16", "NAXIS   =                    2", "NAXIS1  = 4"),
        ("NAXIS   =                    0", "BITPIX  =                   16"),
        ("BITPIX  =                   12", "NAXIS   =                    0"),
        (*_BASIC, "CPLX    = (1.0, 2.0)"),
    ],
    ids=["no-naxis2", "out-of-order", "bad-bitpix", "complex-card"],
)
def test_an_unusual_stack_header_is_left_to_astropy(cards: tuple[str, ...]) -> None:
    with io.BytesIO(header_bytes(*cards)) as handle:
        assert _plain_header(handle) is None


def test_a_header_without_end_is_left_to_astropy() -> None:
    with io.BytesIO(header_bytes(*_BASIC).replace(b"END     ", b"        ")) as handle:
        assert _plain_header(handle) is None


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "astropy"])
def test_an_undefined_object_card_is_absent_not_a_name(tmp_path: Path, direct: bool) -> None:
    path = write(tmp_path, header_bytes(*_BASIC, "OBJECT  =", "CPLX    = (1.0, 2.0)"))
    assert _meta_from(path, _read_cards(path, direct=direct)).object_name == "M 42"


@pytest.mark.parametrize("naxis", [str(10**30), str(10**10), "1000", "-1"])
def test_a_stack_header_with_an_impossible_naxis_is_refused_at_once(
    tmp_path: Path, naxis: str
) -> None:
    """Found by the fuzz test above: astropy loops for minutes on ``NAXIS = 10**30``."""
    path = write(tmp_path, header_bytes("BITPIX  =                   16", f"NAXIS   = {naxis:>20}"))
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            stack_meta(path)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(20.0)  # a liveness bound: the refusal takes microseconds, the loop minutes
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], CrowdskyError)
    assert "NAXIS" in str(outcome[0])


def test_a_local_fits_file_with_an_impossible_naxis_is_refused(tmp_path: Path) -> None:
    naxis = f"NAXIS   = {10**30:>20}"
    path = write(tmp_path, header_bytes("BITPIX  =                   16", naxis))
    with pytest.raises(StorageError, match="NAXIS"):
        LocalFitsFiles().read_header(path)
