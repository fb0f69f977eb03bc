"""Throughput and peak memory of stack uploads and downloads against the loopback server.

Run from the repository root:  python bench/bench_server.py
Prints a Markdown table; paste it into BENCHMARKS.md. The server runs in the same process, so
the peak memory (tracemalloc, Python allocations of all threads) counts both ends.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import httpx
from astropy.io import fits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from crowdsky.adapters.collab.http_client import HttpCollabServer  # noqa: E402
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer  # noqa: E402
from server.helpers import IC434_KEY, IC434_NAME, write_big_stack  # noqa: E402

SIZE = 12 * 1024 * 1024  # an S50 stacked FITS is about 12 MB
ROUNDS = 5


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


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def peak_of(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = write_stack(tmp / IC434_NAME, SIZE)
        mb = path.stat().st_size / 1e6
        with (
            LoopbackCrowdskyServer(tmp / "data", {"username": "password"}) as server,
            HttpCollabServer(server.url, username="username", password="password") as client,
        ):
            up = [timed(lambda: client.upload_stack(path)) for _ in range(ROUNDS)]
            down = [
                timed(lambda i=i: client.download_stack(IC434_KEY, tmp / f"d{i}"))
                for i in range(ROUNDS)
            ]
            up_peak = peak_of(lambda: client.upload_stack(path))
            down_peak = peak_of(lambda: client.download_stack(IC434_KEY, tmp / "peak"))

            def httpx_files() -> None:
                with path.open("rb") as handle, httpx.Client() as http:
                    http.post(
                        f"{server.url}/api/upload_stack.php",
                        files={"file": (path.name, handle, "application/fits")},
                        auth=("username", "password"),
                        timeout=60,
                    ).raise_for_status()

            files_peak = peak_of(httpx_files)
    print(f"| measurement ({mb:.1f} MB stack, loopback, median of {ROUNDS}) | value |")
    print("|---|---|")
    print(f"| upload_stack throughput | {mb / statistics.median(up):.0f} MB/s |")
    print(
        f"| download_stack throughput (checked, atomic) | {mb / statistics.median(down):.0f} MB/s |"
    )
    print(f"| peak Python memory, upload (client + server) | {up_peak / 1e6:.2f} MB |")
    print(f"| peak Python memory, download (client + server) | {down_peak / 1e6:.2f} MB |")
    print(f"| for comparison: httpx files= upload peak | {files_peak / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
