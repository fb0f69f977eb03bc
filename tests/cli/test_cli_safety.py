"""The command line where a real owner meets it: state, pre-flight checks, errors in its terms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crowdsky.cli import main


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


# -- item 8: --simulator keeps its state ----------------------------------------------------------


def test_the_simulator_remembers_what_was_stacked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC 434", "--simulator"]) == 0
    assert _out(capsys).endswith("3 unstacked block(s) for IC 434\n")
    assert main(["stack", "IC 434", "--simulator"]) == 0
    assert "Stacked: 3 Failed: 0 Skipped: 0" in _out(capsys)
    assert main(["plan", "IC 434", "--simulator"]) == 0
    assert _out(capsys).endswith("0 unstacked block(s) for IC 434\n")
    assert main(["stack", "IC 434", "--simulator"]) == 0  # visibly idempotent
    assert _out(capsys).endswith("Stacked: 0 Failed: 0 Skipped: 0\n")


def test_simulator_reset_starts_over(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "IC 434", "--simulator"]) == 0
    capsys.readouterr()
    assert main(["plan", "IC 434", "--simulator", "--simulator-reset"]) == 0
    assert _out(capsys).endswith("3 unstacked block(s) for IC 434\n")


def test_the_state_lives_in_the_cache_folder_made_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "not" / "yet" / "there"
    monkeypatch.setenv("CROWDSKY_CACHE_DIR", str(cache))
    assert main(["stack", "IC 434", "--simulator"]) == 0
    names = os.listdir(cache / "simulator" / "MyWorks" / "IC 434")
    assert "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit" in names
    assert not (cache / "simulator" / "MyWorks" / "IC 434_sub").exists()  # raw subs stay in memory


def test_simulator_reset_without_simulator_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["targets", "--simulator-reset"]) != 0
    assert "--simulator" in capsys.readouterr().err
