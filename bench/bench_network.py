"""Measure NetworkSeestar against the simulator on loopback: a 3000-file listing, a block stack.

Run: ``python bench/bench_network.py`` (``... 10``: a 10-block night; ``... transfers``: only the
Seestar-side downloads against a raw-socket client; ``... night [blocks]``: only the night of
issue 12, with and without pushed events, ``... night [blocks] wire`` the same with the 20 ms as
the link's round trip rather than the device's time per request, ``pages`` in either listing the
folders in JSON-RPC pages rather than through the (charged) share; ``... inventory``: only
planning's header reads against the listing alone). Prints one line per measurement: the listing
of one folder of 3 000 files (150 pages of 20) with the simulator's split writes off and on, one
full block round trip (clear, configure 33 frames, start, poll to ``complete``, rename the
``.fit`` and its companions) on an instant device, authenticated as firmware 7.75 requires, and
planning's inventory of a 3 000-sub night (listing plus the headers of the frames near block
boundaries, :func:`~crowdsky.app.inventory.load_target`) against the issue's yardstick, the
paged listing alone: as the app runs it (listed through the share, then the headers), without
the header cache, cold (the first run, no file yet) and warm (the next run, every header known),
and listed in pages too (headers read while the pages arrive, and after them); the simulator in
a child process (as a real Seestar is another machine) or in this one, and once with 5 ms
before each reply.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.header_cache import HEADER_CACHE_NAME, JsonHeaderCache
from crowdsky.adapters.jsonrpc import ABSENT, JsonRpcConnection, RsaAuthenticator
from crowdsky.adapters.seestar.file_ops import MountedShareFileOps
from crowdsky.adapters.seestar.http_files import HttpFiles
from crowdsky.adapters.seestar.network import NetworkSeestar
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.http_server import FileServer
from crowdsky.app.inventory import load_target
from crowdsky.app.ports import FileEntry
from crowdsky.app.service import Crowdsky

FILES = 3000
FRAMES = 33
REPEATS = 5
#: The inventory's runs each (its cold and no-cache medians need more: single runs scatter).
INVENTORY_REPEATS = 11


def _seestar(sim: SimulatorServer, key: Path, root: Path) -> NetworkSeestar:
    return NetworkSeestar(
        sim.host,
        port=sim.rpc_port,
        http_port=sim.http_port,
        key_path=key,
        mounted_share=root,
        timeout=30.0,
    )


def listing(base: Path, key: Path, public: bytes, split: bool) -> None:
    root = base / f"listing-{split}"
    device = FakeSeestar(storage=DirectoryStorage(root))
    folder = root / "MyWorks" / "Big_sub"
    folder.mkdir(parents=True)
    for i in range(FILES):
        (folder / f"Light_Big_10.0s_LP_20260227-{i:06d}.fit").write_bytes(b"x" * 4096)
    options = SimulatorOptions(auth_public_key=public, coalesce_and_split=split)
    with SimulatorServer(device, root, options=options) as sim, _seestar(sim, key, root) as s:
        s.connect()
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            count = len(s.list_files("Big_sub"))
            times.append(time.perf_counter() - start)
    assert count == FILES
    print(
        f"list_files, {FILES} files / {FILES // 20} pages, split writes {'on' if split else 'off'}:"
        f" median {statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms"
    )


def block_round_trip(base: Path, key: Path, public: bytes, split: bool) -> None:
    root = base / f"stack-{split}"
    device = FakeSeestar(clock=SystemClock(), storage=DirectoryStorage(root))
    start_utc = datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC)
    paths = [
        add_sub(device, "IC 434", 10.0, "LP", start_utc + i * timedelta(seconds=27), 85.25, -2.46)
        for i in range(FRAMES)
    ]
    options = SimulatorOptions(auth_public_key=public, coalesce_and_split=split)
    with SimulatorServer(device, root, options=options) as sim, _seestar(sim, key, root) as s:
        s.connect()
        times = []
        for n in range(REPEATS):
            start = time.perf_counter()
            s.clear_batch_stack()
            s.configure_batch_stack("IC 434_sub", paths)
            s.start_batch_stack()
            while True:
                status = s.batch_stack_status()
                if status is not None and status.terminal:
                    break
                s.wait_batch_stack_event(0.05)
            assert status.state == "complete", status
            fit = status.output_fit
            assert fit is not None
            stem = fit.rsplit("/", 1)[1].removesuffix(".fit")
            new = f"CrowdSky_{FRAMES}_IC 434_10.0s_LP_20260227.{81 + n}_HP102265"
            for suffix in (".fit", ".jpg", "_thn.jpg"):
                s.rename(f"MyWorks/IC 434/{stem}{suffix}", new + suffix)
            s.clear_batch_stack()
            times.append(time.perf_counter() - start)
    print(
        f"one block round trip ({FRAMES} frames, instant device), split writes "
        f"{'on' if split else 'off'}: median {statistics.median(times) * 1000:.0f} ms, "
        f"best {min(times) * 1000:.0f} ms"
    )


# --- issue 12: the time between blocks and a whole night, at 20 ms per JSON-RPC reply ---------

LATENCY = 0.02
NIGHT_BLOCKS = 47
NIGHT_FRAMES = 30  # frames per 15-minute block (300 s of 10 s subs)
SECONDS_PER_FRAME = 0.1


class _CountingConnection(JsonRpcConnection):
    """A JSON-RPC connection that counts the requests it sends."""

    sent = 0

    def call(self, method: str, params: object = ABSENT, **kwargs: Any) -> Any:
        self.sent += 1
        return super().call(method, params, **kwargs)


#: What a directory listing over SMB2 costs on a real share, for :class:`_ShareOverALink`:
#: QUERY_DIRECTORY replies of up to 64 KiB, some 200 bytes an entry (the fixed part of a
#: FileIdBothDirectoryInformation record is 104 bytes, plus the name in UTF-16 and padding).
SMB_REPLY_BYTES = 64 * 1024
SMB_ENTRY_BYTES = 200


class _ShareOverALink(MountedShareFileOps):
    """The mounted share, charged like an SMB share ``LATENCY`` away.

    The night's share is a local folder, which would make listing through it free. Each
    ``list`` waits a round trip for CREATE and one for CLOSE of the folder, plus one per
    QUERY_DIRECTORY reply (:data:`SMB_REPLY_BYTES` at :data:`SMB_ENTRY_BYTES` an entry, and
    one more reply that says there are no more); each rename, delete and existence check one
    round trip.
    """

    def list(self, folder: str) -> list[FileEntry]:
        found = super().list(folder)
        per_reply = SMB_REPLY_BYTES // SMB_ENTRY_BYTES
        replies = -(-len(found) // per_reply) + 1
        time.sleep((2 + replies) * LATENCY)
        return found

    def rename(self, path: str, new_name: str) -> None:
        time.sleep(LATENCY)
        super().rename(path, new_name)

    def delete(self, path: str) -> None:
        time.sleep(LATENCY)
        super().delete(path)

    def exists(self, path: str) -> bool:
        time.sleep(LATENCY)
        return super().exists(path)


def _night_device(root: Path, blocks: int, frames: int) -> FakeSeestar:
    device = FakeSeestar(
        clock=SystemClock(),
        zone="Europe/Vienna",
        storage=DirectoryStorage(root),
        seconds_per_frame=SECONDS_PER_FRAME,
    )
    first = datetime(2026, 2, 27, 18, 0, 5, tzinfo=UTC)
    for b in range(blocks):
        start = first + b * timedelta(minutes=15)
        for i in range(frames):
            add_sub(device, "IC 434", 10.0, "LP", start + i * timedelta(seconds=27), 85.25, -2.46)
    return device


def night(
    base: Path,
    key: Path,
    public: bytes,
    pushed: bool,
    blocks: int,
    frames: int,
    wire: bool,
    pages: bool = False,
) -> None:
    """stack_blocks over ``blocks`` blocks; wall time against the device's own stacking time.

    ``wire``: the 20 ms are the link's round trip (``wire_delay``: requests sent back to back
    overlap it) instead of the device's time per request (``latency``: they queue for it).
    The share is charged like one over that link (:class:`_ShareOverALink`); ``pages``: folders
    are listed in JSON-RPC pages rather than through the share.
    """
    root = base / f"night-{pushed}-{blocks}"
    device = _night_device(root, blocks, frames)
    options = SimulatorOptions(
        auth_public_key=public,
        coalesce_and_split=False,
        push_batch_events=pushed,
        latency=(0.0, 0.0) if wire else (LATENCY, LATENCY),
        wire_delay=LATENCY if wire else 0.0,
    )
    with SimulatorServer(device, root, options=options) as sim:
        rpc = _CountingConnection(
            sim.host, sim.rpc_port, timeout=30.0, authenticator=RsaAuthenticator(key)
        )
        with NetworkSeestar(
            sim.host,
            http_port=sim.http_port,
            file_ops=_ShareOverALink(root),
            connection=rpc,
            timeout=30.0,
            list_through_share=not pages,
        ) as seestar:
            app = Crowdsky(seestar, SystemClock(), CollectingProgress())
            seestar.connect()
            before_planning = rpc.sent
            start = time.perf_counter()
            planned = len(app.find_unstacked_blocks("IC 434", min_exptime=0))
            planning = time.perf_counter() - start
            planning_requests = rpc.sent - before_planning
            start = time.perf_counter()
            result = app.stack_blocks("IC 434", min_exptime=0)
            wall = time.perf_counter() - start
            # stack_blocks plans again (listing, clock) before it stacks: not per-block work.
            stacking_requests = rpc.sent - before_planning - 2 * planning_requests
        rpc.close()
    assert planned == blocks, planned
    assert result["blocks_stacked"] == blocks, result["blocks_failed"]
    device_s = blocks * frames * SECONDS_PER_FRAME
    # stack_blocks plans again before it stacks: take that planning time off the gap.
    gap = (wall - planning - device_s) / blocks
    label = ("events pushed" if pushed else "no events") + (", on the wire" if wire else "")
    label += ", listed in pages" if pages else ", listed through the share"
    print(
        f"{blocks} blocks x {frames} frames at {SECONDS_PER_FRAME} s/frame, "
        f"{LATENCY * 1000:.0f} ms per reply, {label}: planning {planning_requests} requests, "
        f"wall {wall:.2f} s, device {device_s:.1f} s "
        f"(+{(wall - device_s) / device_s * 100:.1f} %), planning {planning:.2f} s, "
        f"between blocks {gap:.3f} s, {stacking_requests / blocks:.1f} requests per block "
        f"(planning excluded)"
    )


def issue_12(
    blocks: int = NIGHT_BLOCKS, frames: int = NIGHT_FRAMES, wire: bool = False, pages: bool = False
) -> None:
    private, public = generate_test_keypair()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        key = base / "key.pem"
        key.write_bytes(private)
        for pushed in (False, True):
            night(base, key, public, pushed, blocks, frames, wire, pages)


def _inventory_device(root: Path) -> FakeSeestar:
    """A night of 3 000 real (small) FITS subs at a 13 s cadence."""
    device = FakeSeestar(storage=DirectoryStorage(root))
    first = datetime(2026, 2, 27, 18, 0, 7, tzinfo=UTC)
    for i in range(FILES):
        moment = first + i * timedelta(seconds=13)
        add_sub(device, "Big", 10.0, "LP", moment, 85.25, -2.46, companions=False)
    return device


def _serve_device(root: Path, public: bytes, split: bool, latency: float, conn: Connection) -> None:
    """In a child process: the simulator, as a real Seestar is another machine.

    ``latency`` delays each JSON-RPC reply (the simulator's option) and, patched in here in the
    child only, each HTTP answer of its file server: every round trip to the device costs it.
    """
    if latency:
        from crowdsky.adapters.simulator import http_server

        plain_get = http_server._Handler.do_GET

        def late_get(handler: Any) -> None:
            time.sleep(latency)
            plain_get(handler)

        http_server._Handler.do_GET = late_get  # type: ignore[method-assign]
    device = _inventory_device(root)
    options = SimulatorOptions(
        auth_public_key=public, coalesce_and_split=split, latency=(latency, latency)
    )
    with SimulatorServer(device, root, options=options) as sim:
        conn.send((sim.host, sim.rpc_port, sim.http_port, device.zone))
        conn.recv()  # until told to stop


class _NoReadAhead:
    """The network Seestar without its paged listing: header reads only after the listing."""

    list_files_paged = None

    def __init__(self, seestar: NetworkSeestar) -> None:
        self._seestar = seestar
        self.concurrent_header_reads = seestar.concurrent_header_reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._seestar, name)


def inventory(
    base: Path, key: Path, public: bytes, split: bool, *, own_process: bool, latency: float = 0.0
) -> None:
    """Planning's inventory (``load_target``) against the paged listing alone (issue 12 item 4).

    The yardstick is the issue's: the listing of the 3 000-sub folder in JSON-RPC pages (150 of
    20), alone. Measured against it: ``load_target`` as the app runs it (the folder listed
    through the share, here the mounted folder, then the headers it needs), without the header
    cache, with it cold (first run, no file) and warm (next run); and ``load_target`` listing in
    pages too (headers read while the pages arrive, and after them). The share listing alone and
    ``get_albums`` alone (the folder list ``load_target`` starts with) are printed as well.

    ``own_process``: the simulator runs in a child process, as the real device is another
    machine; otherwise in this one, sharing its interpreter lock with the client. ``latency``:
    seconds the simulator waits before each reply (JSON-RPC, and HTTP in its own process).
    """
    root = base / f"inventory-{split}-{own_process}-{latency}"
    with contextlib.ExitStack() as stack:
        if own_process:
            ours, theirs = multiprocessing.get_context("fork").Pipe()
            child = multiprocessing.get_context("fork").Process(
                target=_serve_device, args=(root, public, split, latency, theirs)
            )
            child.start()
            stack.callback(child.join)
            stack.callback(ours.send, "stop")
            host, rpc_port, http_port, zone_name = ours.recv()
        else:
            device = _inventory_device(root)
            options = SimulatorOptions(
                auth_public_key=public, coalesce_and_split=split, latency=(latency, latency)
            )
            sim = stack.enter_context(SimulatorServer(device, root, options=options))
            host, rpc_port, http_port = sim.host, sim.rpc_port, sim.http_port
            zone_name = device.zone

        def seestar(through_share: bool) -> NetworkSeestar:
            s = NetworkSeestar(
                host,
                port=rpc_port,
                http_port=http_port,
                key_path=key,
                mounted_share=root,
                timeout=30.0,
                list_through_share=through_share,
            )
            stack.enter_context(s)
            s.connect()
            return s

        app, paged = seestar(True), seestar(False)
        zone = ZoneInfo(zone_name)
        times: dict[str, list[float]] = {}

        def timed(what: str, run: Callable[[], object]) -> object:
            start = time.perf_counter()
            result = run()
            times.setdefault(what, []).append(time.perf_counter() - start)
            return result

        for repeat in range(INVENTORY_REPEATS):
            count = len(timed("pages alone", lambda: paged.list_files("Big_sub")))  # type: ignore[arg-type]
            timed("share alone", lambda: app.list_files("Big_sub"))
            timed("get_albums alone", app.list_folders)
            found = timed("app, no cache", lambda: load_target(app, "Big", zone=zone))
            cache = JsonHeaderCache(base / f"cache-{root.name}-{repeat}" / HEADER_CACHE_NAME)
            for run in ("app, cache cold", "app, cache warm"):  # first run (no file), next run
                timed(run, lambda c=cache: load_target(app, "Big", zone=zone, header_cache=c))
            timed("pages, read ahead", lambda: load_target(paged, "Big", zone=zone))
            timed(
                "pages, read after",
                lambda: load_target(_NoReadAhead(paged), "Big", zone=zone),  # type: ignore[arg-type]
            )
    assert count == len(found.frames) == FILES  # type: ignore[attr-defined]
    read = sum(frame.date_obs is not None for frame in found.frames)  # type: ignore[attr-defined]
    median = {what: statistics.median(values) * 1000 for what, values in times.items()}
    base_ms = median["pages alone"]
    where = "its own process" if own_process else "this process"
    parts = ", ".join(f"{what} {ms:.0f} ms ({ms / base_ms:.2f})" for what, ms in median.items())
    print(
        f"inventory of {FILES} subs ({read} headers needed), simulator in {where}, "
        f"{latency * 1000:.0f} ms a reply, split writes {'on' if split else 'off'}; median of "
        f"{INVENTORY_REPEATS}, (ratio to the pages alone): {parts}"
    )


def transfers(base: Path, rounds: int = 9) -> None:
    """Stack downloads from the Seestar's file server: ``HttpFiles`` against a raw socket."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from raw_http import get_to_file

    root = base / "transfers"
    name = "MyWorks/IC 434/CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"
    local = root / name
    local.parent.mkdir(parents=True)
    size = 12 * 1024 * 1024 // 2880 * 2880
    local.write_bytes(b"SIMPLE  =" + os.urandom(size - 9))
    out = base / "downloads"
    out.mkdir()
    server = FileServer(root, "127.0.0.1", 0)
    server.start()
    ours, raw = [], []
    try:
        with HttpFiles(f"http://127.0.0.1:{server.port}") as files:
            files.download(name, out / "warm.fit")
            for i in range(rounds):
                start = time.perf_counter()
                files.download(name, out / f"ours{i}.fit")
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                get_to_file("127.0.0.1", server.port, "/" + quote(name), out / f"raw{i}.fit")
                raw.append(time.perf_counter() - start)
                (out / f"ours{i}.fit").unlink()
                (out / f"raw{i}.fit").unlink()
    finally:
        server.close()
    mb = size / 1e6
    ratio = statistics.median(raw) / statistics.median(ours)
    print(
        f"Seestar download of a {mb:.1f} MB stack, median of {rounds}: HttpFiles "
        f"{mb / statistics.median(ours):.0f} MB/s, raw socket {mb / statistics.median(raw):.0f} "
        f"MB/s, ratio {ratio:.2f}"
    )


def main() -> None:
    if sys.argv[1:2] == ["night"]:
        words = {"wire", "pages"}
        wire, pages = "wire" in sys.argv[2:], "pages" in sys.argv[2:]
        counts = [int(a) for a in sys.argv[2:] if a not in words]
        issue_12(blocks=counts[0] if counts else NIGHT_BLOCKS, wire=wire, pages=pages)
        return
    if sys.argv[1:] == ["transfers"]:
        with tempfile.TemporaryDirectory() as tmp:
            transfers(Path(tmp))
        return
    if sys.argv[1:] == ["inventory"]:
        private, public = generate_test_keypair()
        with tempfile.TemporaryDirectory() as tmp:
            key = Path(tmp) / "key.pem"
            key.write_bytes(private)
            for own_process in (True, False):
                for split in (False, True):
                    inventory(Path(tmp), key, public, split, own_process=own_process)
            inventory(Path(tmp), key, public, False, own_process=True, latency=0.005)
        return
    private, public = generate_test_keypair()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        key = base / "key.pem"
        key.write_bytes(private)
        for split in (False, True):
            listing(base, key, public, split)
            block_round_trip(base, key, public, split)
            inventory(base, key, public, split, own_process=True)
        transfers(base)
    issue_12(
        blocks=int(sys.argv[1]) if len(sys.argv) > 1 else NIGHT_BLOCKS,
    )


if __name__ == "__main__":
    main()
