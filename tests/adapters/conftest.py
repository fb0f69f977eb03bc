"""Fixtures for the adapter tests: a real Samba server on loopback.

``smbd`` comes from the Debian package ``samba``. Without it the SMB tests are skipped on a
developer machine, but fail in CI (``CI=true``): there a missing real server is a broken setup,
not a reason to pass.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # tests/ laid out as packages
    from .samba import SambaServer, SambaUnavailable, find_smbd
except ImportError:  # rootdir-relative imports (no __init__.py)
    from samba import SambaServer, SambaUnavailable, find_smbd  # type: ignore[no-redef]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"Samba is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def samba_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaServer]:
    """One ``smbd`` for the session, sharing a temporary directory as ``EMMC Images``."""
    if find_smbd() is None:
        _unavailable("smbd is not installed (apt-get install samba)")
    base = tmp_path_factory.mktemp("samba")
    share = base / "share"
    share.mkdir()
    server = SambaServer(base / "work", share)
    (base / "work").mkdir()
    try:
        server.start()
    except SambaUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def samba_share(samba_server: SambaServer) -> Path:
    """The session server's share directory, emptied before each test."""
    share = samba_server.share_dir
    for child in share.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return share
