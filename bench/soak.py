"""Fault soak: random nights, the real command line, random faults, then the invariants.

Run from the repository root::

    PYTHONPATH=src python bench/soak.py --runs 20 --seed 1 [--quick]

Each run lays down a seeded random night on a :class:`DirectoryStorage` (several targets, device
zones with odd offsets such as Asia/Kathmandu +5:45 and Pacific/Chatham +12:45, DST-change nights
in Europe/Vienna, 5/10/15/20/60-minute blocks, pre-existing current and legacy ``CrowdSky_*``
stacks and firmware ``DSO_Stacked_*`` stacks), serves it with the network simulator and starts a
loopback CrowdSky server, both in this process. It then runs ``crowdsky stack`` / ``upload`` /
``download`` as subprocesses (renames through ``--share``, the mounted-share path) while a driver
thread switches the simulator's transport faults, the device model's batch-stack faults and the
loopback server's faults on and off; some commands get SIGINT or SIGKILL at a random moment.
Then a clean re-run with every fault off, and the invariants (violation kinds in
:data:`VIOLATION_KINDS`).

Expected blocks are computed here, independently of the product, from the raw files'
``DATE-OBS`` (read with astropy): frames group by target, exposure, filter and the UTC block their
exposure started in (shared README, decisions 3 and 7); a block is eligible when
``frames × exposure >= min_exptime`` (the spec's rule). Simplifications: every night lies in the
past, so every block is complete (the settle-time rule never bites); the 15-minute chunk key is
computed here (``YYYYMMDD.CC``), other block lengths use the project's documented encoding
(:func:`crowdsky.domain.chunk_key`); legacy names are read in the device's zone by
:func:`crowdsky.domain.coverage_key_of`.

``run_soak`` is the importable core; ``tests/soak/test_soak_short.py`` runs a few seeds of it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from astropy.io import fits  # noqa: E402

from crowdsky.adapters.clock import SystemClock  # noqa: E402
from crowdsky.adapters.collab.loopback import LoopbackCrowdskyServer  # noqa: E402
from crowdsky.adapters.device_model.batch_stack import output_name, stack_image  # noqa: E402
from crowdsky.adapters.device_model.fake import FakeSeestar  # noqa: E402
from crowdsky.adapters.device_model.faults import Faults  # noqa: E402
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER  # noqa: E402
from crowdsky.adapters.device_model.night import lay_down_session  # noqa: E402
from crowdsky.adapters.device_model.storage import DirectoryStorage  # noqa: E402
from crowdsky.adapters.device_model.sub_frames import Site, Target  # noqa: E402
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer  # noqa: E402
from crowdsky.domain import (  # noqa: E402
    chunk_key,
    coverage_key_of,
    crowdsky_name,
    format_exposure,
    healpix_pixel,
    parse_crowdsky_name,
)

USER, PASSWORD = "soak-user", "soak-password"

VIOLATION_KINDS = {
    "raw_changed": "a raw sub-frame (or its companion) changed, vanished or appeared",
    "block_missing": "an eligible block has no CrowdSky file after the clean re-run",
    "block_duplicate": "a block has two or more CrowdSky files",
    "wrong_frames": "a CrowdSky name's frame count disagrees with the block or the stack",
    "wrong_pixel": "a CrowdSky name's HEALPix pixel is not the sub-frames' RING/128 pixel",
    "unexpected_stack": "a CrowdSky file for no eligible block (wrong key, too little exposure)",
    "upload_missing": "a CrowdSky file on the device is not on the server",
    "upload_duplicate": "a CrowdSky file is on the server more than once",
    "download_corrupt": "a downloaded file differs from the server's copy",
    "leftover_part": "a *.part file left on the device, in the download folder or the journal",
    "stray_dso_stacked": "a DSO_Stacked_* output of this run's stacks was never renamed",
    "exit_status_lie": "exit 0 although the command's work was not all done",
    "clean_rerun_failed": "a command of the clean re-run (faults off) exited non-zero",
    "crash": "a traceback on stderr",
    "hang": "a command did not finish within the soak's time limit",
    "harness_error": "the soak itself failed (a bug here, or an unusable product state)",
}

TARGET_POOL = (
    Target("IC 434", 85.25, -2.46),
    Target("M 42", 83.82, -5.39),
    Target("M 81", 148.89, 69.07),
    Target("NGC 7000", 314.75, 44.53),
    Target("M 31", 10.68, 41.27),
)
SITES = {
    "Europe/Vienna": Site(48.21, 16.37),
    "Asia/Kathmandu": Site(27.72, 85.32),
    "Pacific/Chatham": Site(-43.95, -176.56),
    "America/New_York": Site(40.71, -74.01),
    "UTC": Site(51.48, 0.0),
}
BLOCK_MINUTES = (5, 10, 15, 15, 20, 60)
MIN_EXPTIMES = (0.0, 60.0, 120.0, 240.0)
SIGNAL_CHANCE = 0.35
CLI_TIMEOUT_S = 120.0


@attrs.frozen
class Violation:
    """One broken invariant: its kind, the run's seed and what was seen."""

    kind: str
    seed: int
    detail: str


@attrs.define
class SoakReport:
    """What a soak saw: runs, faults injected by kind, violations."""

    runs: int = 0
    faults: Counter[str] = attrs.field(factory=Counter)
    violations: list[Violation] = attrs.field(factory=list)

    def by_kind(self) -> dict[str, list[Violation]]:
        """Violations grouped by kind, in the order of :data:`VIOLATION_KINDS`."""
        grouped: dict[str, list[Violation]] = {}
        for v in self.violations:
            grouped.setdefault(v.kind, []).append(v)
        return {k: grouped[k] for k in VIOLATION_KINDS if k in grouped}

    def render(self, examples: int = 3) -> str:
        """The printed summary."""
        lines = [f"runs: {self.runs}", "faults injected:"]
        lines += [f"  {kind:28s} {n}" for kind, n in sorted(self.faults.items())]
        lines.append(f"violations: {len(self.violations)}")
        for kind, found in self.by_kind().items():
            lines.append(f"  {kind:28s} {len(found)}  ({VIOLATION_KINDS[kind]})")
            lines += [f"      seed {v.seed}: {v.detail}" for v in found[:examples]]
        return "\n".join(lines)


# --- the night ---------------------------------------------------------------------------------


@attrs.frozen
class Night:
    """A laid-down night: where it is and how the commands must plan it."""

    root: Path
    zone: str
    report_zone: bool
    pass_tz: bool
    block_minutes: int
    min_exptime: float
    preexisting_dso: frozenset[str]


def _night_start(rng: random.Random, zone: str) -> datetime:
    if zone == "Europe/Vienna" and rng.random() < 0.7:
        # A DST-change night: the clocks change at 01:00 UTC on the last Sunday of Mar/Oct.
        day = rng.choice((datetime(2025, 3, 30, tzinfo=UTC), datetime(2025, 10, 26, tzinfo=UTC)))
        return day + timedelta(minutes=rng.uniform(-20, 50))
    day = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(360))
    local_evening = timedelta(hours=rng.uniform(20.0, 23.5))
    offset = day.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return day + local_evening - offset


def lay_down(rng: random.Random, root: Path, *, quick: bool) -> tuple[FakeSeestar, Night]:
    """A random night on a fresh ``DirectoryStorage`` under ``root``."""
    zone = rng.choice(tuple(SITES))
    device = FakeSeestar(
        clock=SystemClock(),
        zone=zone,
        report_zone=rng.random() < 0.7,
        storage=DirectoryStorage(root),
        seconds_per_frame=0.002,
        setup_seconds=0.05,
    )
    start = _night_start(rng, zone)
    targets = rng.sample(TARGET_POOL, rng.randint(1, 2 if quick else 3))
    for target in targets:
        sessions = 1 if rng.random() < 0.8 else 2
        for _ in range(sessions):
            frames = rng.randint(10, 40) if quick else rng.randint(30, 160)
            exposure = rng.choice((10.0, 20.0, 30.0))
            gaps = {rng.randrange(frames): rng.uniform(60, 900) for _ in range(rng.randint(0, 2))}
            lay_down_session(
                device,
                target,
                first_date_obs=start + timedelta(seconds=rng.randrange(0, 1800)),
                frames=frames,
                exposure_s=exposure,
                filter=rng.choice(("LP", "IRCUT")),
                gaps=gaps,
                site=SITES[zone],
                rng=rng,
            )
    block_minutes = rng.choice(BLOCK_MINUTES)
    min_exptime = rng.choice(MIN_EXPTIMES)
    night = Night(
        root, zone, device.report_zone, rng.random() < 0.3, block_minutes, min_exptime, frozenset()
    )
    dso = _preexisting_stacks(rng, device, night)
    return device, attrs.evolve(night, preexisting_dso=frozenset(dso))


def _put_stack(device: FakeSeestar, path: str, headers: list[dict[str, Any]], target: str) -> None:
    device.storage.put(path, stack_image(headers, target=target))
    stem = path.removesuffix(".fit")
    device.storage.put(f"{stem}.jpg", JPEG_PLACEHOLDER)
    device.storage.put(f"{stem}_thn.jpg", JPEG_PLACEHOLDER)


def _preexisting_stacks(rng: random.Random, device: FakeSeestar, night: Night) -> list[str]:
    """Current and legacy CrowdSky stacks of some eligible blocks, and firmware stacks."""
    tz = ZoneInfo(night.zone)
    dso = []
    for block in expected_blocks(night.root, night.block_minutes, night.min_exptime).values():
        headers = [h for _, h in block.frames]
        roll = rng.random()
        if roll < 0.15:
            pixel = healpix_pixel(block.ra, block.dec)
            name = crowdsky_name(
                frames=len(headers), target=block.target, exposure_s=block.exposure_s,
                filter=block.filter, chunk_key=block.chunk_key, pixel=pixel,
            )  # fmt: skip
        elif roll < 0.3 and night.block_minutes == 15 and _unambiguous(block.start, tz):
            local = block.start.astimezone(tz)
            name = (
                f"CrowdSky_{len(headers)}_{block.target}_{format_exposure(block.exposure_s)}_"
                f"{block.filter}_{local:%Y%m%d-%H%M%S}.fit"
            )
        elif roll < 0.4:
            made = block.end.astimezone(tz).replace(tzinfo=None) + timedelta(minutes=3)
            name = output_name(len(headers), block.target, block.exposure_s, made)
            dso.append(name)
        else:
            continue
        _put_stack(device, f"MyWorks/{block.target}/{name}", headers, block.target)
    return dso


def _unambiguous(moment: datetime, tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz).replace(tzinfo=None)
    return all(
        local.replace(tzinfo=tz, fold=f).astimezone(UTC) == moment.astimezone(UTC) for f in (0, 1)
    )


# --- what must come out, computed independently -----------------------------------------------


@attrs.frozen
class ExpectedBlock:
    """An eligible block, from the raw headers."""

    target: str
    exposure_s: float
    filter: str
    start: datetime
    end: datetime
    chunk_key: str
    ra: float
    dec: float
    frames: tuple[tuple[str, dict[str, Any]], ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Target, exposure text, filter and chunk key: what a CrowdSky name carries."""
        return (self.target, format_exposure(self.exposure_s), self.filter, self.chunk_key)


def _own_chunk_key(start: datetime, block_minutes: int) -> str:
    if block_minutes != 15:
        return chunk_key(start, block_minutes)  # the project's documented encoding
    index = (start.hour * 60 + start.minute) // 15
    return f"{start:%Y%m%d}.{index:02d}"


def raw_headers(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, header)`` of every raw ``.fit`` in the ``*_sub`` folders."""
    for path in sorted((root / "MyWorks").glob("*_sub/*.fit")):
        yield path.name, dict(fits.getheader(path, 0))


def expected_blocks(
    root: Path, block_minutes: int, min_exptime: float
) -> dict[tuple[str, str, str, str], ExpectedBlock]:
    """Eligible blocks keyed like CrowdSky names (target, exposure, filter, chunk key)."""
    groups: dict[tuple[str, float, str, datetime], list[tuple[str, dict[str, Any]]]] = {}
    length = timedelta(minutes=block_minutes)
    for name, header in raw_headers(root):
        started = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=UTC)
        midnight = started.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight + ((started - midnight) // length) * length
        key = (str(header["OBJECT"]), float(header["EXPTIME"]), str(header["FILTER"]), start)
        groups.setdefault(key, []).append((name, header))
    blocks = {}
    for (target, exposure, filt, start), frames in groups.items():
        if len(frames) * exposure < min_exptime:
            continue
        first = frames[0][1]
        block = ExpectedBlock(
            target, exposure, filt, start, start + length, _own_chunk_key(start, block_minutes),
            float(first["RA"]), float(first["DEC"]), tuple(frames),
        )  # fmt: skip
        blocks[block.key] = block
    return blocks


# --- faults ------------------------------------------------------------------------------------


class FaultDriver:
    """Switches faults on and off at random moments while a command runs; counts them by kind."""

    def __init__(
        self,
        rng: random.Random,
        sim: SimulatorServer,
        server: LoopbackCrowdskyServer,
        counts: Counter[str],
        *,
        quick: bool,
    ) -> None:
        self.rng, self.sim, self.server, self.counts, self.quick = rng, sim, server, counts, quick
        self.clean_options = sim.options
        self.rejected = 0
        self.truncating = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FaultDriver:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="soak-faults")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.all_off()

    def all_off(self) -> None:
        """Every fault off: the simulator's options, the device's and the server's faults."""
        self.sim.options = self.clean_options
        self.sim.device.faults = Faults()
        faults = self.server.faults
        faults.fail_next = faults.fail_after_upload = 0
        faults.fail_endpoint.clear()
        faults.delay = 0.0
        faults.truncate_downloads = faults.login_redirect = False
        faults.bare_text_errors = faults.legacy_upload_answer = False

    def _loop(self) -> None:
        while not self._stop.wait(self.rng.uniform(0.05, 0.4)):
            if self.rng.random() < 0.25:
                self.all_off()
                continue
            self._inject()

    def _inject(self) -> None:
        actions = self._actions()
        kind = self.rng.choice(sorted(actions))
        actions[kind]()
        self.counts[kind] += 1

    def _actions(self) -> dict[str, Callable[[], None]]:
        rng, sim, faults = self.rng, self.sim, self.server.faults

        def options(**changes: Any) -> Callable[[], None]:
            return lambda: setattr(sim, "options", attrs.evolve(sim.options, **changes))

        def device(**changes: Any) -> Callable[[], None]:
            def apply() -> None:
                sim.device.faults = attrs.evolve(sim.device.faults, **changes)
                self.rejected = max(self.rejected, int(changes.get("reject_frames", 0)))

            return apply

        def server(name: str, value: Any) -> Callable[[], None]:
            def apply() -> None:
                setattr(faults, name, value)
                self.truncating |= name == "truncate_downloads" and bool(value)

            return apply

        def endpoint() -> None:
            name = rng.choice(("my_stacks", "upload_stack", "download_stack"))
            faults.fail_endpoint[name] = faults.fail_endpoint.get(name, 0) + rng.randint(1, 2)

        actions: dict[str, Callable[[], None]] = {
            "sim.drop_probability": options(drop_probability=rng.uniform(0.02, 0.2)),
            "sim.latency": options(latency=(0.0, rng.uniform(0.005, 0.05))),
            "sim.coalesce_and_split_off": options(coalesce_and_split=False),
            "sim.idle_drop": options(idle_drop_seconds=rng.uniform(0.3, 1.5)),
            "device.refuse_start": device(refuse_start=259),
            "device.fail_stack": device(fail_stack=("stack error, too few stars", 263)),
            "device.reject_frames": device(reject_frames=rng.randint(1, 3)),
            "device.drop_companions": device(drop_companions=True),
            "device.missing_radec": device(missing_radec=True),
            "server.fail_next": server("fail_next", rng.randint(1, 3)),
            "server.fail_endpoint": endpoint,
            "server.fail_after_upload": server("fail_after_upload", 1),
            "server.truncate_downloads": server("truncate_downloads", True),
            "server.delay": server("delay", rng.uniform(0.02, 0.2)),
            "server.bare_text_errors": server("bare_text_errors", True),
            "server.legacy_upload_answer": server("legacy_upload_answer", True),
            "server.login_redirect": server("login_redirect", True),
        }
        if not self.quick:
            # These cost a client timeout (10 s) each, too slow for --quick.
            actions["sim.half_open"] = options(half_open_after=rng.randint(1, 30))
            actions["sim.silent_batch_status"] = options(
                silent_methods=frozenset({"get_batch_stack_status"})
            )
        return actions


# --- commands ----------------------------------------------------------------------------------


@attrs.frozen
class CliResult:
    """How a command ended."""

    args: tuple[str, ...]
    returncode: int | None
    signal_sent: str | None
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        """Ended by SIGKILL (exempt from the exit-status checks)."""
        return self.signal_sent == "SIGKILL"

    def describe(self) -> str:
        """One line for a violation's details."""
        tail = (self.stderr.strip().splitlines() or [""])[-1][:200]
        sent = f" after {self.signal_sent}" if self.signal_sent else ""
        return f"`crowdsky {' '.join(self.args)}` rc={self.returncode}{sent}: {tail}"


def run_cli(
    args: Sequence[str], cwd: Path, *, signal_after: tuple[float, signal.Signals] | None = None
) -> CliResult:
    """Run ``python -m crowdsky.cli args`` with the soak's credentials; maybe signal it.

    The state folder (``$CROWDSKY_STATE_DIR``, the pending-stack journal) is ``cwd/state``: one
    per run, so the clean re-run sees what a killed command of the same run recorded.

    ``signal_after = (seconds, signal)`` sends the signal that long after the command's first
    line of output (so that it lands in the work, not in the interpreter's start-up).
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "CROWDSKY_USERNAME": USER,
        "CROWDSKY_PASSWORD": PASSWORD,
        "CROWDSKY_STATE_DIR": str(cwd / "state"),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "crowdsky.cli", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        out, err, code, sent = _watch(process, signal_after)
    return CliResult(tuple(args), code, sent, out, err)


def _watch(
    process: subprocess.Popen[str], signal_after: tuple[float, signal.Signals] | None
) -> tuple[str, str, int | None, str | None]:
    """Collect the output, send the signal, wait; ``code`` is None if it did not finish."""
    out: list[str] = []
    err: list[str] = []
    first_line = threading.Event()
    readers = [
        threading.Thread(target=_drain, args=(process.stdout, out, first_line), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, err, None), daemon=True),
    ]
    for reader in readers:
        reader.start()
    sent = None
    if signal_after is not None:
        delay, signum = signal_after
        first_line.wait(CLI_TIMEOUT_S)
        try:
            process.wait(delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signum)
            sent = signum.name
    code: int | None
    try:
        code = process.wait(CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = None
    for reader in readers:
        reader.join()
    return "".join(out), "".join(err), code, sent


def _drain(stream: Any, lines: list[str], first: threading.Event | None) -> None:
    for line in stream:
        lines.append(line)
        if first is not None:
            first.set()
    if first is not None:
        first.set()


# --- one run -----------------------------------------------------------------------------------


class Run:
    """One seeded soak run: servers, night, faulted phase, clean phase, invariants."""

    def __init__(self, seed: int, workdir: Path, report: SoakReport, *, quick: bool) -> None:
        self.seed, self.workdir, self.report, self.quick = seed, workdir, report, quick
        self.rng = random.Random(seed)
        self.device_root = workdir / "device"
        self.dest = workdir / "downloads"
        self.fetched = workdir / "fetched"
        self.signals: list[str] = []

    def violation(self, kind: str, detail: str) -> None:
        """Record a broken invariant."""
        self.report.violations.append(Violation(kind, self.seed, detail))

    def execute(self) -> None:
        """Lay down the night, run the commands, check."""
        device, self.night = lay_down(self.rng, self.device_root, quick=self.quick)
        self.expected = expected_blocks(
            self.device_root, self.night.block_minutes, self.night.min_exptime
        )
        raw_before = hash_raw(self.device_root)
        options = SimulatorOptions(seed=self.seed, batch_poll_interval=0.05)
        with (
            SimulatorServer(device, self.device_root, options) as sim,
            LoopbackCrowdskyServer(self.workdir / "server", {USER: PASSWORD}) as server,
        ):
            self.sim, self.server = sim, server
            driver = FaultDriver(
                random.Random(f"faults:{self.seed}"), sim, server, self.report.faults,
                quick=self.quick,
            )  # fmt: skip
            self.faulted_phase(driver)
            driver.all_off()
            self.clean_phase(driver)
            self.check(raw_before, driver)

    # --- phases ---

    def stack_args(self) -> list[str]:
        """``crowdsky stack`` against the simulator, renames through the share."""
        args = ["stack", *self.device_args(), "--block-minutes", str(self.night.block_minutes)]
        args += ["--min-exptime", str(self.night.min_exptime)]
        return args + (["--tz", self.night.zone] if self.night.pass_tz else [])

    def device_args(self) -> list[str]:
        """Where the simulated Seestar is."""
        return [
            "--host", "127.0.0.1", "--port", str(self.sim.rpc_port),
            "--http-port", str(self.sim.http_port), "--share", str(self.device_root),
        ]  # fmt: skip

    def upload_args(self) -> list[str]:
        """``crowdsky upload`` from the simulator to the loopback server."""
        return ["upload", *self.device_args(), "--url", self.server.url, "--dest", str(self.dest)]

    def download_args(self) -> list[str] | None:
        """``crowdsky download`` of up to three keys the server holds, or None."""
        keys = sorted({s["chunk_key"] for s in self.server.stacks})
        if not keys:
            return None
        chosen = self.rng.sample(keys, min(3, len(keys)))
        return ["download", *chosen, "--url", self.server.url, "--dest", str(self.fetched)]

    def faulted_phase(self, driver: FaultDriver) -> None:
        """Stack and upload (and maybe download) with faults switching and maybe a signal."""
        more: tuple[list[str], ...] = ([], ["download"])
        if not self.quick:
            more += (["stack", "upload"], ["upload", "download"])
        steps = ["stack", "upload", *self.rng.choice(more)]
        for step in steps:
            args = self.args_for(step)
            if args is None:
                continue
            signal_after = None
            if self.rng.random() < SIGNAL_CHANCE:
                signum = self.rng.choice((signal.SIGINT, signal.SIGKILL))
                signal_after = (self.rng.uniform(0.0, 1.5), signum)
            driver.truncating = False
            with driver:
                result = run_cli(args, self.workdir, signal_after=signal_after)
            self.check_result(result, clean=False)
            if result.signal_sent:
                self.signals.append(f"{result.signal_sent} to {step}")
            if result.returncode == 0 and not result.killed:
                self.check_done(step, result, truncating=driver.truncating)

    def args_for(self, step: str) -> list[str] | None:
        """The command line of a step."""
        if step == "stack":
            return self.stack_args()
        if step == "upload":
            return self.upload_args()
        return self.download_args()

    def clean_phase(self, driver: FaultDriver) -> None:
        """Faults off: stack, upload, and download again if a download was tried."""
        steps = ["stack", "upload"] + (["download"] if self.fetched.exists() else [])
        for step in steps:
            args = self.args_for(step)
            if args is None:
                continue
            result = run_cli(args, self.workdir)
            self.check_result(result, clean=True)
            if result.returncode == 0:
                self.check_done(step, result, truncating=False)

    # --- checks ---

    def check_result(self, result: CliResult, *, clean: bool) -> None:
        """Hang, crash and the clean re-run's exit status."""
        if result.returncode is None:
            self.violation("hang", result.describe())
            return
        if "Traceback (most recent call last)" in result.stderr and not _startup_interrupt(result):
            self.violation("crash", result.describe())
        if clean and result.returncode != 0:
            self.violation("clean_rerun_failed", result.describe())

    def check_done(self, step: str, result: CliResult, *, truncating: bool) -> None:
        """Exit 0 must mean the step's work is all done."""
        if step == "stack":
            missing = sorted(set(self.expected) - set(crowdsky_files(self.device_root, self.night)))
            if missing:
                self.violation("exit_status_lie", f"{result.describe()} but blocks {missing[:3]}"
                               f" ({len(missing)} in all) have no CrowdSky file")  # fmt: skip
        elif step == "upload":
            on_server = Counter(s["filename"] for s in self.server.stacks)
            absent = [n for n in device_crowdsky_names(self.device_root) if not on_server[n]]
            if absent:
                self.violation("exit_status_lie", f"{result.describe()} but {absent[:3]}"
                               f" ({len(absent)} in all) are not on the server")  # fmt: skip
        elif truncating:
            self.check_downloads(result, lie_kind="exit_status_lie")

    def check_downloads(self, result: CliResult, *, lie_kind: str = "download_corrupt") -> None:
        """Every downloaded file equals the server's copy of some stack."""
        stored = {file_hash(Path(s["path"])) for s in self.server.stacks}
        for path in sorted(self.fetched.glob("*")):
            if path.is_file() and not path.name.endswith(".part") and file_hash(path) not in stored:
                self.violation(lie_kind, f"{result.describe()}; {path.name} is not a server copy")

    def check(self, raw_before: dict[str, str], driver: FaultDriver) -> None:
        """The invariants after the clean re-run."""
        self.check_raw(raw_before)
        self.check_blocks(rejected=driver.rejected)
        self.check_uploads()
        self.check_temporaries()
        if self.fetched.exists():
            self.check_downloads(CliResult(("download",), 0, None, "", ""))

    def check_raw(self, raw_before: dict[str, str]) -> None:
        """Every file in the ``*_sub`` folders is still there, byte for byte, and no new one."""
        raw_after = hash_raw(self.device_root)
        for name in sorted(set(raw_before) | set(raw_after)):
            if raw_before.get(name) != raw_after.get(name):
                state = "gone" if name not in raw_after else "new" if name not in raw_before else (
                    "changed")  # fmt: skip
                self.violation("raw_changed", f"{name} {state}")

    def check_blocks(self, *, rejected: int) -> None:
        """One right CrowdSky file per eligible block, none for anything else."""
        found = crowdsky_files(self.device_root, self.night)
        for key, paths in sorted(found.items()):
            block = self.expected.get(key)
            if block is None:
                self.violation("unexpected_stack", f"{[p.name for p in paths]} (key {key})")
                continue
            if len(paths) > 1:
                self.violation("block_duplicate", f"{key}: {[p.name for p in paths]}")
            for path in paths:
                self.check_file(path, block, rejected=rejected)
        for key in sorted(set(self.expected) - set(found)):
            self.violation("block_missing", f"{key} ({len(self.expected[key].frames)} frames)")

    def check_file(self, path: Path, block: ExpectedBlock, *, rejected: int) -> None:
        """Frame count and pixel of one CrowdSky file against its block."""
        parsed = parse_crowdsky_name(path.name)
        assert parsed is not None
        frames = len(block.frames)
        stacked = fits.getheader(path, 0).get("STACKCNT")
        # The device may have rejected up to ``rejected`` frames (an injected fault); then the
        # name must carry what it stacked. A bigger shortfall is a frame lost before stacking.
        right = parsed.frames == frames or (
            parsed.frames == stacked and frames - rejected <= parsed.frames < frames
        )
        if not right:
            self.violation(
                "wrong_frames", f"{path.name}: block has {frames}, stack has {stacked} frames"
            )
        if parsed.pixel is not None and parsed.pixel != healpix_pixel(block.ra, block.dec):
            self.violation(
                "wrong_pixel", f"{path.name}: expected HP{healpix_pixel(block.ra, block.dec):06d}"
            )

    def check_uploads(self) -> None:
        """Every CrowdSky file on the device is on the server exactly once."""
        on_server = Counter(s["filename"] for s in self.server.stacks)
        for name in device_crowdsky_names(self.device_root):
            if on_server[name] == 0:
                self.violation("upload_missing", name)
            elif on_server[name] > 1:
                self.violation("upload_duplicate", f"{name} stored {on_server[name]} times")

    def check_temporaries(self) -> None:
        """No ``*.part`` anywhere, no unrenamed ``DSO_Stacked_*`` of this run's stacks."""
        for base in (self.device_root, self.dest, self.fetched):
            for path in sorted(base.rglob("*.part")) if base.exists() else []:
                self.violation("leftover_part", str(path.relative_to(self.workdir)))
        for path in sorted((self.device_root / "MyWorks").glob("*/DSO_Stacked_*.fit")):
            if path.name not in self.night.preexisting_dso:
                signals = ", ".join(self.signals) or "no signal sent"
                self.violation(
                    "stray_dso_stacked", f"{path.parent.name}/{path.name} (run: {signals})"
                )


def _startup_interrupt(result: CliResult) -> bool:
    """A SIGINT that landed before the command started (interpreter start-up, imports)."""
    lines = result.stderr.strip().splitlines()
    return (
        result.signal_sent == "SIGINT" and not result.stdout and lines[-1:] == ["KeyboardInterrupt"]
    )


def file_hash(path: Path) -> str:
    """SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hash_raw(root: Path) -> dict[str, str]:
    """SHA-256 of every file in the ``*_sub`` folders (sub-frames and companions)."""
    return {
        str(p.relative_to(root)): file_hash(p)
        for p in sorted((root / "MyWorks").glob("*_sub/*"))
        if p.is_file()
    }


def device_crowdsky_names(root: Path) -> list[str]:
    """Names of the ``CrowdSky_*.fit`` files in the target folders."""
    return sorted(p.name for p in (root / "MyWorks").glob("*/CrowdSky_*.fit"))


def crowdsky_files(root: Path, night: Night) -> dict[tuple[str, str, str, str], list[Path]]:
    """The device's CrowdSky ``.fit`` files by the block they cover."""
    tz = ZoneInfo(night.zone)
    found: dict[tuple[str, str, str, str], list[Path]] = {}
    for path in sorted((root / "MyWorks").glob("*/CrowdSky_*.fit")):
        parsed = parse_crowdsky_name(path.name)
        if parsed is None:
            found.setdefault(("unparseable", path.name, "", ""), []).append(path)
            continue
        cov = coverage_key_of(parsed, tz)
        found.setdefault((cov.target, cov.exposure, cov.filter, cov.chunk_key), []).append(path)
    return found


# --- the soak ----------------------------------------------------------------------------------


def run_soak(
    runs: int,
    seed: int,
    *,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    deadline: float | None = None,
    report: SoakReport | None = None,
) -> SoakReport:
    """Run ``runs`` seeded soak runs (seeds ``seed``, ``seed + 1``, ...); return the report.

    Parameters
    ----------
    runs : int
        Number of runs.
    seed : int
        Seed of the first run.
    quick : bool
        Small nights and only the faults that cost no client timeout.
    progress : callable, optional
        Called with one line per run.
    deadline : float, optional
        ``time.monotonic()`` value after which no new run starts.
    report : SoakReport, optional
        Where to add the results (a fresh report by default); it holds the runs done so far
        if the soak is interrupted.
    """
    report = report if report is not None else SoakReport()
    for number in range(runs):
        if deadline is not None and time.monotonic() > deadline:
            break
        run_seed = seed + number
        before = len(report.violations)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"soak-{run_seed}-") as tmp:
            run = Run(run_seed, Path(tmp), report, quick=quick)
            try:
                run.execute()
            except Exception as exc:  # a soak reports, it does not stop
                where = traceback.extract_tb(exc.__traceback__)[-1]
                report.violations.append(
                    Violation(
                        "harness_error",
                        run_seed,
                        f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})",
                    )
                )
        report.runs += 1
        if progress is not None:
            night = getattr(run, "night", None)
            shape = f"{night.zone} {night.block_minutes} min" if night else "?"
            progress(
                f"run seed={run_seed} ({shape}): {len(report.violations) - before} violation(s) "
                f"in {time.monotonic() - started:.1f} s"
            )
            for found in report.violations[before:]:  # at once: a long soak may be cut short
                progress(f"    {found.kind}: {found.detail}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--runs N --seed S [--quick] [--minutes M]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small nights, fast faults only")
    parser.add_argument("--minutes", type=float, help="start no new run after this long")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per kind")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    report = SoakReport()
    with contextlib.suppress(KeyboardInterrupt):
        run_soak(
            args.runs, args.seed, quick=args.quick, deadline=deadline,
            progress=lambda line: print(line, flush=True), report=report,
        )  # fmt: skip
    print(report.render(args.examples))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
