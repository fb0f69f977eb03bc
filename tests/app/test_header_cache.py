"""Header facts remembered across runs: read once, then planned from what was kept.

A raw sub-frame is never rewritten, so a header read on one run answers the next run's question
about the same path at the same listed size. These tests hold the plan to be the same, the reads
to be skipped only where that holds, and a failed read never to be remembered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.header_cache import MemoryHeaderCache
from crowdsky.app.inventory import load_target
from crowdsky.app.ports import HeaderCache
from crowdsky.app.service import Crowdsky
from crowdsky.errors import DeviceTimeWarning, HeaderReadError

from .conftest import AddRun
from .test_header_reads import NEW_YORK, in_folder
from .test_read_ahead import VIENNA, Paged, Recording, night, same, stack_one_block

SUB = "IC 434_sub"


def sub_reads(device: Recording) -> list[str]:
    return [path for path in device.reads if "_sub/" in path]


@pytest.mark.parametrize("kind", [Recording, Paged], ids=["one-listing", "paged-read-ahead"])
def test_the_second_run_reads_no_header_and_plans_the_same(
    clock: FakeClock, add_run: AddRun, kind: type[Recording]
) -> None:
    device = night(kind(clock=clock, zone="Europe/Vienna"), add_run)
    stack_one_block(device, VIENNA)
    cache = MemoryHeaderCache()
    first = load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    read_first = len(sub_reads(device))
    assert read_first > 10
    assert len(cache.recall(device.identity, [SUB])) >= read_first - 4  # reads ahead may be cut
    device.reads.clear()
    second = load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert sub_reads(device) == []
    same(first, second)
    uncached = load_target(night(kind(clock=clock, zone="Europe/Vienna"), add_run), "IC 434")
    assert first.frames == uncached.frames


def test_a_zone_measured_from_headers_is_measured_the_same_from_the_cache(
    clock: FakeClock, add_run: AddRun
) -> None:
    """No zone reported: the zone is settled from headers, then again from the kept facts."""
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    cache = MemoryHeaderCache()
    first = load_target(device, "IC 434", host_zone=NEW_YORK, header_cache=cache)
    assert sub_reads(device)
    device.reads.clear()
    second = load_target(device, "IC 434", host_zone=NEW_YORK, header_cache=cache)
    assert sub_reads(device) == []
    same(first, second)
    assert second.zone.tz.utcoffset(datetime(2026, 2, 27, 21)) == timedelta(hours=1)


def test_the_service_plans_the_same_blocks_from_the_cache(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    app = Crowdsky(
        device, clock, CollectingProgress(), host_zone=NEW_YORK, header_cache=MemoryHeaderCache()
    )
    first = app.find_unstacked_blocks("IC 434", min_exptime=0)
    assert first
    assert sub_reads(device)
    device.reads.clear()
    assert app.find_unstacked_blocks("IC 434", min_exptime=0) == first
    assert sub_reads(device) == []


def resize(cache: HeaderCache, device: str, by: int) -> None:
    facts = cache.recall(device, [SUB])
    cache.keep(device, [SUB], [attrs.evolve(f, size=f.size + by) for f in facts])


def test_a_fact_of_another_size_is_read_again(clock: FakeClock, add_run: AddRun) -> None:
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    cache = MemoryHeaderCache()
    first = load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    read_first = sorted(sub_reads(device))
    resize(cache, device.identity, 1)
    device.reads.clear()
    second = load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert sorted(sub_reads(device)) == read_first
    same(first, second)
    sizes = {e.name: e.size for e in device.list_files(SUB)}
    kept = cache.recall(device.identity, [SUB])
    assert all(f.size == sizes[f.path.rsplit("/", 1)[1]] for f in kept)


def test_facts_of_another_device_or_of_subs_no_longer_listed_are_not_used(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    other = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    cache = MemoryHeaderCache()
    load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    load_target(other, "IC 434", zone=VIENNA, header_cache=cache)
    assert sub_reads(other)  # the same names on another telescope are read there
    gone = cache.recall(device.identity, [SUB])[0].path
    device.storage.delete(gone)
    load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert gone not in {f.path for f in cache.recall(device.identity, [SUB])}


def test_a_failed_read_is_not_kept_and_still_fails_the_target(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    device.faults.read_fails = in_folder(SUB)  # type: ignore[assignment]
    cache = MemoryHeaderCache()
    with pytest.raises(HeaderReadError):
        load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert cache.recall(device.identity, [SUB]) == []
    with pytest.raises(HeaderReadError):  # the second run reads again, and fails again
        load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    device.faults.read_fails = None
    load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert cache.recall(device.identity, [SUB])


def test_one_failed_read_among_kept_facts_still_fails_the_target(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    cache = MemoryHeaderCache()
    load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    kept = cache.recall(device.identity, [SUB])
    forgotten = kept[len(kept) // 2]
    cache.keep(device.identity, [SUB], [f for f in kept if f != forgotten])
    device.faults.read_fails = [forgotten.path.rsplit("/", 1)[1]]
    device.reads.clear()
    with pytest.raises(HeaderReadError, match="could not be read"):
        load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert set(sub_reads(device)) == {forgotten.path}
    assert forgotten.path not in {f.path for f in cache.recall(device.identity, [SUB])}


def test_a_header_without_date_obs_is_kept_as_such(clock: FakeClock, add_run: AddRun) -> None:
    device = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    cache = MemoryHeaderCache()
    first = load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    kept = cache.recall(device.identity, [SUB])
    blanked = [attrs.evolve(f, date_obs=None) for f in kept]
    cache.keep(device.identity, [SUB], blanked)
    device.reads.clear()
    with pytest.warns(DeviceTimeWarning, match="could not be checked against DATE-OBS"):
        second = load_target(device, "IC 434", zone=VIENNA, header_cache=cache)
    assert sub_reads(device) == []  # a header without DATE-OBS is a fact, not a failed read
    read = {f.name for f in first.frames if f.date_obs is not None}
    assert read
    assert not any(f.date_obs for f in second.frames if f.name in read)
