"""A plain ``pip install crowdsky`` is enough for a real Seestar (SMB renames, 7.18+ keys)."""

from __future__ import annotations

import importlib.metadata

import pytest
from packaging.requirements import Requirement


def _plain_requirements() -> set[str]:
    requirements = [Requirement(r) for r in importlib.metadata.requires("crowdsky") or []]
    return {r.name.lower() for r in requirements if r.marker is None}


@pytest.mark.parametrize("package", ["pysmb", "cryptography", "httpx", "astropy"])
def test_a_plain_install_brings_what_a_real_telescope_needs(package: str) -> None:
    assert package in _plain_requirements()
