"""Which new firmware stack, if any, is the orphan of a pending block: every rule can say no."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crowdsky.domain import CoverageKey
from crowdsky.domain.orphans import (
    OrphanDecision,
    OrphanVerdict,
    PendingStack,
    decide_orphan,
    orphan_candidates,
)

KEY = CoverageKey("M 81", "20.0s", "LP", "20260311.82")
START = datetime(2026, 3, 11, 20, 30, tzinfo=UTC)
END = datetime(2026, 3, 11, 20, 45, tzinfo=UTC)
USERS = "DSO_Stacked_12_M 81_20.0s_20260311_213000.fit"
RECORD = PendingStack("seestar.local:4700", "M 81", KEY, START, END, 40, frozenset({USERS}))
NEW = "DSO_Stacked_38_M 81_20.0s_20260311_214802.fit"
INSIDE = {"DATE-OBS": "2026-03-11T20:30:04.5"}


def decide(listing: list[str], headers: dict[str, dict[str, object]]) -> OrphanDecision:
    return decide_orphan(RECORD, listing, headers)


def test_the_one_new_fitting_stack_is_adopted() -> None:
    listing = [USERS, NEW, f"{NEW[:-4]}.jpg", "CrowdSky_12_M 81_20.0s_LP_20260311.81_HP1.fit"]
    assert decide(listing, {NEW: INSIDE}) == OrphanDecision(OrphanVerdict.ADOPT, (NEW,))


def test_a_stack_in_the_snapshot_is_never_a_candidate() -> None:
    header = {"DATE-OBS": "2026-03-11T20:31:00"}
    assert orphan_candidates(RECORD, [USERS]) == ()
    assert decide([USERS], {USERS: header}).verdict is OrphanVerdict.NONE


@pytest.mark.parametrize(
    "name",
    [
        "DSO_Stacked_38_M 82_20.0s_20260311_214802.fit",  # another target
        "DSO_Stacked_38_M 81_10.0s_20260311_214802.fit",  # another exposure
        "DSO_Stacked_41_M 81_20.0s_20260311_214802.fit",  # more frames than the block
        "DSO_Stacked_0_M 81_20.0s_20260311_214802.fit",  # no frames
        "Light_M 81_20.0s_LP_20260311-214802.fit",  # not a stack
    ],
)
def test_a_stack_of_something_else_is_not_a_candidate(name: str) -> None:
    assert orphan_candidates(RECORD, [name]) == ()
    assert decide([name], {name: INSIDE}).verdict is OrphanVerdict.NONE


@pytest.mark.parametrize("date_obs", ["2026-03-11T20:29:59", "2026-03-11T20:45:00"])
def test_a_date_obs_outside_the_block_rules_it_out(date_obs: str) -> None:
    assert decide([NEW], {NEW: {"DATE-OBS": date_obs}}).verdict is OrphanVerdict.NONE


def test_a_header_without_date_obs_does_not_rule_it_out() -> None:
    assert decide([NEW], {NEW: {"RA": 148.9}}).adopted == NEW


def test_an_unread_header_is_not_an_absent_date_obs() -> None:
    assert decide_orphan(RECORD, [NEW], {}, [NEW]) == OrphanDecision(
        OrphanVerdict.UNREADABLE, (NEW,)
    )
    # A candidate whose header was not given at all is no better than unreadable.
    assert decide([NEW], {}).verdict is OrphanVerdict.UNREADABLE


def test_two_fitting_stacks_are_ambiguous() -> None:
    other = "DSO_Stacked_30_M 81_20.0s_20260311_220000.fit"
    decision = decide([NEW, other], {NEW: INSIDE, other: INSIDE})
    assert decision == OrphanDecision(OrphanVerdict.AMBIGUOUS, tuple(sorted((NEW, other))))
    assert decision.adopted is None


def test_of_two_new_stacks_the_one_outside_the_block_is_not_counted() -> None:
    other = "DSO_Stacked_30_M 81_20.0s_20260311_220000.fit"
    outside = {"DATE-OBS": "2026-03-11T21:00:00"}
    assert decide([NEW, other], {NEW: INSIDE, other: outside}).adopted == NEW
