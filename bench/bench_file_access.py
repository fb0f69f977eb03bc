"""Measure the file-access adapters on loopback: SMB renames against a real smbd, header bytes.

Run: ``python bench/bench_file_access.py`` (needs ``smbd``, Debian package ``samba``, and runs it
as the current user; root works). Prints one line per measurement.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "adapters"))

from samba import SambaServer  # noqa: E402
from test_http_files import CountingTransport, FileServer, s50_sub  # noqa: E402

from crowdsky.adapters.seestar.file_ops import SmbFileOps  # noqa: E402
from crowdsky.adapters.seestar.http_files import HttpFiles  # noqa: E402

RENAMES = 100


def smb_renames(base: Path) -> None:
    share = base / "share"
    folder = share / "MyWorks" / "M 81"
    folder.mkdir(parents=True)
    for i in range(RENAMES):
        (folder / f"DSO_Stacked_{i}_M 81_20.0s_20260227_225203.fit").write_bytes(b"x")
    (base / "work").mkdir()
    with (
        SambaServer(base / "work", share) as server,
        SmbFileOps(server.host, port=server.port) as ops,
    ):
        ops.exists("MyWorks/M 81/warm-up.fit")  # connect outside the timing
        start = time.perf_counter()
        for i in range(RENAMES):
            ops.rename(
                f"MyWorks/M 81/DSO_Stacked_{i}_M 81_20.0s_20260227_225203.fit",
                f"CrowdSky_{i}_M 81_20.0s_LP_20260227.87_HP102265.fit",
            )
        elapsed = time.perf_counter() - start
    print(
        f"SMB: {RENAMES} renames in {elapsed:.3f} s ({1000 * elapsed / RENAMES:.2f} ms each, "
        "each = existence check + rename, one connection)"
    )


def header_bytes(base: Path) -> None:
    path = "MyWorks/NGC 281_sub/Light_NGC 281_10.0s_LP_20250929-010116.fit"
    s50_sub(base / path)
    size = (base / path).stat().st_size
    for honour in (True, False):
        with FileServer(base) as server:
            server.honour_range = honour
            counting = CountingTransport()
            with httpx.Client(transport=counting) as client:
                HttpFiles(server.url, client=client).read_header(path)
            label = "206 (Range honoured)" if honour else "200 (Range ignored)"
            print(
                f"HTTP header of a {size} B S50 sub, {label}: {counting.received} body bytes "
                f"read, statuses {server.statuses}"
            )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        smb_renames(Path(tmp) / "smb")
        header_bytes(Path(tmp) / "http")
