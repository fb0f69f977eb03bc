"""File names from the device: every parser returns a value or ``None``, never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crowdsky.domain import frame_utc
from crowdsky.domain.headers import parse_date_obs
from crowdsky.domain.names import parse_crowdsky_name, parse_raw_name, parse_stacked_name

FUZZ = settings(max_examples=300)

_digits = st.text("0123456789", min_size=1, max_size=30)
_field = st.text(st.characters(codec="utf-8"), max_size=12)
raw_like = st.builds(
    lambda target, exp, filt, stamp: f"Light_{target}_{exp}s_{filt}_{stamp}.fit",
    _field,
    st.one_of(_digits, st.builds("{}.{}".format, _digits, _digits)),
    st.text("LPIRCUT-0", min_size=1, max_size=6),
    st.builds("{}-{}".format, st.text("0123456789", min_size=8, max_size=8),
              st.text("0123456789", min_size=6, max_size=6)),
)  # fmt: skip
crowdsky_like = st.builds(
    lambda n, target, exp, key, pixel: f"CrowdSky_{n}_{target}_{exp}s_LP_{key}_HP{pixel}.fit",
    _digits,
    _field,
    _digits,
    st.builds("{}.{}".format, st.text("0123456789", min_size=8, max_size=8), _digits),
    _digits,
)
any_name = st.one_of(raw_like, crowdsky_like, st.text(max_size=80))


def test_a_raw_name_dated_year_one_is_no_raw_name() -> None:
    assert parse_raw_name("Light_M 42_10.0s_LP_00010101-000000.fit") is None


def test_raw_names_outside_2000_to_2200_are_no_raw_names() -> None:
    assert parse_raw_name("Light_M 42_10.0s_LP_19991231-235959.fit") is None
    assert parse_raw_name("Light_M 42_10.0s_LP_22000101-000000.fit") is None
    assert parse_raw_name("Light_M 42_10.0s_LP_20000101-000000.fit") is not None
    assert parse_raw_name("Light_M 42_10.0s_LP_21991231-235959.fit") is not None


def test_an_impossible_exposure_is_no_raw_name() -> None:
    assert parse_raw_name("Light_M 42_" + "9" * 400 + ".0s_LP_20260227-211503.fit") is None


def test_a_huge_frame_count_is_no_crowdsky_name() -> None:
    name = "CrowdSky_" + "9" * 5000 + "_M 42_10.0s_LP_20260227.81_HP1.fit"
    assert parse_crowdsky_name(name) is None


def test_a_chunk_index_past_the_day_is_no_crowdsky_name() -> None:
    assert parse_crowdsky_name("CrowdSky_3_M 42_10.0s_LP_20260227.96_HP1.fit") is None
    assert parse_crowdsky_name("CrowdSky_3_M 42_10.0s_LP_20260227.144m10_HP1.fit") is None
    assert parse_crowdsky_name("CrowdSky_3_M 42_10.0s_LP_20260227.143m10_HP1.fit") is not None


def test_a_date_obs_near_year_one_is_unreadable_not_a_crash() -> None:
    assert parse_date_obs("0001-01-01T00:00:00+05:00") is None
    assert parse_date_obs("9999-12-31T23:00:00-05:00") is None
    assert parse_date_obs("1999-12-31T23:59:59") is None


@FUZZ
@given(any_name)
@example("Light_M 42_10.0s_LP_00010101-000000.fit")
@example("DSO_Stacked_" + "9" * 5000 + "_M 81_20.0s_20260311_213509.fit")
def test_name_parsers_return_a_value_or_none(name: str) -> None:
    raw = parse_raw_name(name)
    if raw is not None:
        assert 2000 <= raw.local_time.year < 2200
        assert 0 < raw.exposure_s <= 86400
        # Whatever parses must also be placeable in time, in the widest real zones.
        for hours in (-12, 14):
            frame_utc(raw, tz=_zone(hours))
    parse_stacked_name(name)
    parse_crowdsky_name(name)


@FUZZ
@given(st.one_of(st.text(max_size=40), st.datetimes().map(datetime.isoformat)))
@example("0001-01-01T00:00:00+05:00")
def test_parse_date_obs_returns_a_utc_time_or_none(text: str) -> None:
    moment = parse_date_obs(text)
    if moment is not None:
        assert moment.tzinfo is UTC
        assert 2000 <= moment.year < 2200


def _zone(hours: int) -> object:
    from datetime import timezone

    return timezone(timedelta(hours=hours))
