"""Stack uploads and downloads against the loopback server, next to a raw-socket client.

Run from the repository root:  python bench/bench_server.py [rounds]
Prints a Markdown table; paste it into BENCHMARKS.md. One ``HttpCollabServer`` (one httpx client)
does every transfer, as a session does; the raw-socket client (``bench/raw_http.py``:
``recv_into`` a preallocated buffer, ``sendfile``) goes through the same server, alternating
with it, so both see the same load. The server runs in the same process, so the peak memory
(tracemalloc, Python allocations of all threads) counts both ends.
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


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = write_stack(tmp / IC434_NAME, SIZE)
        big = write_stack(tmp / "big" / IC434_NAME, BIG)
        mb = path.stat().st_size / 1e6
        with (
            LoopbackCrowdskyServer(tmp / "data", {"username": "password"}) as server,
            HttpCollabServer(server.url, username="username", password="password") as client,
        ):
            host, port = server.url.removeprefix("http://").split(":")
            target = f"/api/download_stack.php?chunk_key={IC434_KEY}"
            auth = basic("username", "password")
            up, up_raw, down, down_raw = [], [], [], []
            client.upload_stack(path)  # warm: imports, first connection
            for i in range(rounds):
                up.append(timed(lambda: client.upload_stack(path)))
                up_raw.append(timed(lambda: raw_upload(host, int(port), path)))
                down.append(timed(lambda i=i: client.download_stack(IC434_KEY, tmp / f"d{i}")))
                down_raw.append(
                    timed(lambda i=i: get_to_file(host, int(port), target, tmp / f"r{i}", auth))
                )
            peaks = {
                "upload 12 MB": peak_of(lambda: client.upload_stack(path)),
                "download 12 MB": peak_of(lambda: client.download_stack(IC434_KEY, tmp / "p")),
                "upload 48 MB": peak_of(lambda: client.upload_stack(big)),
                "download 48 MB": peak_of(lambda: client.download_stack(IC434_KEY, tmp / "q")),
            }

    def speed(times: list[float]) -> float:
        return mb / statistics.median(times)

    print(f"| {mb:.1f} MB stack, loopback, median of {rounds} | crowdsky | raw socket | ratio |")
    print("|---|---|---|---|")
    for label, ours, raw in (("upload", up, up_raw), ("download", down, down_raw)):
        ratio = statistics.median(raw) / statistics.median(ours)
        print(f"| {label} | {speed(ours):.0f} MB/s | {speed(raw):.0f} MB/s | {ratio:.2f} |")
    print()
    print("| peak Python memory (client + server) | MB |")
    print("|---|---|")
    for label, peak in peaks.items():
        print(f"| {label} | {peak / 1e6:.2f} |")


if __name__ == "__main__":
    main()
