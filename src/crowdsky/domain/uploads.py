"""Which CrowdSky stacks to upload: a pure decision over what the client, server and journal know.

A stack is skipped only when something proves the same stack was uploaded:

* the server lists a record that matches it on its chunk key and object, and on every other
  field both sides know (filter, frame counts, total exposure, telescope, start time). The key
  compared is the one the server derives from the stack's own header (``DATE-OBS`` -> 15-minute
  UTC chunk, ``RA``/``DEC`` -> HEALPix pixel, pixel 0 without a pointing), not the one in the
  file name: the two differ for blocks of other lengths and for headers without RA/DEC.
  A second exposure time or a second telescope in the same block and pixel is another stack;
* the upload journal holds the same bytes: name, size and SHA-256.

A stack whose header ``DATE-OBS`` lies outside the block its name's chunk key stands for is
refused, forced or not: the server would file it under the block of that ``DATE-OBS``, not the
one named, and its name and server key would disagree (shared decision 7). That is what a device
that stamps stacks with the stacking time rather than the first frame's time would produce.

Nothing here reads files, the network or the clock: the application gathers the facts and
applies the decisions.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from crowdsky.domain.headers import header_pointing, parse_date_obs
from crowdsky.domain.names import CrowdskyName
from crowdsky.domain.sky import healpix_pixel
from crowdsky.domain.timekeys import chunk_key
from crowdsky.errors import PlanError

__all__ = [
    "JournalEntry",
    "ServerStack",
    "StackFacts",
    "UploadAction",
    "UploadCandidate",
    "UploadDecision",
    "UploadReason",
    "block_of_chunk_key",
    "misfiled",
    "plan_uploads",
    "same_stack",
    "server_key_of",
    "stack_facts",
]

# Seconds of disagreement tolerated between two readings of one start time or total exposure
# (the server may keep fewer decimals than the header).
_TIME_SLACK_S = 1.0
_EXPOSURE_SLACK_S = 0.01


@attrs.frozen
class StackFacts:
    """A stack as the server will record it: from its header, else from its name.

    Parameters
    ----------
    server_key : str or None
        ``YYYYMMDD.CC_HPnnnnnn`` as the server derives it; ``None`` without a usable
        ``DATE-OBS`` (the server refuses such a file).
    object_name, filter_name, telescope : str or None
        ``OBJECT`` (else the name's target), ``FILTER`` (else the name's filter), ``TELESCOP``.
    n_frames_input, n_frames_aligned : int or None
        Frames as sent with the upload: the name's count and ``STACKCNT``, each standing in
        for the other.
    total_exptime : float or None
        ``TOTALEXP`` in seconds.
    date_obs : datetime or None
        ``DATE-OBS``, aware UTC.
    """

    server_key: str | None
    object_name: str | None = None
    filter_name: str | None = None
    telescope: str | None = None
    n_frames_input: int | None = None
    n_frames_aligned: int | None = None
    total_exptime: float | None = None
    date_obs: datetime | None = None


@attrs.frozen
class ServerStack:
    """One record of the server's stack list; every field but ``chunk_key`` may be unknown."""

    chunk_key: str
    object_name: str | None = None
    filter_name: str | None = None
    telescope: str | None = None
    n_frames_input: int | None = None
    n_frames_aligned: int | None = None
    total_exptime: float | None = None
    date_obs_start: str | None = None


@attrs.frozen
class JournalEntry:
    """One upload the journal remembers: the bytes sent (name, size, SHA-256) and its receipt.

    Parameters
    ----------
    name : str
        The file name.
    size : int
        Bytes.
    sha256 : str
        Hex digest of the content.
    uploaded_at : datetime or None
        When the server confirmed it (``None`` in entries that lack the time).
    chunk_key : str or None
        The key the server answered with.
    job_id : int or None
        The server's job (or stack) id.
    target : str or None
        The target folder the file came from.
    """

    name: str
    size: int
    sha256: str
    uploaded_at: datetime | None = None
    chunk_key: str | None = None
    job_id: int | None = None
    target: str | None = None


@attrs.frozen
class UploadCandidate:
    """A CrowdSky stack that may be uploaded.

    Parameters
    ----------
    name : str
        The file name.
    target : str
        The target folder it was found in.
    parsed : CrowdskyName
        The parsed name.
    size : int
        Bytes.
    sha256 : str or None
        Hex digest, when the bytes are at hand (``None`` for a file still on the Seestar).
    facts : StackFacts or None
        What its header says; ``None`` when it was not read (then only the journal can tell).
    """

    name: str
    target: str
    parsed: CrowdskyName
    size: int
    sha256: str | None = None
    facts: StackFacts | None = None


class UploadAction(enum.Enum):
    """What to do with a candidate."""

    UPLOAD = "upload"
    SKIP = "skip"
    #: The journal holds this name and size but the content is not at hand: fetch and hash it,
    #: then decide again.
    VERIFY = "verify"
    #: Never send it: the server would file it under another block than its name says.
    REFUSE = "refuse"


class UploadReason(enum.Enum):
    """Why, as the report says it."""

    NEW = "not on the server nor in the journal"
    FORCED = "skip_existing is off"
    ON_SERVER = "already on the server"
    IN_JOURNAL = "in the upload journal"
    SAME_NAME_AND_SIZE = "the journal holds this name and size; content not checked yet"
    MISFILED = (
        "its header DATE-OBS lies outside the block its name says, so the server would file it "
        "under another block (a stack stamped with its stacking time?)"
    )


@attrs.frozen
class UploadDecision:
    """The decision for one candidate."""

    candidate: UploadCandidate
    action: UploadAction
    reason: UploadReason


def block_of_chunk_key(key: str) -> tuple[datetime, datetime] | None:
    """The UTC block ``[start, end)`` a chunk key (``YYYYMMDD.CC`` or ``YYYYMMDD.<i>m<min>``) names.

    ``None`` for anything else, including a block index past the end of the day.

    Examples
    --------
    >>> start, end = block_of_chunk_key("20260227.81")
    >>> start.isoformat(), end.isoformat()
    ('2026-02-27T20:15:00+00:00', '2026-02-27T20:30:00+00:00')
    >>> block_of_chunk_key("20260227.130m10")[0].isoformat()
    '2026-02-27T21:40:00+00:00'
    >>> block_of_chunk_key("20260227.96") is None
    True
    """
    match = re.fullmatch(r"(\d{8})\.(\d+)(?:m(\d+))?", key)
    if match is None:
        return None
    minutes = int(match.group(3) or 15)
    index = int(match.group(2))
    if minutes <= 0 or (index + 1) * minutes > 24 * 60:
        return None
    try:
        day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    start = day + timedelta(minutes=minutes * index)
    return start, start + timedelta(minutes=minutes)


def misfiled(candidate: UploadCandidate) -> bool:
    """True when the header's ``DATE-OBS`` lies outside the block the name's chunk key names.

    Without a ``DATE-OBS``, a name chunk key, or a key of a known form, nothing is proven.
    """
    facts, key = candidate.facts, candidate.parsed.chunk_key
    if facts is None or facts.date_obs is None or key is None:
        return False
    block = block_of_chunk_key(key)
    return block is not None and not block[0] <= facts.date_obs < block[1]


def server_key_of(header: Mapping[str, Any]) -> str | None:
    """The chunk key the server derives from a header, or ``None`` without a usable ``DATE-OBS``.

    The server always uses 15-minute UTC chunks of ``DATE-OBS`` and the HEALPix RING/128 pixel of
    ``RA``/``DEC`` (pixel 0 when they are missing), whatever the file name says.

    Examples
    --------
    >>> server_key_of({"DATE-OBS": "2026-02-27T20:15:03.5", "RA": 85.25, "DEC": -2.46})
    '20260227.81_HP102265'
    >>> server_key_of({"DATE-OBS": "2026-02-27T20:15:03.5"})
    '20260227.81_HP000000'
    >>> server_key_of({"RA": 85.25, "DEC": -2.46}) is None
    True
    """
    date_obs = parse_date_obs(header.get("DATE-OBS"))
    if date_obs is None:
        return None
    ra, dec = header_pointing(header)
    try:
        return f"{chunk_key(date_obs)}_HP{healpix_pixel(ra, dec):06d}"
    except PlanError:  # a declination out of range: the server refuses the file
        return None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def stack_facts(header: Mapping[str, Any], name: CrowdskyName | None) -> StackFacts:
    """The facts the server will record for a stack with this header and name."""
    stackcnt = _number(header.get("STACKCNT"))
    aligned = int(stackcnt) if stackcnt is not None else None
    named = name.frames if name is not None else None
    return StackFacts(
        server_key=server_key_of(header),
        object_name=_text(header.get("OBJECT")) or (name.target if name else None),
        filter_name=_text(header.get("FILTER")) or (name.filter if name else None),
        telescope=_text(header.get("TELESCOP")),
        n_frames_input=named if named is not None else aligned,
        n_frames_aligned=aligned if aligned is not None else named,
        total_exptime=_number(header.get("TOTALEXP")),
        date_obs=parse_date_obs(header.get("DATE-OBS")),
    )


def _same_text(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a.strip().casefold() == b.strip().casefold()


def _same_value(a: float | None, b: float | None, slack: float = 0.0) -> bool:
    return a is None or b is None or abs(a - b) <= slack


def _same_time(a: datetime | None, b: str | None) -> bool:
    other = parse_date_obs(b)
    return a is None or other is None or abs((a - other).total_seconds()) <= _TIME_SLACK_S


def same_stack(facts: StackFacts, record: ServerStack) -> bool:
    """True when ``record`` is this stack: same key and object, and no known field differs.

    A record without an object name proves nothing (the key alone is shared by every filter,
    exposure and telescope in that block and pixel), so it never matches.

    Examples
    --------
    >>> facts = StackFacts("20260227.81_HP102265", "IC 434", "LP", n_frames_input=31)
    >>> same_stack(facts, ServerStack("20260227.81_HP102265", "IC 434", n_frames_input=31))
    True
    >>> same_stack(facts, ServerStack("20260227.81_HP102265", "IC 434", n_frames_input=12))
    False
    >>> same_stack(facts, ServerStack("20260227.81_HP102265"))
    False
    """
    if facts.server_key is None or record.chunk_key != facts.server_key:
        return False
    if facts.object_name is None or record.object_name is None:
        return False
    return (
        _same_text(facts.object_name, record.object_name)
        and _same_text(facts.filter_name, record.filter_name)
        and _same_text(facts.telescope, record.telescope)
        and _same_value(facts.n_frames_input, record.n_frames_input)
        and _same_value(facts.n_frames_aligned, record.n_frames_aligned)
        and _same_value(facts.total_exptime, record.total_exptime, _EXPOSURE_SLACK_S)
        and _same_time(facts.date_obs, record.date_obs_start)
    )


def _decide(
    candidate: UploadCandidate,
    records: tuple[ServerStack, ...],
    journal: tuple[JournalEntry, ...],
) -> tuple[UploadAction, UploadReason]:
    facts = candidate.facts
    if facts is not None and any(same_stack(facts, record) for record in records):
        return UploadAction.SKIP, UploadReason.ON_SERVER
    same_file = [e for e in journal if e.name == candidate.name and e.size == candidate.size]
    if candidate.sha256 is None:
        if same_file:
            return UploadAction.VERIFY, UploadReason.SAME_NAME_AND_SIZE
    elif any(e.sha256 == candidate.sha256 for e in same_file):
        return UploadAction.SKIP, UploadReason.IN_JOURNAL
    return UploadAction.UPLOAD, UploadReason.NEW


def plan_uploads(
    candidates: Iterable[UploadCandidate],
    server_records: Iterable[ServerStack],
    journal_entries: Iterable[JournalEntry],
    *,
    skip_existing: bool,
) -> tuple[UploadDecision, ...]:
    """Decide, for each candidate in order, whether to upload it.

    Parameters
    ----------
    candidates : iterable of UploadCandidate
        The stacks found.
    server_records : iterable of ServerStack
        The user's stacks on the server.
    journal_entries : iterable of JournalEntry
        Uploads remembered locally.
    skip_existing : bool
        When false every candidate is uploaded (reason ``FORCED``).

    Returns
    -------
    tuple of UploadDecision
        One per candidate, in the order given.
    """
    records, journal = tuple(server_records), tuple(journal_entries)
    decisions = []
    for candidate in candidates:
        if misfiled(candidate):
            action, reason = UploadAction.REFUSE, UploadReason.MISFILED
        elif skip_existing:
            action, reason = _decide(candidate, records, journal)
        else:
            action, reason = UploadAction.UPLOAD, UploadReason.FORCED
        decisions.append(UploadDecision(candidate, action, reason))
    return tuple(decisions)
