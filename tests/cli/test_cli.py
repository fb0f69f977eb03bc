from __future__ import annotations

import pytest

import crowdsky
from crowdsky.cli import main


@pytest.fixture(autouse=True)
def _forget_seestar() -> object:
    yield
    crowdsky.disconnect()


def test_targets_on_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "--simulator"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "IC 434                    raw=  158 stacked=  1",
        "M 42                      raw=  216 stacked=  1",
        "M 81                      raw= 2053 stacked=  1",
    ]


def test_stack_all_on_the_simulator_then_nothing_left(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "--simulator"]) == 0
    out = capsys.readouterr().out
    assert "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Stacked: ")
    assert summary.endswith("across 3 targets")
    assert " Failed: 0 " in summary


def test_dry_run_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "IC 434", "--simulator", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Dry run: 3 blocks to stack for IC 434\n")
    assert "Renamed" not in out


def test_plan_lists_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC 434", "--simulator"]) == 0
    out = capsys.readouterr().out
    assert "20260227.81" in out
    assert out.strip().endswith("3 unstacked block(s) for IC 434")


def test_bad_input_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "IC 434", "--simulator", "--block-minutes", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crowdsky: --block-minutes 7 does not split a day")
    assert "Traceback" not in err


def test_unknown_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC434", "--simulator"]) == 1
    assert "Targets with raw sub-frames: IC 434, M 42, M 81" in capsys.readouterr().err


def test_no_telescope_chosen_says_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEESTAR_HOST", raising=False)
    assert main(["targets"]) == 2
    assert "--host" in capsys.readouterr().err


def test_purge_needs_confirmation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--simulator"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["purge", "M 42", "--simulator", "--yes"]) == 0
    assert "Deleted 3 file(s); 0 failed" in capsys.readouterr().out


def test_time_shows_device_and_host_clocks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["time", "--simulator"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Seestar:  ")
    assert out[0].endswith(" Europe/Vienna")
    assert out[1].startswith("Computer: ")


def test_the_command_line_leaves_the_library_session_alone() -> None:
    assert main(["targets", "--simulator"]) == 0
    with pytest.raises(crowdsky.NoSeestarError):
        crowdsky.current_seestar()
