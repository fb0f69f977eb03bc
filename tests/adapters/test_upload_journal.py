"""Upload journals keep their promises: exact-bytes matching, atomic persistence, old files read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crowdsky.adapters.collab.journal import JOURNAL_NAME, JsonUploadJournal, MemoryUploadJournal
from crowdsky.app.ports import UploadJournal
from crowdsky.domain.uploads import JournalEntry
from crowdsky.errors import CrowdskyError

AT = datetime(2026, 2, 28, 7, 0, 5, tzinfo=UTC)
ENTRY = JournalEntry(
    "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    40320,
    "ab" * 32,
    uploaded_at=AT,
    chunk_key="20260227.81_HP102265",
    job_id=7,
    target="IC 434",
)

Make = Callable[[Path], UploadJournal]
KINDS: dict[str, Make] = {
    "json": lambda folder: JsonUploadJournal(folder / JOURNAL_NAME),
    "memory": lambda folder: MemoryUploadJournal(),
}


@pytest.fixture(params=sorted(KINDS))
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> UploadJournal:
    return KINDS[request.param](tmp_path)


def test_a_recorded_upload_is_held_only_for_the_same_bytes(journal: UploadJournal) -> None:
    assert journal.entries() == ()
    journal.record(ENTRY)
    assert journal.entries() == (ENTRY,)
    assert journal.holds(ENTRY.name, ENTRY.size, ENTRY.sha256)
    assert not journal.holds(ENTRY.name, ENTRY.size, "cd" * 32)
    assert not journal.holds(ENTRY.name, ENTRY.size + 1, ENTRY.sha256)


def test_the_json_journal_persists_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / JOURNAL_NAME
    JsonUploadJournal(path).record(ENTRY)
    assert JsonUploadJournal(path).entries() == (ENTRY,)
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["uploads"][0]["at"] == "2026-02-28T07:00:05+00:00"
    assert not path.with_name(JOURNAL_NAME + ".part").exists()


def test_nothing_is_written_before_the_first_record(tmp_path: Path) -> None:
    journal = JsonUploadJournal(tmp_path / "not-yet" / JOURNAL_NAME)
    assert journal.entries() == ()
    assert not (tmp_path / "not-yet").exists()


def test_an_old_journal_file_is_read_and_kept(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    old = {"version": 1, "uploads": [
        {"name": "CrowdSky_3_M 42_10.0s_LP_20260227-211500.fit", "size": 5760,
         "sha256": "ef" * 32, "at": "2026-02-27T22:00:00+00:00", "chunk_key": "x", "job_id": 3},
        {"name": "no size, proves nothing", "sha256": "00" * 32},
    ]}  # fmt: skip
    path.write_text(json.dumps(old))
    journal = JsonUploadJournal(path)
    assert journal.holds("CrowdSky_3_M 42_10.0s_LP_20260227-211500.fit", 5760, "ef" * 32)
    journal.record(ENTRY)
    assert len(json.loads(path.read_text())["uploads"]) == 3


@pytest.mark.parametrize("text", ["{not json", '{"version": 1}', "[]"])
def test_an_unreadable_journal_is_an_error_not_an_empty_one(tmp_path: Path, text: str) -> None:
    path = tmp_path / JOURNAL_NAME
    path.write_text(text)
    with pytest.raises(CrowdskyError, match="upload journal"):
        JsonUploadJournal(path).entries()
