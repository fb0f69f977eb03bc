"""plan_uploads: a stack is skipped only when the server or the journal proves it is the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import crowdsky_name, parse_crowdsky_name
from crowdsky.domain.uploads import (
    JournalEntry,
    ServerStack,
    StackFacts,
    UploadAction,
    UploadCandidate,
    UploadReason,
    block_of_chunk_key,
    misfiled,
    plan_uploads,
    same_stack,
    server_key_of,
    stack_facts,
)
from strategies import exposures, filters, targets

digests = st.text("0123456789abcdef", min_size=64, max_size=64)
frame_counts = st.integers(min_value=1, max_value=500)
telescopes = st.one_of(st.none(), st.sampled_from(["S50_5eed0042", "S30_0a1b2c3d"]))
starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@st.composite
def candidates(draw: st.DrawFn, known_sha: bool = True) -> UploadCandidate:
    target, exposure, filt = draw(targets()), draw(exposures()), draw(filters())
    frames, start = draw(frame_counts), draw(starts)
    pixel = draw(st.integers(min_value=0, max_value=196_607))
    key = f"{start:%Y%m%d}.{(start.hour * 60 + start.minute) // 15:02d}"
    name = crowdsky_name(
        frames=frames, target=target, exposure_s=exposure, filter=filt, chunk_key=key, pixel=pixel
    )
    parsed = parse_crowdsky_name(name)
    assert parsed is not None
    facts = StackFacts(
        server_key=f"{key}_HP{pixel:06d}",
        object_name=target,
        filter_name=filt,
        telescope=draw(telescopes),
        n_frames_input=frames,
        n_frames_aligned=draw(st.integers(min_value=1, max_value=frames)),
        total_exptime=round(frames * exposure, 6),
        date_obs=start,
    )
    size = draw(st.integers(min_value=2880, max_value=50_000_000))
    sha = draw(digests) if known_sha else None
    return UploadCandidate(name, target, parsed, size, sha, facts)


def record_of(facts: StackFacts) -> ServerStack:
    """What the server lists after storing a stack with these facts."""
    assert facts.server_key is not None
    return ServerStack(
        chunk_key=facts.server_key,
        object_name=facts.object_name,
        filter_name=facts.filter_name,
        telescope=facts.telescope,
        n_frames_input=facts.n_frames_input,
        n_frames_aligned=facts.n_frames_aligned,
        total_exptime=facts.total_exptime,
        date_obs_start=facts.date_obs.isoformat() if facts.date_obs else None,
    )


def entry_of(candidate: UploadCandidate) -> JournalEntry:
    assert candidate.sha256 is not None
    return JournalEntry(candidate.name, candidate.size, candidate.sha256)


def facts_of(candidate: UploadCandidate) -> StackFacts:
    assert candidate.facts is not None
    return candidate.facts


@given(st.lists(candidates(), max_size=6), st.booleans())
def test_one_decision_per_candidate_in_order(found: list[UploadCandidate], skip: bool) -> None:
    decisions = plan_uploads(found, [], [], skip_existing=skip)
    assert [d.candidate for d in decisions] == found
    assert all(d.action is UploadAction.UPLOAD for d in decisions)


@given(candidates())
def test_the_same_stack_on_the_server_is_skipped(candidate: UploadCandidate) -> None:
    listed = [record_of(facts_of(candidate))]
    (decision,) = plan_uploads([candidate], listed, [], skip_existing=True)
    assert (decision.action, decision.reason) == (UploadAction.SKIP, UploadReason.ON_SERVER)


@given(candidates())
def test_a_record_that_says_less_still_matches_on_what_it_says(candidate: UploadCandidate) -> None:
    facts = facts_of(candidate)
    assert facts.server_key is not None
    sparse = ServerStack(facts.server_key, facts.object_name.upper() if facts.object_name else None)
    assert same_stack(facts, sparse)


@given(candidates(), st.data())
def test_one_differing_field_makes_it_another_stack(
    candidate: UploadCandidate, data: st.DataObject
) -> None:
    record = record_of(facts_of(candidate))
    changes = {
        "n_frames_input": (record.n_frames_input or 0) + data.draw(frame_counts),
        "n_frames_aligned": (record.n_frames_aligned or 0) + 1,
        "total_exptime": (record.total_exptime or 0.0) * 2 + 1.0,
        "telescope": "another-scope",
        "filter_name": "UHC",
        "object_name": "Not " + (record.object_name or ""),
        "chunk_key": record.chunk_key.replace("_HP", "_HP9"),
        "date_obs_start": (facts_of(candidate).date_obs or datetime.now(UTC))
        + timedelta(minutes=3),
    }
    field = data.draw(st.sampled_from(sorted(changes)))
    if field == "telescope" and record.telescope is None:
        return  # the candidate does not know its telescope: nothing to differ in
    value = changes[field]
    if field == "date_obs_start":
        value = value.isoformat()  # type: ignore[union-attr]
    other = attrs.evolve(record, **{field: value})
    (decision,) = plan_uploads([candidate], [other], [], skip_existing=True)
    assert decision.action is UploadAction.UPLOAD


@given(candidates())
def test_a_record_without_an_object_proves_nothing(candidate: UploadCandidate) -> None:
    bare = ServerStack(str(facts_of(candidate).server_key))
    (decision,) = plan_uploads([candidate], [bare], [], skip_existing=True)
    assert decision.action is UploadAction.UPLOAD


@given(candidates())
def test_the_same_bytes_in_the_journal_are_skipped(candidate: UploadCandidate) -> None:
    (decision,) = plan_uploads([candidate], [], [entry_of(candidate)], skip_existing=True)
    assert (decision.action, decision.reason) == (UploadAction.SKIP, UploadReason.IN_JOURNAL)


@given(candidates(), digests)
def test_other_bytes_under_the_same_name_are_uploaded(
    candidate: UploadCandidate, other_sha: str
) -> None:
    entry = attrs.evolve(entry_of(candidate), sha256=other_sha)
    (decision,) = plan_uploads([candidate], [], [entry], skip_existing=True)
    assert decision.action is (
        UploadAction.SKIP if other_sha == candidate.sha256 else UploadAction.UPLOAD
    )


@given(candidates(known_sha=False), digests)
def test_an_unhashed_file_with_a_journal_name_and_size_is_verified(
    candidate: UploadCandidate, sha: str
) -> None:
    entry = JournalEntry(candidate.name, candidate.size, sha)
    (decision,) = plan_uploads([candidate], [], [entry], skip_existing=True)
    assert (decision.action, decision.reason) == (
        UploadAction.VERIFY,
        UploadReason.SAME_NAME_AND_SIZE,
    )


@given(candidates())
def test_without_skip_existing_everything_is_uploaded(candidate: UploadCandidate) -> None:
    (decision,) = plan_uploads(
        [candidate], [record_of(facts_of(candidate))], [entry_of(candidate)], skip_existing=False
    )
    assert (decision.action, decision.reason) == (UploadAction.UPLOAD, UploadReason.FORCED)


def test_the_server_key_comes_from_the_header_not_the_name() -> None:
    # A 10-minute block stack without a pointing: the name says one key, the server another.
    name = parse_crowdsky_name("CrowdSky_12_IC 434_10.0s_LP_20260227.121m10_HP102265.fit")
    header = {"DATE-OBS": "2026-02-27T20:10:04", "OBJECT": "IC 434", "STACKCNT": 12}
    facts = stack_facts(header, name)
    assert facts.server_key == "20260227.80_HP000000"
    assert server_key_of({**header, "RA": 85.25, "DEC": -2.46}) == "20260227.80_HP102265"
    assert server_key_of({"DATE-OBS": "not a date"}) is None
    assert server_key_of({"DATE-OBS": "2026-02-27T20:10:04", "RA": 1.0, "DEC": 95.0}) is None


def test_facts_fall_back_to_the_name_where_the_server_does() -> None:
    name = parse_crowdsky_name("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    facts = stack_facts({"DATE-OBS": "2026-02-27T20:15:03.5", "TOTALEXP": 310.0}, name)
    assert (facts.object_name, facts.filter_name, facts.telescope) == ("IC 434", "LP", None)
    assert (facts.n_frames_input, facts.n_frames_aligned, facts.total_exptime) == (33, 33, 310.0)


@given(candidates(), st.booleans(), st.integers(min_value=-3 * 86400, max_value=3 * 86400))
def test_a_stack_dated_outside_its_named_block_is_refused_forced_or_not(
    candidate: UploadCandidate, skip_existing: bool, shift_s: int
) -> None:
    assert candidate.facts is not None
    assert candidate.facts.date_obs is not None
    block = block_of_chunk_key(str(candidate.parsed.chunk_key))
    assert block is not None
    moved = candidate.facts.date_obs + timedelta(seconds=shift_s)
    moved_candidate = attrs.evolve(candidate, facts=attrs.evolve(candidate.facts, date_obs=moved))
    (decision,) = plan_uploads((moved_candidate,), (), (), skip_existing=skip_existing)
    inside = block[0] <= moved < block[1]
    assert misfiled(moved_candidate) is not inside
    assert (decision.action is UploadAction.REFUSE) is not inside
    if not inside:
        assert decision.reason is UploadReason.MISFILED
