"""The header cache as a JSON file and in memory: the same behaviour, a file never trusted blindly.

Losing facts only costs reads, so a file that cannot be read is an empty cache (said in the
log), never an error and never a wrong fact; a file that cannot be written is only logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from crowdsky.adapters import header_cache
from crowdsky.adapters.header_cache import JsonHeaderCache, MemoryHeaderCache
from crowdsky.app.ports import HeaderCache, HeaderFact

SCOPE, OTHER = "seestar.local:4700", "10.0.0.9:4700"
SUB, M42 = "IC 434_sub", "M 42_sub"


def fact(folder: str, n: int, date_obs: str | None = "2026-02-27T20:15:03.1") -> HeaderFact:
    return HeaderFact(f"MyWorks/{folder}/Light_{n:04d}.fit", 4_147_200 + n, date_obs)


@pytest.fixture(params=["json", "memory"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> HeaderCache:
    if request.param == "json":
        return JsonHeaderCache(tmp_path / "state" / "header-cache.json")
    return MemoryHeaderCache()


def test_facts_are_kept_per_device_and_folder(cache: HeaderCache) -> None:
    assert cache.recall(SCOPE, [SUB]) == []
    mine = [fact(SUB, 1), fact(SUB, 2, None)]
    cache.keep(SCOPE, [SUB], mine)
    cache.keep(SCOPE, [M42], [fact(M42, 3)])
    cache.keep(OTHER, [SUB], [fact(SUB, 9)])
    assert cache.recall(SCOPE, [SUB]) == mine
    assert cache.recall(SCOPE, [SUB, M42]) == [*mine, fact(M42, 3)]
    assert cache.recall(OTHER, [SUB]) == [fact(SUB, 9)]
    cache.keep(SCOPE, [SUB], [fact(SUB, 2, None)])  # replaces the folder's facts
    assert cache.recall(SCOPE, [SUB]) == [fact(SUB, 2, None)]
    assert cache.recall(SCOPE, [M42]) == [fact(M42, 3)]


def test_the_folders_written_longest_ago_go_first_when_over_the_bound(
    cache: HeaderCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(header_cache, "MAX_FACTS", 4)
    cache.keep(SCOPE, [SUB], [fact(SUB, 1), fact(SUB, 2)])
    cache.keep(OTHER, [M42], [fact(M42, 3), fact(M42, 4)])
    cache.keep(SCOPE, [SUB], [fact(SUB, 1), fact(SUB, 2)])  # written again: now the newest
    cache.keep(SCOPE, [M42], [fact(M42, 5)])
    assert cache.recall(OTHER, [M42]) == []
    assert cache.recall(SCOPE, [SUB, M42]) == [fact(SUB, 1), fact(SUB, 2), fact(M42, 5)]


def test_the_file_is_json_with_the_cards_as_read(tmp_path: Path) -> None:
    path = tmp_path / "header-cache.json"
    JsonHeaderCache(path).keep(SCOPE, [SUB], [fact(SUB, 1), fact(SUB, 2, None)])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {
        "version": 1,
        "folders": [
            {
                "device": SCOPE,
                "folder": SUB,
                "facts": {
                    "Light_0001.fit": [4_147_201, "2026-02-27T20:15:03.1"],
                    "Light_0002.fit": [4_147_202, None],
                },
            }
        ],
    }
    assert [p.name for p in tmp_path.iterdir()] == ["header-cache.json"]  # no part file left


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "[]",
        '{"version": 2, "folders": []}',
        '{"version": 1}',
        '{"version": 1, "folders": {}}',
        '{"version": 1, "folders": [{"device": "s:1", "folder": 7, "facts": {}}]}',
        '{"version": 1, "folders": [{"device": "s:1", "folder": "IC 434_sub"}]}',
        f'{{"version": 1, "folders": [{{"device": "s:1", "folder": "{SUB}", "facts": {{'
        '"a.fit": [0, "2026-02-27"]}}]}',
        f'{{"version": 1, "folders": [{{"device": "s:1", "folder": "{SUB}", "facts": {{'
        '"a.fit": [10, 5]}}]}',
        f'{{"version": 1, "folders": [{{"device": "s:1", "folder": "{SUB}", "facts": {{'
        '"a.fit": [true, null]}}]}',
        f'{{"version": 1, "folders": [{{"device": "s:1", "folder": "{SUB}", "facts": '
        '["a.fit"]}]}',
    ],
)
def test_a_damaged_file_is_an_empty_cache_said_in_the_log(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "header-cache.json"
    path.write_text(text, encoding="utf-8")
    cache = JsonHeaderCache(path)
    with caplog.at_level(logging.WARNING, logger="crowdsky.adapters.header_cache"):
        assert cache.recall("s:1", [SUB]) == []
    assert f"The header cache {path} is unusable" in caplog.text
    cache.keep(SCOPE, [SUB], [fact(SUB, 1)])  # and is replaced by the next write
    assert cache.recall(SCOPE, [SUB]) == [fact(SUB, 1)]


def test_an_unreadable_or_unwritable_file_is_logged_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "header-cache.json"
    path.mkdir()  # a folder where the file should be: neither read nor replaced
    cache = JsonHeaderCache(path)
    with caplog.at_level(logging.WARNING, logger="crowdsky.adapters.header_cache"):
        assert cache.recall(SCOPE, [SUB]) == []
        cache.keep(SCOPE, [SUB], [fact(SUB, 1)])
    assert "is unusable" in caplog.text
    assert f"Cannot write the header cache {path}" in caplog.text
    assert path.is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_writers_at_once_never_tear_the_file(tmp_path: Path) -> None:
    """Several writers (threads here, processes alike: each writes its own part file)."""
    path = tmp_path / "header-cache.json"
    writers = [JsonHeaderCache(path) for _ in range(4)]

    def write(index: int) -> None:
        for round_ in range(15):
            folder = f"T{index}_sub"
            writers[index].keep(SCOPE, [folder], [fact(folder, n) for n in range(round_ + 1)])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = json.loads(path.read_text(encoding="utf-8"))  # whole JSON, never a mix
    assert data["version"] == 1
    last = JsonHeaderCache(path).recall(SCOPE, [f"T{i}_sub" for i in range(4)])
    assert last  # whoever wrote last left a readable set
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_the_cache_does_not_wait_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost cache is read again, so keeping it never waits for fsync (tens of ms when busy)."""

    def no_fsync(fd: int) -> None:
        raise AssertionError("the header cache waited for the disk")

    monkeypatch.setattr(os, "fsync", no_fsync)
    cache = JsonHeaderCache(tmp_path / "header-cache.json")
    fact = HeaderFact("MyWorks/IC 434_sub/Light_IC 434_10.0s_LP_20260227-211503.fit", 5, "x")
    cache.keep("seestar-1", ["IC 434_sub"], [fact])
    assert cache.recall("seestar-1", ["IC 434_sub"]) == [fact]


def test_the_file_is_written_on_one_line_by_the_c_encoder(tmp_path: Path) -> None:
    """Indented JSON is encoded in pure Python (10 ms for a 3 000-sub folder); one line in C."""
    path = tmp_path / "header-cache.json"
    facts = [fact(SUB, n, None if n % 3 else "2026-02-27T20:15:03.1") for n in range(50)]
    JsonHeaderCache(path).keep(SCOPE, [SUB], facts)
    text = path.read_text(encoding="utf-8")
    assert "\n" not in text
    assert JsonHeaderCache(path).recall(SCOPE, [SUB]) == facts
