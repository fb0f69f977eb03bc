"""``crowdsky run``: two simulated Seestars on loopback and the loopback CrowdSky server.

Everything goes through the real network adapters (JSON-RPC, HTTP, the mounted share for
renames) and :func:`crowdsky.cli.main`.
"""

from __future__ import annotations

import _thread
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdsky import session
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.simulator.server import SimulatorServer
from crowdsky.cli import main

from .night_helpers import crowdsky_names, free_port, host_args, simulated

SECRET = "n1ght-Pa55"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackCrowdskyServer]:
    monkeypatch.setenv("CROWDSKY_USERNAME", "ada")
    monkeypatch.setenv("CROWDSKY_PASSWORD", SECRET)
    monkeypatch.delenv("CROWDSKY_URL", raising=False)
    monkeypatch.delenv("SEESTAR_HOST", raising=False)
    session.server_settings().reset()
    with LoopbackCrowdskyServer(tmp_path / "server", users={"ada": SECRET}) as running:
        yield running
    session.server_settings().reset()


@pytest.fixture
def vienna(tmp_path: Path) -> Iterator[SimulatorServer]:
    with simulated(tmp_path / "vienna", zone="Europe/Vienna", serial="aaaa0001", seed=1) as sim:
        yield sim


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[SimulatorServer]:
    """A second Seestar whose night overlaps the first's: same zone, same blocks and pixels."""
    with simulated(tmp_path / "twin", zone="Europe/Vienna", serial="bbbb0002", seed=2) as sim:
        yield sim


def test_run_two_overlapping_telescopes_uploads_both_and_a_rerun_does_nothing(
    vienna: SimulatorServer,
    twin: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "stacks"
    argv = ["run", *host_args(vienna), *host_args(twin), "--url", server.url, "--dest", str(dest)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    names_a, names_b = crowdsky_names(vienna), crowdsky_names(twin)
    # The same night on both: the same blocks and pixels, so the same file names...
    assert names_a == names_b
    assert len(names_a) > 10
    # ...and yet two stacks each on the server: one per telescope.
    on_server = server.stacks
    assert len(on_server) == 2 * len(names_a)
    assert {s["telescope_id"] for s in on_server} == {"S50_aaaa0001", "S50_bbbb0002"}
    keys = [s["chunk_key"] for s in on_server]
    assert all(keys.count(k) == 2 for k in keys)
    for sim in (vienna, twin):
        label = f"{sim.host}:{sim.rpc_port}:{sim.http_port}"
        stacked = len(names_a) - 1  # the demo holds one CrowdSky stack already (M 42)
        assert (
            f"  {label}: stacked {stacked}, failed 0, skipped 0; uploaded {len(names_a)}, "
            "already there 0, upload failed 0"
        ) in out
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "Stacking block" not in again
    assert "  upload " not in again
    assert len(server.stacks) == 2 * len(names_a)
    assert crowdsky_names(vienna) == names_a
    assert f"stacked 0, failed 0, skipped 0; uploaded 0, already there {len(names_a)}" in again


def test_one_telescope_down_does_not_stop_the_other(
    vienna: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    down = f"127.0.0.1:{free_port()}:{free_port()}"
    argv = [
        "run", *host_args(vienna), "--host", down, "--share", str(tmp_path),
        "--url", server.url, "--dest", str(tmp_path / "stacks"),
    ]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert f"  {down}: FAILED: " in out
    names = crowdsky_names(vienna)
    assert len(server.stacks) == len(names) > 10


def status_lines(out: str) -> dict[str, str]:
    """``target -> counts`` from ``crowdsky status`` output."""
    lines = [line.strip() for line in out.splitlines() if line.startswith("  ") and ": " in line]
    return dict(line.split(": ", 1) for line in lines if "blocks" not in line)


def test_status_before_between_and_after(
    vienna: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = [*host_args(vienna), "--url", server.url, "--dest", str(tmp_path / "stacks")]
    assert main(["status", *common]) == 0
    before = status_lines(capsys.readouterr().out)
    assert before["M 42"] == "3 not stacked yet, 1 stacked, not uploaded, 0 on the server"
    assert before["IC 434"] == "3 not stacked yet, 0 stacked, not uploaded, 0 on the server"

    assert main(["run", *common, "--no-upload"]) == 0
    capsys.readouterr()
    assert main(["status", *common, "-v"]) == 0
    out = capsys.readouterr().out
    between = status_lines(out)
    assert between["IC 434"] == "0 not stacked yet, 3 stacked, not uploaded, 0 on the server"
    assert "    stacked, not uploaded: 20260227.81_HP102265" in out

    assert main(["run", *common]) == 0
    capsys.readouterr()
    assert main(["status", *common]) == 0
    after = status_lines(capsys.readouterr().out)
    assert after["IC 434"] == "0 not stacked yet, 0 stacked, not uploaded, 3 on the server"
    assert after["M 42"] == "0 not stacked yet, 0 stacked, not uploaded, 4 on the server"


def test_status_without_the_server_shows_the_telescope_and_says_why(
    vienna: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    argv = ["status", *host_args(vienna), "--url", nobody, "--dest", str(tmp_path / "stacks")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (note,) = [line for line in out.splitlines() if "server not asked" in line]
    assert "stacks counted as not uploaded" in note
    assert status_lines(out)["M 42"] == (
        "3 not stacked yet, 1 stacked, not uploaded, 0 on the server"
    )


def test_demo_as_the_readme_runs_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {t.ident for t in threading.enumerate()}
    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    summary = out[out.index("Summary:") : out.index("crowdsky status:")]
    assert summary.count("stacked 47, failed 0, skipped 0; uploaded 48") == 2
    status = status_lines(out[out.index("crowdsky status:") :])
    assert status["M 81"] == "0 not stacked yet, 0 stacked, not uploaded, 41 on the server"
    zones = [line.split(" in ")[1] for line in out.splitlines() if ": a night in " in line]
    assert len(set(zones)) == 2
    assert f"  the server's files: {folder / 'server'}" in out
    assert len(list((folder / "downloads").rglob("CrowdSky_*.fit"))) == 96
    # Nothing left running: every thread the demo started has ended.
    assert {t.ident for t in threading.enumerate()} <= before


def test_demo_refuses_a_folder_that_holds_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    assert main(["demo", "--dir", str(tmp_path)]) == 2  # a usage problem
    assert "empty or new folder" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "mine"


def files_under(root: Path) -> list[tuple[str, int]]:
    """Every file of a simulated Seestar's storage, with its size."""
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file()
    )


def label(sim: SimulatorServer) -> str:
    return f"{sim.host}:{sim.rpc_port}:{sim.http_port}"


def test_run_leaves_a_busy_telescope_alone_and_stacks_the_idle_one(
    vienna: SimulatorServer,
    twin: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    twin.device.faults.imaging = {"View": "working"}  # the owner is looking at the sky
    before = files_under(twin.root)
    dest = tmp_path / "stacks"
    argv = ["run", *host_args(vienna), *host_args(twin), "--url", server.url, "--dest", str(dest)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if "busy" in line]
    assert said == [
        f"[{label(twin)}] {label(twin)}: busy (View running); skipped so as not to disturb it.",
        f"  {label(twin)}: SKIPPED: busy (View running), left alone; run again when it is idle, "
        "or wait for it with --wait SECONDS",
    ]
    assert twin.device.batch_stack_status() is None  # no batch stack was started on it
    assert files_under(twin.root) == before
    names = crowdsky_names(vienna)
    assert len(names) > 10
    assert {s["telescope_id"] for s in server.stacks} == {"S50_aaaa0001"}
    assert len(server.stacks) == len(names)

    assert main([*argv, "--json", "-q"]) == 1
    document = json.loads(capsys.readouterr().out)
    by_name = {t["telescope"]: t for t in document["telescopes"]}
    assert document["ok"] is False
    assert by_name[label(twin)]["busy"] == "View"
    assert by_name[label(twin)]["ok"] is False
    assert by_name[label(vienna)]["ok"] is True


def test_run_waits_for_a_busy_telescope_that_becomes_idle(
    vienna: SimulatorServer,
    twin: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    twin.device.faults.imaging = {"View": "working"}
    live_view_ends = threading.Timer(1.0, lambda: setattr(twin.device.faults, "imaging", {}))
    live_view_ends.start()
    dest = tmp_path / "stacks"
    argv = [
        "run", *host_args(vienna), *host_args(twin), "--url", server.url, "--dest", str(dest),
        "--wait", "600",
    ]  # fmt: skip
    try:
        assert main(argv) == 0
    finally:
        live_view_ends.cancel()
    out = capsys.readouterr().out
    assert f"[{label(twin)}] The Seestar is busy (View); waiting up to 600 s." in out
    assert "SKIPPED" not in out
    assert crowdsky_names(twin) == crowdsky_names(vienna)
    assert len(server.stacks) == 2 * len(crowdsky_names(vienna))


def test_run_with_a_link_not_ready_names_the_fix_and_stacks_nothing_there(
    vienna: SimulatorServer,
    twin: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = files_under(twin.root)
    no_share = ["--host", label(twin), "--share", str(tmp_path / "not-the-share")]
    (tmp_path / "not-the-share").mkdir()
    argv = [
        "run", *host_args(vienna), *no_share, "--url", server.url, "--dest", str(tmp_path / "s"),
    ]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    (failed,) = [line for line in out.splitlines() if "FAILED" in line]
    assert failed.startswith(f"  {label(twin)}: FAILED before any work: ")
    assert "--share DIR" in failed
    assert files_under(twin.root) == before  # no stray DSO_Stacked
    assert {s["telescope_id"] for s in server.stacks} == {"S50_aaaa0001"}


def test_ctrl_c_during_the_uploads_of_a_run_says_what_was_uploaded(
    vienna: SimulatorServer,
    server: LoopbackCrowdskyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uploads: list[str] = []

    def ctrl_c_on_the_second(name: str) -> None:  # the user presses Ctrl-C as it arrives
        uploads.append(name)
        if len(uploads) == 2:
            _thread.interrupt_main()

    server.faults.on_upload = ctrl_c_on_the_second
    dest = tmp_path / "stacks"
    argv = ["run", *host_args(vienna), "--url", server.url, "--dest", str(dest)]
    assert main(argv) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == ""
    line = re.fullmatch(
        r"crowdsky: interrupted; (\d+) uploaded, ([01]) not finished.*, (\d+) not started; "
        r"any batch stack running was stopped and cleared\.",
        err[-1],
    )
    assert line is not None, err[-1]
    uploaded = int(line[1])
    assert uploaded >= 1
    # Exactly the stacks reported uploaded are recorded as done; a cut-short one is not.
    (journal,) = dest.rglob(".crowdsky-uploads.json")
    assert len(json.loads(journal.read_text())["uploads"]) == uploaded
    assert uploaded + int(line[2]) + int(line[3]) <= len(crowdsky_names(vienna))
