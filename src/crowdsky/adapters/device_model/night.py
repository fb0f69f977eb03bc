"""Observing nights laid down on a device model: raw sub-frames as a Seestar writes them.

Every sub is ``MyWorks/<target>_sub/Light_<target>_<exp>s_<filter>_<YYYYMMDD-HHMMSS>.fit`` with
its ``.jpg`` and ``_thn.jpg`` companions. The name carries the device's *local* wall-clock time
at save time, ``exposure + save_delay`` after the exposure started; the header's ``DATE-OBS`` is
the UTC start (protocol reference §3.5: a 10 s sub is named about 14 s after its ``DATE-OBS``).
Time runs in UTC here and is turned into local names with ``zoneinfo``, so a fall-back night
gives two passes of the same-looking local hour and a spring-forward night none of the skipped one.

:func:`demo_seestar` builds the demonstration telescope of :func:`crowdsky.use_simulator`: the
spec's IC 434, M 42 and M 81 folders. Everything is deterministic (seeded ``random.Random``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.batch_stack import output_name, stack_image
from crowdsky.adapters.device_model.fake import FakeSeestar, Faults
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER, FitsImage
from crowdsky.adapters.device_model.storage import DeviceStorage, MemoryStorage
from crowdsky.adapters.device_model.sub_frames import (
    DEMO_TARGETS,
    SAVE_DELAY_S,
    VIENNA,
    Site,
    Target,
    add_sub,
    sub_name,
)
from crowdsky.app.ports import Clock
from crowdsky.domain import (
    block_bounds,
    chunk_key,
    crowdsky_name,
    healpix_pixel,
    local_to_utc,
)
from crowdsky.domain.device_paths import device_path, sub_folder_of

__all__ = [
    "DEMO_NIGHT",
    "DEMO_TARGETS",
    "VIENNA",
    "Site",
    "Target",
    "add_sub",
    "demo_seestar",
    "lay_down_night",
    "lay_down_session",
]

_SLEW_S = 150.0


def lay_down_session(
    device: FakeSeestar,
    target: Target,
    *,
    first_date_obs: datetime,
    frames: int,
    exposure_s: float = 10.0,
    filter: str = "LP",
    overhead_s: float = 3.0,
    gaps: Mapping[int, float] | None = None,
    site: Site = VIENNA,
    rng: random.Random | None = None,
) -> list[str]:
    """Lay down ``frames`` subs of one target at a steady cadence.

    Parameters
    ----------
    device : FakeSeestar
        The device.
    target : Target
        What is observed.
    first_date_obs : datetime
        Aware UTC start of the first exposure (whole seconds keep name stamps regular).
    frames : int
        Number of subs, exactly.
    exposure_s, filter
        Exposure and filter of every sub.
    overhead_s : float
        Seconds between the end of one exposure and the start of the next.
    gaps : Mapping[int, float], optional
        Pauses (clouds, meridian flip): frame index → seconds lost before that frame.
    site : Site
        Observing site.
    rng : random.Random, optional
        Source of the sub-second part of ``DATE-OBS`` and the sensor temperature drift.

    Returns
    -------
    list of str
        Paths of the subs, in time order.
    """
    rng = rng or random.Random(0)
    gaps = gaps or {}
    cadence = timedelta(seconds=exposure_s + overhead_s)
    start = first_date_obs.astimezone(UTC)
    sensor = _Sensor(rng)
    paths = []
    for index in range(frames):
        start += timedelta(seconds=gaps.get(index, 0.0))
        paths.append(_lay_frame(device, target, exposure_s, filter, start, sensor, site))
        start += cadence
    return paths


class _Sensor:
    """The random parts of a frame: sub-second start jitter and a slowly drifting temperature."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.temp = 24.0 + rng.uniform(-3.0, 3.0)

    def next(self) -> tuple[timedelta, float]:
        # Jitter below 0.9 s leaves whole-second name stamps on the cadence.
        self.temp += self.rng.uniform(-0.05, 0.04)
        return timedelta(microseconds=self.rng.randrange(0, 900_000)), self.temp


def _lay_frame(
    device: FakeSeestar,
    target: Target,
    exposure_s: float,
    filter: str,
    start: datetime,
    sensor: _Sensor,
    site: Site,
) -> str:
    jitter, temp = sensor.next()
    date_obs = start + jitter
    # Two passes of a fall-back hour can stamp the same name; the later save lands a second on.
    while device.storage.exists(_path_for(device, target, exposure_s, filter, date_obs)):
        date_obs += timedelta(seconds=1)
    return add_sub(device, target, exposure_s, filter, date_obs, site=site, ccd_temp=temp)


def _path_for(
    device: FakeSeestar, target: Target, exposure_s: float, filter: str, date_obs: datetime
) -> str:
    saved = date_obs + timedelta(seconds=exposure_s + SAVE_DELAY_S)
    name = sub_name(device, target.name, exposure_s, filter, saved)
    return device_path(sub_folder_of(target.name), name)


def lay_down_night(
    device: FakeSeestar,
    *,
    start_local: datetime,
    hours: float,
    targets: Sequence[Target] = DEMO_TARGETS,
    exposures: Sequence[float] = (10.0, 20.0),
    filters: Sequence[str] = ("LP", "IRCUT"),
    overhead_s: float = 3.0,
    cloud_gaps: int = 2,
    meridian_flip_s: float = 240.0,
    site: Site = VIENNA,
    seed: int = 0,
) -> list[str]:
    """Lay down a night: the targets one after the other, with cloud and meridian-flip gaps.

    Parameters
    ----------
    device : FakeSeestar
        The device; its zone names the files.
    start_local : datetime
        Start of the night: naive device wall time (read as the first of a repeated hour), or
        aware.
    hours : float
        Length of the night; each target gets an equal share.
    targets : sequence of Target
        What is observed, in order.
    exposures, filters : sequence
        Each target's exposure and filter are drawn from these.
    overhead_s : float
        Seconds between exposures.
    cloud_gaps : int
        Number of cloudy spells (3 to 15 minutes each) at random times.
    meridian_flip_s : float
        Seconds lost to one meridian flip per target (0 for none).
    site : Site
        Observing site.
    seed : int
        Seed of the ``random.Random`` behind every choice.

    Returns
    -------
    list of str
        Paths of the subs, in time order.
    """
    rng = random.Random(seed)
    start = start_local if start_local.tzinfo else local_to_utc(start_local, device.tz)
    start = start.astimezone(UTC)
    end = start + timedelta(hours=hours)
    clouds = [_gap(rng, start, end, rng.uniform(180.0, 900.0)) for _ in range(cloud_gaps)]
    share = timedelta(hours=hours) / max(1, len(targets))
    paths: list[str] = []
    for number, target in enumerate(targets):
        begin, finish = start + number * share, start + (number + 1) * share
        if number:
            begin += timedelta(seconds=_SLEW_S)
        flip = [_gap(rng, begin, finish, meridian_flip_s)] if meridian_flip_s > 0 else []
        paths += _observe(
            device, target, begin, finish, clouds + flip, rng, exposures, filters, overhead_s, site
        )
    return paths


def _gap(
    rng: random.Random, start: datetime, end: datetime, seconds: float
) -> tuple[datetime, datetime]:
    span = max(0.0, (end - start).total_seconds() - seconds)
    begin = start + timedelta(seconds=rng.uniform(0.0, span))
    return begin, begin + timedelta(seconds=seconds)


def _observe(
    device: FakeSeestar,
    target: Target,
    begin: datetime,
    finish: datetime,
    gaps: Sequence[tuple[datetime, datetime]],
    rng: random.Random,
    exposures: Sequence[float],
    filters: Sequence[str],
    overhead_s: float,
    site: Site,
) -> list[str]:
    exposure, filter = rng.choice(list(exposures)), rng.choice(list(filters))
    cadence = timedelta(seconds=exposure + overhead_s)
    moment, paths, sensor = begin.replace(microsecond=0), [], _Sensor(rng)
    while moment + cadence <= finish:
        blocked = next((g for g in gaps if g[0] <= moment < g[1]), None)
        if blocked is not None:
            moment = blocked[1].replace(microsecond=0) + timedelta(seconds=1)
            continue
        paths.append(_lay_frame(device, target, exposure, filter, moment, sensor, site))
        moment += cadence
    return paths


#: The demo's sessions, in the device's local wall time: (target, first ``DATE-OBS``, frames,
#: exposure, filter, gaps). A frame belongs to the block its exposure starts in, so IC 434's
#: starts (every 13 s from 21:22:56) give exactly the spec's blocks 21:15-21:30 (33 frames),
#: 21:30-21:45 (69) and 21:45-22:00 (56); M 42's first exposure starts just after 20:15. The
#: totals are the spec's 158, 216 and 2053 subs.
DEMO_NIGHT: tuple[tuple[str, datetime, int, float, str, dict[int, float]], ...] = (
    ("M 81", datetime(2026, 2, 26, 22, 10, 24), 700, 20.0, "LP", {120: 240.0, 420: 900.0}),
    ("M 42", datetime(2026, 2, 27, 20, 15, 3), 216, 10.0, "IRCUT", {150: 300.0}),
    ("IC 434", datetime(2026, 2, 27, 21, 22, 56), 158, 10.0, "LP", {}),
    ("M 81", datetime(2026, 2, 27, 22, 5, 14), 1353, 10.0, "IRCUT", {300: 240.0, 900: 600.0}),
)


def demo_seestar(
    *,
    clock: Clock | None = None,
    now: datetime | None = None,
    zone: str = "Europe/Vienna",
    report_zone: bool = True,
    storage: DeviceStorage | None = None,
    seconds_per_frame: float = 0.0,
    setup_seconds: float = 0.0,
    firmware: str = "7.75",
    start_blank_polls: int = 0,
    faults: Faults | None = None,
    seed: int = 0,
    telescope: str = "S50_5eed0042",
) -> FakeSeestar:
    """A Seestar holding the spec's demo: IC 434, M 42 and M 81 with one stack each.

    The night of 2026-02-27 (and M 81 also the night before) is laid down in the device's local
    time (:data:`DEMO_NIGHT`). Each target folder holds one stack, so ``list_targets()`` shows
    ``stacked=1`` as in the spec: IC 434 a live stack, M 42 a ``CrowdSky_*`` stack of its first
    block (so that block counts as covered), M 81 a ``DSO_Stacked_*`` from a batch stack.

    Parameters
    ----------
    clock : Clock, optional
        The device's clock. By default a ``FakeClock`` set to ``now``.
    now : datetime, optional
        Aware start of the default fake clock; by default three hours after the last sub.
    zone, report_zone, storage, seconds_per_frame, setup_seconds, firmware
        Passed to :class:`~crowdsky.adapters.device_model.fake.FakeSeestar`.
    start_blank_polls, faults
        Passed to :class:`~crowdsky.adapters.device_model.fake.FakeSeestar`.
    seed : int
        Seed of the random sub-second times and sensor temperatures.
    telescope : str
        The ``TELESCOP`` of its frames (``S50_<serial>``): two demo Seestars with different
        values are two telescopes to the CrowdSky server.

    Returns
    -------
    FakeSeestar
    """
    fake_clock = FakeClock(now or datetime(2026, 2, 28, 6, 0, tzinfo=UTC))
    # Built in memory, where headers read back instantly, then copied to the chosen storage.
    memory = MemoryStorage()
    device = FakeSeestar(
        clock=clock or fake_clock,
        zone=zone,
        report_zone=report_zone,
        storage=memory,
        seconds_per_frame=seconds_per_frame,
        setup_seconds=setup_seconds,
        firmware=firmware,
        start_blank_polls=start_blank_polls,
        faults=faults,
        telescope=telescope,
    )
    rng = random.Random(seed)
    positions = {t.name: t for t in DEMO_TARGETS}
    laid: dict[str, list[str]] = {}
    for name, first, frames, exposure, filter, gaps in DEMO_NIGHT:
        laid.setdefault(name, []).extend(
            lay_down_session(
                device,
                positions[name],
                first_date_obs=local_to_utc(first, device.tz),
                frames=frames,
                exposure_s=exposure,
                filter=filter,
                gaps=gaps,
                rng=rng,
            )
        )
    _demo_stacks(device, laid)
    if storage is not None:
        for path, content in memory.items():
            storage.put(path, content)
        device.storage = storage
    if clock is None and now is None:
        last = max(device.read_header(paths[-1])["DATE-OBS"] for paths in laid.values())
        fake_clock.set(datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(hours=3))
    return device


def _put_stack(device: FakeSeestar, path: str, image: FitsImage) -> None:
    device.storage.put(path, image)
    stem = path.removesuffix(".fit")
    device.storage.put(f"{stem}.jpg", JPEG_PLACEHOLDER)
    device.storage.put(f"{stem}_thn.jpg", JPEG_PLACEHOLDER)


def _demo_stacks(device: FakeSeestar, laid: Mapping[str, Sequence[str]]) -> None:
    """One stack per target: a live stack, a CrowdSky block stack and a firmware batch stack."""
    ic = laid["IC 434"]
    headers = [device.read_header(p) for p in ic]
    saved = device.local_time(_name_utc(device, ic[-1]) + timedelta(seconds=5))
    live = f"Stacked_{len(ic)}_IC 434_10.0s_LP_{saved:%Y%m%d-%H%M%S}.fit"
    _put_stack(device, device_path("IC 434", live), stack_image(headers, target="IC 434"))

    # The block the first exposure starts in, the key the server derives from the stack's
    # DATE-OBS (its earliest frame's).
    m42 = laid["M 42"]
    start, end = block_bounds(_exposure_start(device, m42[0]))
    block = [p for p in m42 if start <= _exposure_start(device, p) < end]
    image = stack_image([device.read_header(p) for p in block], target="M 42")
    pixel = healpix_pixel(float(image.cards["RA"]), float(image.cards["DEC"]))
    name = crowdsky_name(
        frames=len(block),
        target="M 42",
        exposure_s=10.0,
        filter="IRCUT",
        chunk_key=chunk_key(start),
        pixel=pixel,
    )
    _put_stack(device, device_path("M 42", name), image)

    m81 = laid["M 81"][:33]
    image = stack_image([device.read_header(p) for p in m81], target="M 81")
    made = datetime(2026, 2, 27, 10, 15, 4)
    _put_stack(device, device_path("M 81", output_name(len(m81), "M 81", 20.0, made)), image)


def _exposure_start(device: FakeSeestar, path: str) -> datetime:
    """The UTC start of a sub's exposure: its ``DATE-OBS``."""
    return datetime.fromisoformat(device.read_header(path)["DATE-OBS"]).replace(tzinfo=UTC)


def _name_utc(device: FakeSeestar, path: str) -> datetime:
    """The UTC moment a sub's name stands for (its save time), from its ``DATE-OBS``."""
    header = device.read_header(path)
    start = _exposure_start(device, path)
    return start + timedelta(seconds=float(header["EXPTIME"]) + SAVE_DELAY_S)
