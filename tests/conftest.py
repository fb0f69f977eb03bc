"""Test-wide settings: the Hypothesis profiles; no user configuration, cache or state.

``dev`` (the default) is quick for the edit-test loop; ``ci`` runs more examples,
deterministically and without per-example deadlines (a loaded CI machine must not fail a test
for being slow). Choose with ``HYPOTHESIS_PROFILE=dev|ci``; ``CI=true`` picks ``ci``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("dev", max_examples=60, deadline=timedelta(seconds=2))
settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None, print_blob=True)


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").strip().lower() == "true" else "dev"


settings.load_profile(_profile())


@pytest.fixture(autouse=True)
def _no_user_configuration(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point ``$CROWDSKY_CONFIG`` at a file that does not exist: never the user's own config.

    A test that wants a configuration file writes one and sets the variable itself.
    """
    missing = tmp_path_factory.mktemp("config") / "config.toml"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROWDSKY_CONFIG", str(missing))
        for name in ("CROWDSKY_SCOPE", "CROWDSKY_HOST", "CROWDSKY_KEY", "CROWDSKY_SHARE"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(autouse=True)
def _simulator_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own ``$CROWDSKY_CACHE_DIR``: a fresh ``--simulator``, no home writes."""
    monkeypatch.setenv("CROWDSKY_CACHE_DIR", str(tmp_path_factory.mktemp("crowdsky-cache")))


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$CROWDSKY_STATE_DIR`` in a temporary folder: no test (nor its subprocesses) writes the
    pending-stack journal into the real home."""
    folder = tmp_path_factory.mktemp("crowdsky-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROWDSKY_STATE_DIR", str(folder))
        yield folder
