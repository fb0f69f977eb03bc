"""Pending-stack journals keep their promises: replace by key, remove, persist, refuse damage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crowdsky.adapters.state import (
    PENDING_STACKS_NAME,
    JsonStackJournal,
    MemoryStackJournal,
    state_dir,
)
from crowdsky.app.ports import StackJournal
from crowdsky.domain import CoverageKey
from crowdsky.domain.orphans import PendingStack
from crowdsky.errors import CrowdskyError

KEY = CoverageKey("M 81", "20.0s", "LP", "20260311.82")
RECORD = PendingStack(
    "seestar.local:4700",
    "M 81",
    KEY,
    datetime(2026, 3, 11, 20, 30, tzinfo=UTC),
    datetime(2026, 3, 11, 20, 45, tzinfo=UTC),
    40,
    frozenset({"DSO_Stacked_12_M 81_20.0s_20260311_213000.fit"}),
)
OTHER_DEVICE = "10.0.0.7:4700"

Make = Callable[[Path], StackJournal]
KINDS: dict[str, Make] = {
    "json": lambda folder: JsonStackJournal(folder / PENDING_STACKS_NAME),
    "memory": lambda folder: MemoryStackJournal(),
}


@pytest.fixture(params=sorted(KINDS))
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> StackJournal:
    return KINDS[request.param](tmp_path)


def test_a_record_is_kept_per_device_and_replaced_by_key(journal: StackJournal) -> None:
    assert journal.pending(RECORD.device) == ()
    journal.begin(RECORD)
    other = PendingStack(OTHER_DEVICE, "M 81", KEY, RECORD.start, RECORD.end, 5)
    journal.begin(other)
    again = PendingStack(RECORD.device, "M 81", KEY, RECORD.start, RECORD.end, 39)
    journal.begin(again)
    assert journal.pending(RECORD.device) == (again,)
    assert journal.pending(OTHER_DEVICE) == (other,)


def test_done_removes_only_that_record(journal: StackJournal) -> None:
    journal.begin(RECORD)
    journal.begin(PendingStack(OTHER_DEVICE, "M 81", KEY, RECORD.start, RECORD.end, 5))
    journal.done(RECORD.device, KEY)
    journal.done(RECORD.device, KEY)  # nothing left: no error
    assert journal.pending(RECORD.device) == ()
    assert len(journal.pending(OTHER_DEVICE)) == 1


def test_the_json_journal_survives_the_process(tmp_path: Path) -> None:
    path = tmp_path / "state" / PENDING_STACKS_NAME
    JsonStackJournal(path).begin(RECORD)
    assert JsonStackJournal(path).pending(RECORD.device) == (RECORD,)
    assert not list(path.parent.glob("*.part"))


@pytest.mark.parametrize(
    "text", ["{not json", '{"pending": 3}', '{"pending": [{"device": "x"}]}', "[]"]
)
def test_a_damaged_json_journal_is_an_error_not_an_empty_one(tmp_path: Path, text: str) -> None:
    path = tmp_path / PENDING_STACKS_NAME
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CrowdskyError, match="damaged"):
        JsonStackJournal(path).pending(RECORD.device)
    with pytest.raises(CrowdskyError):
        JsonStackJournal(path).begin(RECORD)
    assert path.read_text(encoding="utf-8") == text


def test_an_unusable_state_folder_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(CrowdskyError, match="pending-stack journal"):
        JsonStackJournal(blocker / PENDING_STACKS_NAME).begin(RECORD)


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, "/home/ann/.local/state/crowdsky"),
        ("linux", {"XDG_STATE_HOME": "/xdg"}, "/xdg/crowdsky"),
        ("linux", {"XDG_STATE_HOME": "relative"}, "/home/ann/.local/state/crowdsky"),
        ("darwin", {}, "/home/ann/Library/Application Support/crowdsky"),
        (
            "win32",
            {"LOCALAPPDATA": "/C/Users/ann/AppData/Local"},
            "/C/Users/ann/AppData/Local/crowdsky",
        ),
        ("win32", {}, "/home/ann/AppData/Local/crowdsky"),
        ("linux", {"CROWDSKY_STATE_DIR": "/chosen"}, "/chosen"),
        ("win32", {"CROWDSKY_STATE_DIR": "/chosen"}, "/chosen"),
    ],
)
def test_the_state_folder_per_platform(
    platform: str, environ: dict[str, str], expected: str
) -> None:
    assert state_dir(environ, platform=platform, home=Path("/home/ann")).as_posix() == expected


def test_tests_never_write_state_into_the_real_home() -> None:
    assert Path.home() not in state_dir().parents
