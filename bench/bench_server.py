"""Stack uploads and downloads against the loopback server, next to a raw-socket client.

Run from the repository root:  python bench/bench_server.py [rounds] [runs] [same|own|both]
(defaults 9, 1, same). Prints Markdown tables; paste them into BENCHMARKS.md. One
``HttpCollabServer`` (one httpx client) does every transfer, as a session does; the raw-socket
client (``bench/raw_http.py``: ``recv_into`` a preallocated buffer, ``sendfile``) goes through
the same server, alternating with it, so both see the same load. Each run gives the median of
``rounds`` transfers of each kind, who goes first alternating from round to round, and the
median CPU time of this process per transfer (the client's alone when the server is in its own
process: unlike wall time, it hardly moves with other programs' load).

``same``: the server runs in a thread of this process, sharing its interpreter lock with the
client, and the peak memory (tracemalloc, Python allocations of all threads) counts both ends.
``own``: the server runs in a child process, as the real server is another machine, so the
ratio measures the client rather than the server's share of one interpreter, and the peak
memory is the client's alone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from astropy.io import fits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from raw_http import basic, get_to_file, post_file  # noqa: E402

from crowdsky.adapters.collab.http_client import HttpCollabServer  # noqa: E402
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer  # noqa: E402
from server.helpers import IC434_KEY, IC434_NAME, write_big_stack  # noqa: E402

SIZE = 12 * 1024 * 1024  # an S50 stacked FITS is about 12 MB
BIG = 48 * 1024 * 1024  # near the server's 50 MB limit, for memory growth
ROUNDS = 9
BOUNDARY = "benchboundary0123456789"


def write_stack(path: Path, nbytes: int) -> Path:
    """A FITS stack of about ``nbytes`` with incompressible data (zeros would flatter reads)."""
    write_big_stack(path.parent, path.name, nbytes)
    head = len(fits.getheader(path).tostring())
    with path.open("r+b") as out:
        out.seek(head)
        left = path.stat().st_size - head
        while left:
            chunk = os.urandom(min(1 << 20, left))
            out.write(chunk)
            left -= len(chunk)
    return path


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (all its threads) of one ``action``."""
    start, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - start, time.process_time() - cpu


def peak_of(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def raw_upload(host: str, port: int, path: Path) -> None:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: application/fits\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    post_file(
        host,
        port,
        "/api/upload_stack.php",
        head,
        path,
        tail,
        f"multipart/form-data; boundary={BOUNDARY}",
        basic("username", "password"),
    )


def _serve(data: Path, pipe: Connection) -> None:
    """The child process of ``own``: serve until told to stop."""
    with LoopbackCrowdskyServer(data, {"username": "password"}) as server:
        pipe.send(server.url)
        pipe.recv()


@contextlib.contextmanager
def loopback_url(data: Path, *, own_process: bool) -> Iterator[str]:
    """A loopback server's URL, the server in a child process or in a thread of this one."""
    if not own_process:
        with LoopbackCrowdskyServer(data, {"username": "password"}) as server:
            yield server.url
        return
    context = multiprocessing.get_context("fork")  # before any thread of ours is started
    ours, theirs = context.Pipe()
    child = context.Process(target=_serve, args=(data, theirs), daemon=True)
    child.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        child.join(30)


Medians = dict[str, tuple[float, float, float, float]]


def one_run(
    tmp: Path, path: Path, big: Path, rounds: int, *, own_process: bool
) -> tuple[Medians, dict[str, int]]:
    """Median wall and CPU seconds (ours, raw, ours' CPU, raw's CPU) of uploads and downloads.

    Also the peak Python memory of each kind of transfer.
    """
    work = Path(tempfile.mkdtemp(dir=tmp))  # this run's server data and downloads
    with (
        loopback_url(work / "data", own_process=own_process) as url,
        HttpCollabServer(url, username="username", password="password") as client,
    ):
        host, port = url.removeprefix("http://").split(":")
        target = f"/api/download_stack.php?chunk_key={IC434_KEY}"
        auth = basic("username", "password")
        up: list[tuple[float, float]] = []
        up_raw: list[tuple[float, float]] = []
        down: list[tuple[float, float]] = []
        down_raw: list[tuple[float, float]] = []
        client.upload_stack(path)  # warm: imports, first connection
        for i in range(rounds):
            # Each download gets a fresh file, ours in a folder made now, not while timed: the
            # raw client writes into an existing folder too.
            (work / f"d{i}").mkdir()
            pairs = [
                (up, lambda: client.upload_stack(path)),
                (up_raw, lambda: raw_upload(host, int(port), path)),
                (down, lambda i=i: client.download_stack(IC434_KEY, work / f"d{i}")),
                (down_raw, lambda i=i: get_to_file(host, int(port), target, work / f"r{i}", auth)),
            ]
            # Who goes first alternates: the first of a pair may pay for the transfer before it.
            for times, action in pairs if i % 2 == 0 else pairs[1::-1] + pairs[:1:-1]:
                times.append(timed(action))
        peaks = {
            "upload 12 MB": peak_of(lambda: client.upload_stack(path)),
            "download 12 MB": peak_of(lambda: client.download_stack(IC434_KEY, work / "p")),
            "upload 48 MB": peak_of(lambda: client.upload_stack(big)),
            "download 48 MB": peak_of(lambda: client.download_stack(IC434_KEY, work / "q")),
        }

    shutil.rmtree(work)

    def median(times: list[tuple[float, float]], which: int) -> float:
        return statistics.median(t[which] for t in times)

    medians = {
        kind: (median(ours, 0), median(raw, 0), median(ours, 1), median(raw, 1))
        for kind, ours, raw in (("upload", up, up_raw), ("download", down, down_raw))
    }
    return medians, peaks


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    where = sys.argv[3] if len(sys.argv) > 3 else "same"
    modes = {"same": [False], "own": [True], "both": [False, True]}[where]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = write_stack(tmp / IC434_NAME, SIZE)
        big = write_stack(tmp / "big" / IC434_NAME, BIG)
        mb = path.stat().st_size / 1e6
        for own_process in modes:
            server_is = "its own process" if own_process else "this process"
            print(f"{mb:.1f} MB stack on loopback, server in {server_is}, median of {rounds}:")
            print()
            cpu_of = "client" if own_process else "client + server"
            print(
                f"| run | upload | raw | ratio | CPU ms ({cpu_of}) ours / raw | download | raw | "
                f"ratio | CPU ms ours / raw |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            ratios: dict[str, list[float]] = {"upload": [], "download": []}
            for run in range(1, runs + 1):
                medians, peaks = one_run(tmp, path, big, rounds, own_process=own_process)
                cells = []
                for kind, (ours, raw, ours_cpu, raw_cpu) in medians.items():
                    ratios[kind].append(raw / ours)
                    cells.append(
                        f"{mb / ours:.0f} MB/s | {mb / raw:.0f} MB/s | {raw / ours:.2f} | "
                        f"{ours_cpu * 1000:.1f} / {raw_cpu * 1000:.1f}"
                    )
                print(f"| {run} | " + " | ".join(cells) + " |")
            up, down = (statistics.median(ratios[kind]) for kind in ("upload", "download"))
            print(f"| **median of runs** | | | **{up:.2f}** | | | | **{down:.2f}** | |")
            print()
            counted = "client and server" if not own_process else "client only"
            print(f"| peak Python memory ({counted}, last run) | MB |")
            print("|---|---|")
            for label, peak in peaks.items():
                print(f"| {label} | {peak / 1e6:.2f} |")
            print()


if __name__ == "__main__":
    main()
