"""The on-device batch stack of the device model: its state machine, timing and product.

Theory of operation (protocol reference §4). The stacker is in one of five states: ``IDLE`` (no
result: the ``BatchStack`` key is absent), ``WORKING``, or the last run's terminal ``COMPLETE``,
``FAIL`` or ``CANCEL``, which is kept (stale) until a clear. Everything that moves the stacker is
an event in :data:`TRANSITIONS`, the one table of ``(state, event) -> next state``, applied by
:func:`transition`; a pair that is not in the table is refused with the device's error code
(259 "stack is already running" for a start while working, 207 "fail to operate" otherwise).
Configure, stop and clear are accepted in every state; only some of them change it.

A run starts with the frames the device resolved from ``set_batch_stack_setting``. It takes
``setup + per_frame × frames`` seconds of clock time; nothing runs in the background: whenever
the state is read, the model brings the run up to the clock (a progress tick, or the finish or
failure whose time has come):

* no frames resolved → ``fail`` at once, ``"no image"`` / 267 (fw 7.75 with bare names);
* an injected failure → ``fail`` after half the frames, with the injected text and code;
* every frame rejected → ``fail`` at the end, ``"stack error, too few stars"`` / 263;
* a stuck run stays ``working`` at half way forever;
* otherwise ``complete`` at the end, with ``N = frames - rejected`` frames stacked (the last
  frames are the rejected ones).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from crowdsky.adapters.device_model.fits_files import FitsImage
from crowdsky.app.ports import BatchStackState, BatchStackStatus
from crowdsky.domain import format_exposure, parse_raw_name
from crowdsky.domain.device_paths import folder_name, target_of_sub_folder
from crowdsky.errors import SeestarRpcError

__all__ = [
    "NO_IMAGE",
    "TOO_FEW_STARS",
    "TRANSITIONS",
    "StackDateObs",
    "StackEvent",
    "StackRun",
    "StackerState",
    "output_name",
    "stack_image",
    "stack_target",
    "transition",
    "wire_entry",
]

NO_IMAGE = ("no image", 267)
TOO_FEW_STARS = ("stack error, too few stars", 263)


class StackDateObs(enum.Enum):
    """Which time a stack's ``DATE-OBS`` holds: unknown for real devices (reference §6).

    The CrowdSky server keys a stack by its ``DATE-OBS``; only ``FIRST_FRAME`` puts a block's
    stack in that block.
    """

    #: The earliest stacked frame's ``DATE-OBS`` (the simulator's default).
    FIRST_FRAME = "first-frame"
    #: The UTC time the device finished stacking.
    STACKING_TIME = "stacking-time"


class StackerState(enum.Enum):
    """The state of the device's batch stacker (the ``BatchStack`` state, or no result)."""

    IDLE = "idle"
    WORKING = "working"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


class StackEvent(enum.Enum):
    """What moves the batch stacker; :attr:`method` is the command that drives it."""

    CONFIGURE = "configure"
    START = "start"
    TICK = "tick"  # a read finds the run still working
    FINISH = "finish"  # a read finds the run's end has come: complete
    FAIL = "fail"  # ... or its failure has come
    STOP = "stop"
    CLEAR = "clear"

    @property
    def method(self) -> str:
        """The JSON-RPC method whose call fires this event."""
        return _METHODS[self]


_METHODS = {
    StackEvent.CONFIGURE: "set_batch_stack_setting",
    StackEvent.START: "start_batch_stack",
    StackEvent.TICK: "iscope_get_app_state",
    StackEvent.FINISH: "iscope_get_app_state",
    StackEvent.FAIL: "iscope_get_app_state",
    StackEvent.STOP: "stop_batch_stack",
    StackEvent.CLEAR: "clear_batch_stack",
}

_IDLE, _WORKING = StackerState.IDLE, StackerState.WORKING
_COMPLETE, _FAIL, _CANCEL = StackerState.COMPLETE, StackerState.FAIL, StackerState.CANCEL

#: Everything that changes the batch stacker's state: ``(state, event) -> next state``.
TRANSITIONS: Mapping[tuple[StackerState, StackEvent], StackerState] = {
    # Nothing has run, or the last result was cleared.
    (_IDLE, StackEvent.CONFIGURE): _IDLE,
    (_IDLE, StackEvent.START): _WORKING,
    (_IDLE, StackEvent.STOP): _IDLE,
    (_IDLE, StackEvent.CLEAR): _IDLE,
    # A run in progress: it ends by itself, or is stopped; a clear does not touch it.
    (_WORKING, StackEvent.CONFIGURE): _WORKING,
    (_WORKING, StackEvent.TICK): _WORKING,
    (_WORKING, StackEvent.FINISH): _COMPLETE,
    (_WORKING, StackEvent.FAIL): _FAIL,
    (_WORKING, StackEvent.STOP): _CANCEL,
    (_WORKING, StackEvent.CLEAR): _WORKING,
    # The last run's result, stale until cleared; a new start replaces it.
    (_COMPLETE, StackEvent.CONFIGURE): _COMPLETE,
    (_COMPLETE, StackEvent.START): _WORKING,
    (_COMPLETE, StackEvent.STOP): _COMPLETE,
    (_COMPLETE, StackEvent.CLEAR): _IDLE,
    (_FAIL, StackEvent.CONFIGURE): _FAIL,
    (_FAIL, StackEvent.START): _WORKING,
    (_FAIL, StackEvent.STOP): _FAIL,
    (_FAIL, StackEvent.CLEAR): _IDLE,
    (_CANCEL, StackEvent.CONFIGURE): _CANCEL,
    (_CANCEL, StackEvent.START): _WORKING,
    (_CANCEL, StackEvent.STOP): _CANCEL,
    (_CANCEL, StackEvent.CLEAR): _IDLE,
}

#: The device's answer to a pair that is not in :data:`TRANSITIONS` (code, text).
_REFUSALS = {(_WORKING, StackEvent.START): (259, "stack is already running")}
_CANNOT_OPERATE = (207, "fail to operate")


def transition(state: StackerState, event: StackEvent) -> StackerState:
    """The state after ``event`` in ``state``, by :data:`TRANSITIONS`.

    Raises
    ------
    SeestarRpcError
        When the table has no such transition: 259 for a start while working, else 207.

    Examples
    --------
    >>> transition(StackerState.COMPLETE, StackEvent.CLEAR)
    <StackerState.IDLE: 'idle'>
    >>> try:
    ...     transition(StackerState.WORKING, StackEvent.START)
    ... except SeestarRpcError as refused:
    ...     print(refused.code, refused.message)
    259 stack is already running
    """
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        code, text = _REFUSALS.get((state, event), _CANNOT_OPERATE)
        raise SeestarRpcError(event.method, code, text) from None


#: Cards a stack takes over from its first frame (device identity, site, optics).
_INHERITED = (
    "CREATOR",
    "PRODUCER",
    "FOCALLEN",
    "EQMODE",
    "PROGRAM",
    "XBINNING",
    "YBINNING",
    "XPIXSZ",
    "YPIXSZ",
)
_INHERITED_LATE = ("SITELONG", "SITELAT")


@attrs.define
class StackRun:
    """One batch stack, from start to its terminal state.

    Parameters
    ----------
    folder : str
        The folder it was configured with (``MyWorks/<target>_sub``).
    frames : tuple of str
        Full paths of the frames the device resolved.
    started : datetime
        Aware clock time of the start.
    setup_s, per_frame_s : float
        Timing: the run takes ``setup_s + per_frame_s * len(frames)`` seconds.
    rejected : int
        Frames the device will reject (the last ones).
    fail : tuple of (str, int) or None
        Injected failure text and code.
    stuck : bool
        Never leave ``working``.
    drop_companions, missing_radec : bool
        Write the output without JPEG companions / without ``RA`` and ``DEC``.
    blank_polls : int
        Status reads still to answer with state ``""``.
    headers : list of dict or None
        The kept frames' headers, once the device has read them while the run works (see
        :meth:`~crowdsky.adapters.device_model.fake.FakeSeestar.poll_events`); ``None`` until
        then, and the finish reads them itself.
    final, final_at : BatchStackStatus or None, datetime or None
        The terminal status and the clock time it was reached.
    """

    folder: str
    frames: tuple[str, ...]
    started: datetime
    setup_s: float
    per_frame_s: float
    rejected: int = 0
    fail: tuple[str, int] | None = None
    stuck: bool = False
    drop_companions: bool = False
    missing_radec: bool = False
    blank_polls: int = 0
    headers: list[dict[str, Any]] | None = None
    final: BatchStackStatus | None = None
    final_at: datetime | None = None

    @property
    def total(self) -> int:
        """Frames configured."""
        return len(self.frames)

    @property
    def kept(self) -> tuple[str, ...]:
        """Frames that will be stacked."""
        return self.frames[: max(0, self.total - self.rejected)]

    @property
    def duration(self) -> float:
        """Seconds from start to the end of the last frame."""
        return self.setup_s + self.per_frame_s * self.total

    def ending(self) -> tuple[float, tuple[str, int] | None] | None:
        """When the run ends and with which failure (``None`` = success); ``None`` if never."""
        if not self.frames:
            return 0.0, NO_IMAGE
        if self.fail is not None:
            return self.setup_s + self.per_frame_s * (self.total // 2), self.fail
        if self.stuck:
            return None
        return self.duration, (TOO_FEW_STARS if not self.kept else None)

    def next_change(self, elapsed: float) -> float | None:
        """Seconds after ``elapsed`` until the next frame is done or the run ends (``None``: never).

        Examples
        --------
        >>> run = StackRun("MyWorks/M 81_sub", ("a.fit", "b.fit"), datetime.now(UTC), 1.0, 2.0)
        >>> run.next_change(0.0), run.next_change(3.5), run.next_change(9.0)
        (3.0, 1.5, None)
        """
        ending = self.ending()
        if ending is None or elapsed >= ending[0]:
            return None
        end = ending[0]
        if self.per_frame_s > 0:
            step = math.floor(max(0.0, elapsed - self.setup_s) / self.per_frame_s) + 1
            end = min(end, self.setup_s + self.per_frame_s * step)
        return max(0.0, end - elapsed)

    def working(self, elapsed: float) -> BatchStackStatus:
        """The ``working`` status ``elapsed`` seconds after the start."""
        if self.stuck:
            elapsed = min(elapsed, self.setup_s + self.per_frame_s * (self.total // 2))
        done = 0
        if self.per_frame_s > 0:
            done = math.floor(max(0.0, elapsed - self.setup_s) / self.per_frame_s)
        done = min(done, self.total)
        percent = 100.0 * done / self.total if self.total else 0.0
        return BatchStackStatus(
            BatchStackState.WORKING,
            percent=round(min(percent, 99.0), 1),
            stacked_img=min(done, len(self.kept)),
            total_img=self.total,
            remaining_sec=round(max(0.0, self.duration - elapsed), 1),
        )

    def finish(self, status: BatchStackStatus, at: datetime) -> BatchStackStatus:
        """Fix the terminal ``status`` reached at clock time ``at``."""
        self.final, self.final_at = status, at
        return status

    def lapse_ms(self, now: datetime) -> int:
        """Milliseconds from start to ``now`` (or to the end, once it ended)."""
        end = self.final_at if self.final is not None and self.final_at else now
        return max(0, round((end - self.started) / timedelta(milliseconds=1)))


def output_name(frames: int, target: str, exposure_s: float, local: datetime) -> str:
    """``DSO_Stacked_<N>_<target>_<exp>s_<YYYYMMDD>_<HHMMSS>.fit`` (protocol reference §3.4).

    Examples
    --------
    >>> output_name(33, "M 81", 20.0, datetime(2026, 3, 11, 21, 35, 9))
    'DSO_Stacked_33_M 81_20.0s_20260311_213509.fit'
    """
    return f"DSO_Stacked_{frames}_{target}_{format_exposure(exposure_s)}_{local:%Y%m%d_%H%M%S}.fit"


def stack_target(folder: str, first_path: str, first_header: Mapping[str, Any]) -> str:
    """The target of a stack: from the first frame's name, else its ``OBJECT``, else the folder."""
    parsed = parse_raw_name(first_path.rsplit("/", 1)[-1])
    if parsed is not None:
        return parsed.target
    obj = first_header.get("OBJECT")
    if isinstance(obj, str) and obj.strip():
        return obj.strip()
    name = folder_name(folder)
    return target_of_sub_folder(name) or name


def _mean_pointing(headers: Sequence[Mapping[str, Any]]) -> tuple[float, float] | None:
    """Mean RA/DEC in degrees; RA averaged on the circle so 359.9 and 0.1 give 0.0."""
    points = []
    for header in headers:
        try:
            points.append((float(header["RA"]), float(header["DEC"])))
        except (KeyError, TypeError, ValueError):
            continue
    if not points:
        return None
    x = sum(math.cos(math.radians(ra)) for ra, _ in points)
    y = sum(math.sin(math.radians(ra)) for ra, _ in points)
    # Rounded before the modulo, so a mean a hair below 0 gives 0.0 rather than 360.0.
    ra = round(math.degrees(math.atan2(y, x)), 6) % 360.0
    dec = sum(dec for _, dec in points) / len(points)
    return ra, round(dec, 6)


def stack_image(
    headers: Sequence[Mapping[str, Any]],
    *,
    target: str,
    missing_radec: bool = False,
    stacked_at: datetime | None = None,
) -> FitsImage:
    """The 3-plane stacked image of frames with ``headers`` (in stacking order).

    ``STACKCNT`` is the number of frames, ``TOTALEXP`` their summed exposure, ``RA``/``DEC`` the
    mean pointing (left out when ``missing_radec``), ``DATE-OBS`` the earliest frame's, or the
    aware time ``stacked_at`` in UTC when given (:attr:`StackDateObs.STACKING_TIME`).
    """
    first = headers[0]
    exposure = float(first.get("EXPTIME", first.get("EXPOSURE", 0.0)))
    cards: dict[str, Any] = {k: first[k] for k in _INHERITED if k in first}
    cards.update(
        {
            "IMAGETYP": "Light",
            "STACKCNT": len(headers),
            "EXPOSURE": exposure,
            "EXPTIME": exposure,
        }
    )
    pointing = None if missing_radec else _mean_pointing(headers)
    if pointing is not None:
        cards["RA"], cards["DEC"] = pointing
    cards.update({k: first[k] for k in _INHERITED_LATE if k in first})
    dates = sorted(str(h["DATE-OBS"]) for h in headers if h.get("DATE-OBS"))
    if stacked_at is not None:
        cards["DATE-OBS"] = f"{stacked_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}"
    elif dates:
        cards["DATE-OBS"] = dates[0]
    for key in ("FILTER", "INSTRUME", "GAIN", "TELESCOP"):
        if key in first:
            cards[key] = first[key]
    cards["OBJECT"] = target
    cards["TOTALEXP"] = round(exposure * len(headers), 6)
    return FitsImage(cards, planes=3)


def wire_entry(status: BatchStackStatus, lapse_ms: int, dates: str = "") -> dict[str, Any]:
    """``status`` as the device's ``BatchStack`` app-state entry / event body (§4.2).

    Parameters
    ----------
    status : BatchStackStatus
        The status.
    lapse_ms : int
        Milliseconds since the start.
    dates : str
        The ``date`` of the output files (``complete`` only).
    """
    entry: dict[str, Any] = {"state": status.state.value, "lapse_ms": lapse_ms}
    if status.state in (BatchStackState.WORKING, BatchStackState.COMPLETE, BatchStackState.CANCEL):
        entry.update(
            percent=status.percent,
            frame_type="light",
            stacked_img=status.stacked_img,
            total_img=status.total_img,
            remaining_sec=status.remaining_sec,
            input_thn=None,
        )
    if status.state is BatchStackState.COMPLETE and status.output_folder:
        entry["output_file"] = {
            "path": status.output_folder,
            "files": [
                {"name": name, "date": dates, "thn": _thumbnail_of(name), "type": 0}
                for name in status.output_files
            ],
        }
    if status.state is BatchStackState.FAIL:
        entry.update(error=status.error, code=status.code)
    # No ``route``: real app-state replies carry none (a stage's events may; BatchStack's are
    # not known to be pushed at all, §4.2).
    return entry


def _thumbnail_of(name: str) -> str:
    if name.endswith("_thn.jpg"):
        return name
    return name.rsplit(".", 1)[0] + "_thn.jpg"
