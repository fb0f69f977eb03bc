"""``crowdsky stack/plan/targets/run --local-dir``: through :func:`crowdsky.cli.main`.

The stacking function comes from the composition root (``bootstrap.local_stacker``); these
tests put the test double there, as other command-line tests replace what bootstrap builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import crowdsky
from crowdsky import bootstrap, session
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.local_archive import StackBlock
from crowdsky.cli import main

from .conftest import fake_stacker, fingerprint

SECRET = "l0cal-Pa55"


@pytest.fixture
def stacker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "local_stacker", lambda: fake_stacker)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackCrowdskyServer]:
    monkeypatch.setenv("CROWDSKY_USERNAME", "ada")
    monkeypatch.setenv("CROWDSKY_PASSWORD", SECRET)
    monkeypatch.delenv("CROWDSKY_URL", raising=False)
    session.server_settings().reset()
    with LoopbackCrowdskyServer(tmp_path / "server", users={"ada": SECRET}) as running:
        yield running
    session.server_settings().reset()


def crowdsky_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("CrowdSky_*.fit"))


def test_stack_local_dir_json_end_to_end_then_nothing_left(
    night: Path, stacker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprint(night)
    argv = ["stack", "--local-dir", str(night), "--min-exptime", "0", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["total_blocks_failed"] == 0
    files = [f for r in result["results"].values() for f in r["files"]]
    assert len(files) == result["total_blocks_stacked"] > 3
    assert crowdsky_files(night / "CrowdSky") == sorted(files)
    assert "Stacking block" in captured.err  # progress on standard error, never in the JSON
    assert fingerprint(night) == before
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["total_blocks_stacked"] == 0


def test_plan_and_targets_local_dir_with_dest(
    night: Path, tmp_path: Path, stacker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "stacks"
    assert main(["targets", "--local-dir", str(night), "--json"]) == 0
    targets = json.loads(capsys.readouterr().out)
    assert [(t["target"], t["crowdsky_files"]) for t in targets] == [("IC 434", 0), ("M 42", 0)]
    plan = ["plan", "IC 434", "--local-dir", str(night), "--dest", str(out), "--json"]
    assert main([*plan, "--min-exptime", "0"]) == 0
    blocks = json.loads(capsys.readouterr().out)
    assert blocks
    stack = ["stack", "IC 434", "--local-dir", str(night), "--dest", str(out), "--min-exptime", "0"]
    assert main(stack) == 0
    capsys.readouterr()
    assert len(crowdsky_files(out / "IC 434")) == len(blocks)
    assert not (night / "CrowdSky").exists()  # --dest, not the default
    assert main([*plan, "--min-exptime", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_run_local_dir_uploads_from_the_output_folder_and_a_rerun_sends_nothing(
    night: Path,
    stacker: None,
    server: LoopbackCrowdskyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--local-dir", str(night), "--url", server.url, "--min-exptime", "0", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    (local,) = result["telescopes"]
    names = crowdsky_files(night / "CrowdSky")
    assert local["blocks_stacked"] == len(names) > 3
    assert sorted(local["uploaded"]) == names
    assert len(server.stacks) == len(names)
    # Uploaded from where they were written: no copy elsewhere; the journal beside them.
    assert sorted(p.name for p in night.rglob("CrowdSky_*.fit")) == names
    assert (night / "CrowdSky" / ".crowdsky-uploads.json").is_file()
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)["telescopes"][0]
    assert (again["blocks_stacked"], again["files_uploaded"]) == (0, 0)
    # `crowdsky upload --local-dir` on the output folder agrees: everything is up.
    upload = ["upload", "--local-dir", str(night / "CrowdSky"), "--url", server.url, "--json"]
    assert main(upload) == 0
    uploaded = json.loads(capsys.readouterr().out)
    assert (uploaded["files_uploaded"], uploaded["files_skipped"]) == (0, len(names))
    assert len(server.stacks) == len(names)


@pytest.mark.parametrize("command", [["stack"], ["run", "--no-upload"]])
def test_a_missing_stack_extra_is_one_line_and_exit_2(
    night: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    def not_installed() -> StackBlock:
        raise ModuleNotFoundError("No module named 'astroalign'", name="astroalign")

    monkeypatch.setattr(bootstrap, "local_stacker", not_installed)
    assert main([*command, "--local-dir", str(night)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().count("\n") == 0
    assert 'pip install "crowdsky[stack]"' in captured.err
    assert "Traceback" not in captured.err
    assert not (night / "CrowdSky").exists()


@pytest.mark.parametrize("command", [["stack"], ["plan", "M 42"], ["targets"], ["run"]])
def test_bad_folders_are_usage_errors(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--local-dir", str(tmp_path / "nowhere")]) == 2
    assert "--local-dir" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*command, "--local-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no raw sub-frames (Light_*.fit)" in err
    assert "--local-dir DIR" in err


def test_local_dir_is_not_mixed_with_a_telescope(
    night: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "--local-dir", str(night), "--simulator"]) == 2
    assert "leave out --simulator" in capsys.readouterr().err
    assert main(["stack", "--simulator", "--dest", str(night)]) == 2
    assert "--dest goes with --local-dir" in capsys.readouterr().err


def test_the_python_api_works_on_a_local_archive(night: Path, stacker: None) -> None:
    try:
        crowdsky.use_local_archive(night)
        assert [t["target"] for t in crowdsky.list_targets()] == ["IC 434", "M 42"]
        blocks = crowdsky.find_unstacked_blocks("M 42", min_exptime=0)
        result = crowdsky.stack_blocks("M 42", min_exptime=0)
        assert result["files"]
        assert len(result["files"]) == len(blocks)
        assert crowdsky.find_unstacked_blocks("M 42", min_exptime=0) == []
    finally:
        crowdsky.disconnect()
