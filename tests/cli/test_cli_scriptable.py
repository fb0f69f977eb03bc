"""``--json``, ``--version``, ``-v``/``-q``, exit statuses and the plain (non-terminal) output."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime

import pytest

import crowdsky
from crowdsky.cli import main

ESCAPE = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def _forget_seestar() -> object:
    yield
    crowdsky.disconnect()


def _json_out(capsys: pytest.CaptureFixture[str]) -> object:
    out = capsys.readouterr().out
    return json.loads(out)  # the whole of stdout is one document


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"crowdsky {crowdsky.__version__}"


def test_targets_json_has_the_api_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "--simulator", "--json"]) == 0
    targets = _json_out(capsys)
    assert isinstance(targets, list)
    assert [t["target"] for t in targets] == ["IC 434", "M 42", "M 81"]
    assert targets[0]["raw_files"] == 158


def test_stack_json_is_the_only_thing_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "IC 434", "--simulator", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["blocks_stacked"] == 3
    assert result["files"][0] == "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"
    start = datetime.fromisoformat(result["blocks"][0]["block_start"])
    assert start.utcoffset() is not None  # ISO 8601 with the offset
    assert [b["left_out"] for b in result["blocks"]] == [[], [], []]  # a device leaves none out
    assert "Stacking block 21:15-21:30" in captured.err  # progress went to stderr


def test_time_json_gives_the_device_clock_its_offset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["time", "--simulator", "--json"]) == 0
    report = _json_out(capsys)
    assert isinstance(report, dict)
    assert report["device_zone"] == "Europe/Vienna"
    assert datetime.fromisoformat(report["device_time"]).utcoffset() is not None
    assert datetime.fromisoformat(report["host_time"]).utcoffset() is not None


def test_plan_and_purge_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC 434", "--simulator", "--json"]) == 0
    blocks = _json_out(capsys)
    assert isinstance(blocks, list)
    assert [b["chunk_key"] for b in blocks] == ["20260227.81", "20260227.82", "20260227.83"]
    assert main(["purge", "M 42", "--simulator", "--dry-run", "--json"]) == 0
    purge = _json_out(capsys)
    assert isinstance(purge, dict)
    assert purge["dry_run"] is True
    assert len(purge["files_deleted"]) == 3


def test_servers_refuse_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--json"]) == 2
    assert "--json" in capsys.readouterr().err


def test_exit_status_2_for_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["stack", "--no-such-option"])
    assert stop.value.code == 2
    assert main(["stack", "--simulator", "--min-exptime", "-5"]) == 2


def test_exit_status_1_when_something_failed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC434", "--simulator"]) == 1


def test_quiet_prints_only_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "IC 434", "--simulator", "-q"]) == 0
    assert capsys.readouterr().out.splitlines() == ["Stacked: 3 Failed: 0 Skipped: 0"]


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        ([], logging.ERROR),
        (["-v"], logging.INFO),
        (["-vv"], logging.DEBUG),
        (["-q"], logging.CRITICAL),
    ],
)
def test_verbosity_sets_the_library_log_level_for_the_command_only(
    flags: list[str], level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    from crowdsky import bootstrap

    real = bootstrap.cached_simulator_seestar

    def spy(**kwargs: object) -> object:
        seen.append(logging.getLogger("crowdsky").getEffectiveLevel())
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bootstrap, "cached_simulator_seestar", spy)
    before = logging.getLogger("crowdsky").level
    assert main(["targets", "--simulator", *flags]) == 0
    assert seen == [level]
    assert logging.getLogger("crowdsky").level == before  # put back after the command


def test_plain_output_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "--simulator"]) == 0
    out = capsys.readouterr().out
    assert not ESCAPE.search(out)
    assert "\r" not in out
    assert "Stacking block 21:15-21:30 (33 frames, 10.0s LP)..." in out.splitlines()


def test_dry_run_says_would_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "--simulator", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("Would stack ")
    assert lines[-2].endswith(" blocks")
    assert int(lines[-2].split()[2]) > 3


def test_blocks_skipped_for_exposure_are_listed_with_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["stack", "IC 434", "--simulator", "--min-exptime", "600"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Skipped (less than 600s of exposure):" in out
    assert "  IC 434 2026-02-27 21:15-21:30: 33 frames x 10.0s = 330s" in out
    assert "  IC 434 2026-02-27 21:45-22:00: 56 frames x 10.0s = 560s" in out
    assert out[-1] == "Stacked: 1 Failed: 0 Skipped: 2"
