"""File names: raw sub-frames, firmware stacks and CrowdSky stacks parse back to their fields."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import (
    RawFrame,
    companion_names,
    crowdsky_name,
    format_exposure,
    parse_crowdsky_name,
    parse_exposure,
    parse_raw_name,
    parse_stacked_name,
)
from crowdsky.domain.names import _fit_tail_ok, _good_fit_tails
from crowdsky.errors import PlanError
from strategies import exposures, filters, local_times, raw_name, targets

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
chunk_keys = st.one_of(
    st.builds(
        lambda day, index: f"{day:%Y%m%d}.{index:02d}",
        days,
        st.integers(min_value=0, max_value=95),
    ),
    st.builds(
        lambda day, index: f"{day:%Y%m%d}.{index:03d}m10",
        days,
        st.integers(min_value=0, max_value=143),
    ),
)


def stacked_name(frames: int, target: str, exposure_s: float, stamp: datetime) -> str:
    return f"DSO_Stacked_{frames}_{target}_{format_exposure(exposure_s)}_{stamp:%Y%m%d_%H%M%S}.fit"


# --- round trips -------------------------------------------------------------------------------


@given(targets(), exposures(), filters(), local_times(), st.sampled_from((".fit", ".fits")))
def test_raw_name_round_trips(
    target: str, exposure_s: float, filter: str, local_time: datetime, suffix: str
) -> None:
    name = raw_name(target, exposure_s, filter, local_time, suffix)
    frame = parse_raw_name(name)
    assert frame == RawFrame(name, target, exposure_s, filter, local_time)
    assert frame.exposure == format_exposure(exposure_s)
    assert frame.date_obs is None


@given(st.integers(min_value=0, max_value=10_000), targets(), exposures(), local_times())
def test_stacked_name_round_trips(
    frames: int, target: str, exposure_s: float, stamp: datetime
) -> None:
    name = stacked_name(frames, target, exposure_s, stamp)
    parsed = parse_stacked_name(name)
    assert parsed is not None
    assert (parsed.name, parsed.frames, parsed.target) == (name, frames, target)
    assert (parsed.exposure_s, parsed.local_time) == (exposure_s, stamp)


@given(
    st.integers(min_value=0, max_value=10_000),
    targets(),
    exposures(),
    filters(),
    chunk_keys,
    st.integers(min_value=0, max_value=12 * 2**20 - 1),
)
def test_crowdsky_name_round_trips(
    frames: int, target: str, exposure_s: float, filter: str, key: str, pixel: int
) -> None:
    name = crowdsky_name(
        frames=frames,
        target=target,
        exposure_s=exposure_s,
        filter=filter,
        chunk_key=key,
        pixel=pixel,
    )
    parsed = parse_crowdsky_name(name)
    assert parsed is not None
    assert (parsed.name, parsed.frames, parsed.target, parsed.filter) == (
        name,
        frames,
        target,
        filter,
    )
    assert (parsed.exposure_s, parsed.chunk_key, parsed.pixel) == (exposure_s, key, pixel)
    assert parsed.legacy_local_start is None
    assert parsed.server_key == f"{key}_HP{pixel:06d}"


@given(st.integers(min_value=0, max_value=500), targets(), exposures(), filters(), local_times())
def test_legacy_crowdsky_name_is_recognised(
    frames: int, target: str, exposure_s: float, filter: str, start: datetime
) -> None:
    exposure = format_exposure(exposure_s)
    name = f"CrowdSky_{frames}_{target}_{exposure}_{filter}_{start:%Y%m%d-%H%M%S}.fit"
    parsed = parse_crowdsky_name(name)
    assert parsed is not None
    assert (parsed.frames, parsed.target, parsed.exposure_s, parsed.filter) == (
        frames,
        target,
        exposure_s,
        filter,
    )
    assert parsed.legacy_local_start == start
    assert parsed.chunk_key is None
    assert parsed.pixel is None
    assert parsed.server_key is None


@given(targets(), exposures(), filters(), local_times(), st.integers(0, 500), chunk_keys)
def test_raw_and_crowdsky_names_never_pass_for_each_other(
    target: str, exposure_s: float, filter: str, local_time: datetime, frames: int, key: str
) -> None:
    raw = raw_name(target, exposure_s, filter, local_time)
    crowd = crowdsky_name(
        frames=frames, target=target, exposure_s=exposure_s, filter=filter, chunk_key=key, pixel=7
    )
    assert parse_crowdsky_name(raw) is None
    assert parse_stacked_name(raw) is None
    assert parse_raw_name(crowd) is None
    assert parse_stacked_name(crowd) is None
    stacked = stacked_name(frames, target, exposure_s, local_time)
    assert parse_raw_name(stacked) is None
    assert parse_crowdsky_name(stacked) is None


@given(st.text(max_size=80))
def test_parsers_never_raise_on_junk(text: str) -> None:
    for parse in (parse_raw_name, parse_stacked_name, parse_crowdsky_name):
        parse(text)
        parse(f"Light_{text}_10.0s_LP_20260227-211503.fit")
        parse(f"CrowdSky_3_{text}_10.0s_LP_20260227.81_HP000001.fit")


# --- examples ----------------------------------------------------------------------------------


def test_real_names_parse() -> None:
    raw = parse_raw_name("Light_IC 434_10.0s_LP_20260227-211503.fit")
    assert raw is not None
    assert (raw.target, raw.exposure_s, raw.filter) == ("IC 434", 10.0, "LP")
    assert raw.local_time == datetime(2026, 2, 27, 21, 15, 3)

    stacked = parse_stacked_name("DSO_Stacked_33_M 81_20.0s_20260311_213509.fit")
    assert stacked is not None
    assert (stacked.frames, stacked.target, stacked.exposure_s) == (33, "M 81", 20.0)
    assert stacked.local_time == datetime(2026, 3, 11, 21, 35, 9)

    crowd = parse_crowdsky_name("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    assert crowd is not None
    assert (crowd.frames, crowd.target, crowd.exposure, crowd.filter) == (
        33,
        "IC 434",
        "10.0s",
        "LP",
    )
    assert (crowd.chunk_key, crowd.pixel, crowd.server_key) == (
        "20260227.81",
        102265,
        "20260227.81_HP102265",
    )


def test_target_with_underscores_and_greek_letters() -> None:
    frame = parse_raw_name("Light_ε Cnc_Sh2_101_30.0s_IRCUT_20260101-000000.fit")
    assert frame is not None
    assert (frame.target, frame.exposure_s, frame.filter) == ("ε Cnc_Sh2_101", 30.0, "IRCUT")


@pytest.mark.parametrize(
    "name",
    [
        "Light_IC 434_10.0s_LP_20260227-211503.jpg",
        "Light_IC 434_10.0s_LP_20260227-211503_thn.jpg",
        "Stacked_33_IC 434_10.0s_LP_20260227-211503.fit",
        "Light_IC 434_10.0s_LP_20261399-999999.fit",
        "Light_IC 434_10.0s_LP_20260230-211503.fit",
        "Light_IC 434_10.0s_LP_20260227-246000.fit",
        "Light_IC 434_0.0s_LP_20260227-211503.fit",
        "Light_IC 434_10.0_LP_20260227-211503.fit",
        "Light_IC 434_10.0s_L P_20260227-211503.fit",
        "Light_IC 434_10.0s_LP_20260227211503.fit",
        "Light__10.0s_LP_20260227-211503.fit",
        "Light_ IC 434_10.0s_LP_20260227-211503.fit",
        "Light_IC 434 _10.0s_LP_20260227-211503.fit",
        "light_IC 434_10.0s_LP_20260227-211503.fit",
        "Light_IC 434_10.0s_LP_20260227-211503.fit.part",
        "",
        "IC 434_sub",
        "Light_X_10.0s_LP_٢٠٢٦0227-211503.fit",
        "Light_X_١٠.0s_LP_20260227-211503.fit",
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
        "DSO_Stacked_33_M 81_20.0s_20260311_213509.fit",
    ],
)
def test_not_a_raw_name(name: str) -> None:
    assert parse_raw_name(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.jpg",
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265_thn.jpg",
        "CrowdSky_33_IC 434_10.0s_LP_20261399-999999.fit",
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81.fit",
        "CrowdSky_33_IC 434_10.0s_20260227.81_HP102265.fit",
        "CrowdSky_IC 434_10.0s_LP_20260227.81_HP102265.fit",
        "Stacked_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
        "Light_IC 434_10.0s_LP_20260227-211503.fit",
        "CrowdSky_33_X_10.0s_LP_٢٠٢٦0227.81_HP000001.fit",
        "CrowdSky_٣٣_X_10.0s_LP_20260227.81_HP000001.fit",
        "junk",
    ],
)
def test_not_a_crowdsky_name(name: str) -> None:
    assert parse_crowdsky_name(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "DSO_Stacked_33_M 81_20.0s_20260311_213509.jpg",
        "DSO_Stacked_33_M 81_20.0s_20260311_213509_thn.jpg",
        "DSO_Stacked_33_M 81_20.0s_20261399_999999.fit",
        "Stacked_33_M 81_20.0s_20260311_213509.fit",
        "DSO_Stacked_M 81_20.0s_20260311_213509.fit",
    ],
)
def test_not_a_stacked_name(name: str) -> None:
    assert parse_stacked_name(name) is None


def test_companions_of_a_fit() -> None:
    assert companion_names("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit") == (
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.jpg",
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265_thn.jpg",
    )


@given(exposures())
def test_exposure_text_round_trips(exposure_s: float) -> None:
    text = format_exposure(exposure_s)
    assert text.endswith("s")
    assert "." in text
    assert parse_exposure(text) == exposure_s


@pytest.mark.parametrize("text", ["0s", "-1.0s", "ten", "", "nan"])
def test_bad_exposure_text(text: str) -> None:
    with pytest.raises(PlanError):
        parse_exposure(text)


@pytest.mark.parametrize(
    "target", ["", " IC 434", "IC 434 ", "a/b", "a\\b", "a\x00b", "M\n42", "M\t42", "M\x7f42"]
)
def test_unusable_target_is_refused(target: str) -> None:
    with pytest.raises(PlanError):
        RawFrame("x.fit", target, 10.0, "LP", datetime(2026, 2, 27, 21, 15))
    with pytest.raises(PlanError):
        crowdsky_name(
            frames=1, target=target, exposure_s=10.0, filter="LP", chunk_key="20260227.81", pixel=0
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("frames", -1),
        ("pixel", -1),
        ("filter", "L P"),
        ("filter", "L_P"),
        ("filter", ""),
        ("exposure_s", 0.0),
        ("exposure_s", -10.0),
        ("chunk_key", ""),
        ("chunk_key", "junk"),
        ("chunk_key", "20260227-211500"),
        ("chunk_key", "20260227.81_HP000001"),
    ],
)
def test_crowdsky_name_refuses_bad_fields(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "frames": 33,
        "target": "IC 434",
        "exposure_s": 10.0,
        "filter": "LP",
        "chunk_key": "20260227.81",
        "pixel": 102265,
    }
    fields[field] = value
    with pytest.raises(PlanError):
        crowdsky_name(**fields)  # type: ignore[arg-type]


def test_raw_frame_refuses_non_positive_exposure() -> None:
    with pytest.raises(PlanError):
        RawFrame("x.fit", "M 42", 0.0, "LP", datetime(2026, 2, 27, 21, 15))


@given(st.text(min_size=1, max_size=24))
def test_a_built_name_always_parses_back(target: str) -> None:
    """A target is refused or its names parse back to it (else: restacked on every run)."""
    try:
        name = crowdsky_name(
            frames=3, target=target, exposure_s=10.0, filter="LP", chunk_key="20260227.81", pixel=5
        )
    except PlanError:
        return
    parsed = parse_crowdsky_name(name)
    assert parsed is not None
    assert parsed.target == target
    frame = parse_raw_name(raw_name(target, 10.0, "LP", datetime(2026, 2, 27, 21, 15, 3)))
    assert frame is not None
    assert frame.target == target


@given(
    st.one_of(
        st.from_regex(r"\A[0-9]{4}\.fit\Z"),
        st.text(alphabet="0123456789.fitsFIT٢\n ", max_size=10),
    )
)
def test_the_table_of_good_fit_tails_says_what_the_check_says(tail: str) -> None:
    """The batch parser looks tails up in a table made once; it agrees with the check."""
    assert _good_fit_tails()[tail] == _fit_tail_ok(tail)


def test_the_table_of_good_fit_tails_holds_every_good_tail_and_grows_on_nothing() -> None:
    table = _good_fit_tails()
    assert len(table) == 3600
    assert all(map(_fit_tail_ok, table))
    assert not table["6000.fit"]
    assert not table["0060.fit"]
    assert "6000.fit" not in table
