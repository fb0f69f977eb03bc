"""Bulk upload: from a Seestar or a local folder, skipping what the server or journal has."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crowdsky import api
from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.journal import JOURNAL_NAME, JsonUploadJournal
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.collab.stack_meta import LocalFitsFiles
from crowdsky.adapters.console import CollectingProgress
from crowdsky.app.server_port import CollabServer, StackRecord, UploadReceipt
from crowdsky.app.upload import upload_all_stacks
from crowdsky.errors import ServerAuthError, UnknownTargetError

from .helpers import IC434_KEY, IC434_NAME, PASSWORD, TinySeestar, write_stack

M42_NAME = "CrowdSky_20_M 42_10.0s_LP_20260227.81_HP107383.fit"
M42 = {"obj": "M 42", "ra": 83.82, "dec": -5.39}


NOW = datetime(2026, 2, 28, 7, 0, tzinfo=UTC)


def upload(
    server: CollabServer,
    *,
    progress: CollectingProgress | None = None,
    local_dir: Path | None = None,
    dest: Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The application service with the JSON journal in ``<local_dir or dest>``, a fake clock."""
    base = local_dir if local_dir is not None else (dest or Path("."))
    return upload_all_stacks(
        server,
        journal=JsonUploadJournal(base / JOURNAL_NAME),
        progress=progress if progress is not None else CollectingProgress(),
        clock=FakeClock(NOW),
        local_fits=LocalFitsFiles(),
        local_dir=local_dir,
        dest=dest if dest is not None else ".",
        **options,
    )


class Forgetful:
    """A server whose list never shows anything (stacks still queued), counting uploads."""

    def __init__(self, inner: HttpCollabServer) -> None:
        self.inner = inner
        self.uploads: list[str] = []

    def list_stacks(self, object_name: str | None = None) -> list[StackRecord]:
        return []

    def upload_stack(self, path: Path, **meta: object) -> UploadReceipt:
        self.uploads.append(Path(path).name)
        return self.inner.upload_stack(path)


def _stacks_dir(root: Path) -> Path:
    write_stack(root / "IC 434", thumb=True)
    write_stack(root / "M 42", M42_NAME, **M42)
    return root


def _seestar(tmp_path: Path) -> TinySeestar:
    src = _stacks_dir(tmp_path / "device")
    files = {
        folder: {p.name: p.read_bytes() for p in (src / folder).iterdir()}
        for folder in ("IC 434", "M 42")
    }
    files["IC 434_sub"] = {"Light_IC 434_10.0s_LP_20260227-211503.fit": b"raw"}
    files["M 81"] = {"DSO_Stacked_3_M 81_20.0s_20260311_213509.fit": b"not ours"}
    return TinySeestar(files)


def test_local_dir_uploads_everything_then_skips_it(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    local = _stacks_dir(tmp_path / "stacks")
    out = CollectingProgress()
    first = upload(client, local_dir=local, progress=out)
    assert first["files_uploaded"] == 2
    assert sorted(first["uploaded"]) == sorted([IC434_NAME, M42_NAME])
    assert (first["files_skipped"], first["files_failed"]) == (0, 0)
    assert out.lines[-1] == "Uploaded 2, skipped 0, failed 0."
    again = upload(client, local_dir=local, progress=CollectingProgress())
    assert (again["files_uploaded"], again["files_skipped"]) == (0, 2)
    assert len(loopback.stacks) == 2
    journal = json.loads((local / JOURNAL_NAME).read_text())
    assert {e["name"] for e in journal["uploads"]} == {IC434_NAME, M42_NAME}
    assert all(len(e["sha256"]) == 64 for e in journal["uploads"])


def test_the_journal_prevents_a_second_upload_while_the_server_lists_nothing(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    local = _stacks_dir(tmp_path / "stacks")
    server = Forgetful(client)
    upload(server, local_dir=local, progress=CollectingProgress())
    second = upload(server, local_dir=local, progress=CollectingProgress())
    assert len(server.uploads) == 2
    assert second["files_skipped"] == 2
    forced = upload(server, local_dir=local, skip_existing=False, progress=CollectingProgress())
    assert forced["files_uploaded"] == 2


def test_a_changed_file_with_the_same_name_is_not_matched_by_the_journal(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    local = tmp_path / "stacks"
    legacy = "CrowdSky_33_IC 434_10.0s_LP_20260227-211500.fit"
    write_stack(local, legacy)
    server = Forgetful(client)
    upload(server, local_dir=local, progress=CollectingProgress())
    assert upload(server, local_dir=local, progress=CollectingProgress())["files_skipped"] == 1
    (local / legacy).unlink()
    write_stack(local, legacy, stackcnt=30)  # same name and size, different content
    assert upload(server, local_dir=local, progress=CollectingProgress())["files_uploaded"] == 1


def test_same_chunk_key_but_another_filter_or_object_is_not_skipped(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    client.upload_stack(write_stack(tmp_path / "first"))
    local = tmp_path / "stacks"
    write_stack(local, IC434_NAME.replace("_LP_", "_IRCUT_"), filt="IRCUT")
    summary = upload(client, local_dir=local, progress=CollectingProgress())
    assert summary["files_uploaded"] == 1
    assert [s["filter_name"] for s in loopback.stacks] == ["LP", "IRCUT"]


def test_dry_run_changes_nothing(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    seestar = _seestar(tmp_path)
    dest = tmp_path / "downloads"
    out = CollectingProgress()
    summary = upload(client, seestar=seestar, dest=dest, dry_run=True, progress=out)
    assert sorted(summary["would_upload"]) == sorted([IC434_NAME, M42_NAME])
    assert summary["files_uploaded"] == 0
    assert loopback.stacks == []
    assert seestar.downloads == []
    assert not dest.exists()
    assert any(line.startswith("  would upload") for line in out.lines)


def test_one_target_from_the_seestar_is_downloaded_kept_and_uploaded(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    seestar = _seestar(tmp_path)
    dest = tmp_path / "downloads"
    summary = upload(client, seestar=seestar, target="IC 434", dest=dest,
                                progress=CollectingProgress())  # fmt: skip
    assert summary["uploaded"] == [IC434_NAME]
    assert (dest / "IC 434" / IC434_NAME).is_file()
    assert (dest / "IC 434" / IC434_NAME.replace(".fit", "_thn.jpg")).is_file()
    assert (dest / JOURNAL_NAME).is_file()
    assert [s["object_name"] for s in loopback.stacks] == ["IC 434"]


def test_all_targets_skip_sub_folders_and_folders_without_crowdsky_files(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    seestar = _seestar(tmp_path)
    dest = tmp_path / "downloads"
    summary = upload(client, seestar=seestar, dest=dest, progress=CollectingProgress())
    assert sorted(summary["uploaded"]) == sorted([IC434_NAME, M42_NAME])
    assert not any("_sub" in path for path in seestar.downloads)
    assert sorted(p.name for p in dest.iterdir()) == [JOURNAL_NAME, "IC 434", "M 42"]


def test_an_unknown_target_names_the_known_ones(client: HttpCollabServer, tmp_path: Path) -> None:
    with pytest.raises(UnknownTargetError, match="IC 434"):
        upload(client, seestar=_seestar(tmp_path), target="NGC 7000", progress=CollectingProgress())


def test_one_failure_does_not_stop_the_rest(client: HttpCollabServer, tmp_path: Path) -> None:
    local = _stacks_dir(tmp_path / "stacks")
    broken = local / "CrowdSky_3_Broken_10.0s_LP_20260227.81_HP000001.fit"
    broken.write_bytes(b"SIMPLE  = junk")
    summary = upload(client, local_dir=local, progress=CollectingProgress())
    assert summary["files_uploaded"] == 2
    assert summary["files_failed"] == 1
    assert summary["failed"][0]["name"] == broken.name
    assert "not a readable FITS file" in summary["failed"][0]["error"]


def test_wrong_credentials_stop_the_run(loopback: LoopbackCrowdskyServer, tmp_path: Path) -> None:
    local = _stacks_dir(tmp_path / "stacks")
    bad = HttpCollabServer(loopback.url, username="username", password="wrong")
    with bad, pytest.raises(ServerAuthError):
        upload(bad, local_dir=local, progress=CollectingProgress())
    assert loopback.stacks == []


def test_the_module_function_prints_and_keeps_the_journal_beside_the_stacks(
    loopback: LoopbackCrowdskyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.configure_server(loopback.url)
    api.set_credentials("username", PASSWORD)
    local = _stacks_dir(tmp_path / "s")
    api.upload_all_stacks(local_dir=local)
    printed = capsys.readouterr().out
    assert f"-> {IC434_KEY}" in printed
    assert printed.rstrip().endswith("Uploaded 2, skipped 0, failed 0.")
    entries = json.loads((local / JOURNAL_NAME).read_text())["uploads"]
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in entries)


def _on_server_first(client: HttpCollabServer, tmp_path: Path) -> None:
    """IC 434, 33 x 10 s through LP on S50_5eed0042, uploaded by another folder (no journal)."""
    client.upload_stack(write_stack(tmp_path / "elsewhere"))


def test_another_exposure_in_the_same_block_and_pixel_is_uploaded(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    _on_server_first(client, tmp_path)
    local = tmp_path / "stacks"
    write_stack(local, IC434_NAME.replace("_10.0s_", "_20.0s_"), exposure=20.0)
    summary = upload(client, local_dir=local)
    assert summary["files_uploaded"] == 1
    assert sorted(s["total_exptime"] for s in loopback.stacks) == [310.0, 620.0]


def test_another_telescope_with_another_frame_count_is_uploaded(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    _on_server_first(client, tmp_path)
    local = tmp_path / "stacks"
    write_stack(local, IC434_NAME.replace("_33_", "_12_"), stackcnt=12, telescope="S30_0a1b2c3d")
    summary = upload(client, local_dir=local)
    assert summary["files_uploaded"] == 1
    assert [s["telescope_id"] for s in loopback.stacks] == ["S50_5eed0042", "S30_0a1b2c3d"]


def test_the_identical_stack_on_the_server_is_skipped(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    _on_server_first(client, tmp_path)
    out = CollectingProgress()
    summary = upload(client, local_dir=_stacks_dir(tmp_path / "stacks"), progress=out)
    assert summary["skipped"] == [IC434_NAME]
    assert f"  skip   {IC434_NAME} (already on the server)" in out.lines
    assert len(loopback.stacks) == 2  # IC 434 once, M 42


def test_a_stack_without_ra_dec_is_found_on_the_server_by_its_header_key(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    local = tmp_path / "stacks"
    write_stack(local, ra=None, dec=None)
    client.upload_stack(write_stack(tmp_path / "elsewhere", ra=None, dec=None))
    summary = upload(client, local_dir=local)
    assert summary["skipped"] == [IC434_NAME]
    assert [s["chunk_key"] for s in loopback.stacks] == ["20260227.81_HP000000"]


def test_an_unconfirmed_upload_fails_and_the_next_run_finds_it(
    loopback: LoopbackCrowdskyServer, client: HttpCollabServer, tmp_path: Path
) -> None:
    local = tmp_path / "stacks"
    write_stack(local, ra=None, dec=None)
    loopback.faults.fail_after_upload = 1
    once = HttpCollabServer(loopback.url, username="username", password=PASSWORD, retries=0)
    out = CollectingProgress()
    with once:
        first = upload(once, local_dir=local, progress=out)
    assert (first["files_uploaded"], first["files_failed"]) == (0, 1)
    assert "may be on the server" in first["failed"][0]["error"]
    assert "next run" in first["failed"][0]["error"]
    assert out.lines[-1] == "Uploaded 0, skipped 0, failed 1."
    again = upload(client, local_dir=local)
    assert again["skipped"] == [IC434_NAME]
    assert len(loopback.stacks) == 1


def test_a_lost_answer_during_a_run_is_confirmed_not_duplicated(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    local = tmp_path / "stacks"
    write_stack(local, IC434_NAME.replace("20260227.81", "20260227.121m10"),
                date_obs="2026-02-27T20:10:04")  # fmt: skip
    loopback.faults.fail_after_upload = 1
    summary = upload(client, local_dir=local)
    assert (summary["files_uploaded"], summary["files_failed"]) == (1, 0)
    assert len(loopback.stacks) == 1


def test_an_unreadable_stack_on_the_seestar_does_not_stop_the_others(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    seestar = _seestar(tmp_path)
    broken = "CrowdSky_3_IC 434_10.0s_LP_20260227.82_HP102265.fit"
    seestar.files["IC 434"][broken] = b"not FITS at all"
    summary = upload(client, seestar=seestar, dest=tmp_path / "downloads")
    assert sorted(summary["uploaded"]) == sorted([IC434_NAME, M42_NAME])
    assert [f["name"] for f in summary["failed"]] == [broken]
    assert len(loopback.stacks) == 2


def test_a_file_on_the_seestar_already_in_the_journal_is_checked_by_content(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    seestar = _seestar(tmp_path)
    dest = tmp_path / "downloads"
    server = Forgetful(client)
    upload(server, seestar=seestar, target="IC 434", dest=dest)
    (dest / "IC 434" / IC434_NAME).unlink()
    assert upload(server, seestar=seestar, target="IC 434", dest=dest, dry_run=True)["skipped"] == [
        IC434_NAME
    ]
    second = upload(server, seestar=seestar, target="IC 434", dest=dest)
    assert second["skipped"] == [IC434_NAME]
    assert server.uploads == [IC434_NAME]
    assert seestar.downloads.count(f"MyWorks/IC 434/{IC434_NAME}") == 2


def test_downloads_and_uploads_report_their_bytes_to_the_progress(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    out = CollectingProgress()
    upload(client, seestar=_seestar(tmp_path), target="IC 434", dest=tmp_path / "d", progress=out)
    moved = [event[1:] for event in out.events if event[0] == "transfer"]
    size = (tmp_path / "d" / "IC 434" / IC434_NAME).stat().st_size
    # First the download from the Seestar (whole), then the upload's request body, growing.
    assert moved[0] == (IC434_NAME, size, size)
    sent = moved[1:]
    assert {name for name, _, _ in sent} == {IC434_NAME}
    assert [done for _, done, _ in sent] == sorted({done for _, done, _ in sent})
    assert sent[-1][1] == sent[-1][2]
    assert sent[-1][1] > size
    assert not [line for line in out.lines if "transfer" in line]


def test_a_dry_run_moves_no_bytes(client: HttpCollabServer, tmp_path: Path) -> None:
    out = CollectingProgress()
    upload(client, seestar=_seestar(tmp_path), dest=tmp_path / "d", dry_run=True, progress=out)
    assert not [event for event in out.events if event[0] == "transfer"]
