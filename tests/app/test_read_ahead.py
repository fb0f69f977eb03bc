"""Header reads overlapped with a paged listing plan exactly what reads after the listing plan.

A Seestar that pages its listings (:class:`~crowdsky.app.ports.PagedListing`) and takes several
header reads at once has the headers the settler will likely ask for read while later pages
are still arriving. The settler still decides from the complete listing; these tests hold the
result, the failures and the reads to that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.app.inventory import TargetInventory, load_target
from crowdsky.app.ports import FileEntry, FolderEntry
from crowdsky.domain.device_time import likely_headers
from crowdsky.errors import HeaderReadError, ListingIncompleteError, UnknownTargetError

from .conftest import AddRun

VIENNA = ZoneInfo("Europe/Vienna")
PAGE = 20
Device = TypeVar("Device", bound=FakeSeestar)
#: A guard against a hang, never reached when the test passes: no timing is asserted.
GUARD_S = 30.0


class Recording(FakeSeestar):
    """A device that records every header read (path) and takes four at once."""

    concurrent_header_reads = 4

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reads: list[str] = []
        self._reads_lock = threading.Lock()
        self.first_read = threading.Event()

    def read_header(self, path: str) -> dict[str, object]:
        with self._reads_lock:
            self.reads.append(path)
        if "_sub/" in path:
            self.first_read.set()
        return super().read_header(path)


class Paged(Recording):
    """A device whose listings come in pages of 20, handed over one by one.

    ``hold_last_page``: the last page of a sub folder waits until a header read came in, which
    only reading ahead can give (the guard ends the wait otherwise, and ``waited_in_vain`` says
    so). ``fail_after``: the listing breaks off after that many pages.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.hold_last_page = False
        self.waited_in_vain = False
        self.fail_after: int | None = None
        self.pages_handed = 0

    def list_files_paged(
        self, folder: str, on_page: Callable[[Sequence[FileEntry]], None]
    ) -> Sequence[FileEntry]:
        entries = self.list_files(folder)
        starts = range(0, len(entries), PAGE)
        for number, start in enumerate(starts, 1):
            if self.fail_after is not None and number > self.fail_after:
                raise ListingIncompleteError(f"MyWorks/{folder}", 3, "page 3 held 0 entries")
            if self.hold_last_page and folder.endswith("_sub") and number == len(starts):
                self.waited_in_vain = not self.first_read.wait(GUARD_S)
            on_page(entries[start : start + PAGE])
            self.pages_handed += 1
        return entries


def night(device: Device, add_run: AddRun) -> Device:
    """Two hours of 10 s subs, 13 s apart: many frames near a boundary, a stacked block."""
    add_run(datetime(2026, 2, 27, 19, 58, 3, tzinfo=UTC), 560, cadence=13, on=device)
    return device


def stack_one_block(device: FakeSeestar, zone: tzinfo) -> None:
    """Name a CrowdSky stack for one block, as if it had been stacked before."""
    device.storage.put(
        "MyWorks/IC 434/CrowdSky_60_IC 434_10.0s_LP_20260227.81_HP102265.fit", b"SIMPLE"
    )


def inventories(
    clock: FakeClock, add_run: AddRun, zone: tzinfo, **load: object
) -> tuple[TargetInventory, TargetInventory, Paged, Recording]:
    paged = night(Paged(clock=clock, zone="Europe/Vienna"), add_run)
    plain = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    for device in (paged, plain):
        stack_one_block(device, zone)
    found = [load_target(d, "IC 434", zone=zone, **load) for d in (paged, plain)]  # type: ignore[arg-type]
    return found[0], found[1], paged, plain


def same(a: TargetInventory, b: TargetInventory) -> None:
    assert (a.target, a.sub_folders, a.covered) == (b.target, b.sub_folders, b.covered)
    assert a.frames == b.frames  # with the same DATE-OBS read
    assert repr(a.zone) == repr(b.zone)  # a zone measured from headers has no ==
    assert a.frame_folders == b.frame_folders


def test_reading_ahead_plans_the_same_and_asks_the_device_the_same(
    clock: FakeClock, add_run: AddRun
) -> None:
    ahead, after, paged, plain = inventories(clock, add_run, VIENNA)
    same(ahead, after)
    assert sum(f.date_obs is not None for f in ahead.frames) > 10
    assert ahead.covered
    assert sorted(paged.reads) == sorted(plain.reads)  # each header once, none extra


def test_the_headers_are_read_while_the_listing_is_still_coming(
    clock: FakeClock, add_run: AddRun
) -> None:
    paged = night(Paged(clock=clock, zone="Europe/Vienna"), add_run)
    paged.hold_last_page = True
    load_target(paged, "IC 434", zone=VIENNA)
    assert paged.pages_handed == -(-len(paged.list_files("IC 434_sub")) // PAGE)
    assert not paged.waited_in_vain


@pytest.mark.filterwarnings("ignore::crowdsky.errors.DeviceTimeWarning")
def test_without_a_zone_to_forecast_in_nothing_is_read_ahead(
    clock: FakeClock, add_run: AddRun
) -> None:
    paged = night(Paged(clock=clock, zone="Europe/Vienna", report_zone=False), add_run)
    plain = night(Recording(clock=clock, zone="Europe/Vienna", report_zone=False), add_run)
    same(load_target(paged, "IC 434"), load_target(plain, "IC 434"))
    assert sorted(paged.reads) == sorted(plain.reads)


@pytest.mark.filterwarnings("ignore::crowdsky.errors.DeviceTimeWarning")
def test_a_forecast_the_headers_prove_wrong_changes_nothing(
    clock: FakeClock, add_run: AddRun
) -> None:
    """A zone seven minutes off: the samples overrule it, other frames are near a boundary."""
    odd = timezone(timedelta(hours=1, minutes=7))
    ahead, after, paged, plain = inventories(clock, add_run, odd)
    same(ahead, after)
    assert set(plain.reads) < set(paged.reads)  # read ahead for nothing, and not used


@pytest.mark.filterwarnings("ignore::crowdsky.errors.DeviceTimeWarning")
def test_an_unreadable_header_read_ahead_for_nothing_does_not_fail_the_target(
    clock: FakeClock, add_run: AddRun
) -> None:
    odd = timezone(timedelta(hours=1, minutes=7))
    _, after, _, plain = inventories(clock, add_run, odd)
    forecast = likely_headers([f for f in after.frames if f.date_obs is None], odd)
    needless = {after.path_of(f) for f in after.frames if f.name in forecast} - set(plain.reads)
    assert needless
    paged = night(Paged(clock=clock, zone="Europe/Vienna"), add_run)
    stack_one_block(paged, odd)
    paged.faults.read_fails = needless
    same(load_target(paged, "IC 434", zone=odd), after)
    assert needless <= set(paged.reads)


def test_the_first_unreadable_header_asked_for_still_fails_the_target(
    clock: FakeClock, add_run: AddRun
) -> None:
    failed = []
    for device in (
        night(Paged(clock=clock, zone="Europe/Vienna"), add_run),
        night(Recording(clock=clock, zone="Europe/Vienna"), add_run),
    ):
        device.faults.read_fails = lambda path: "_sub/" in path and path[-8:-4] > "2100"
        with pytest.raises(HeaderReadError, match="could not be read") as caught:
            load_target(device, "IC 434", zone=VIENNA)
        failed.append(caught.value.path)
    assert failed[0] == failed[1]


def test_a_listing_that_breaks_off_plans_nothing_and_leaves_no_read_running(
    clock: FakeClock, add_run: AddRun
) -> None:
    paged = night(Paged(clock=clock, zone="Europe/Vienna"), add_run)
    paged.fail_after = 10
    with pytest.raises(ListingIncompleteError):
        load_target(paged, "IC 434", zone=VIENNA)
    assert paged.pages_handed == 10
    assert not [t for t in threading.enumerate() if t.name.startswith("crowdsky-headers")]


class FolderListWaits(Paged):
    """A device whose folder list answers only once a sub folder's listing has begun.

    Only a listing made while the folder list is on its way lets it answer at once; otherwise
    the guard ends the wait and ``folders_waited_in_vain`` says so.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.listing_began = threading.Event()
        self.folders_waited_in_vain = False

    def list_folders(self) -> list[FolderEntry]:
        self.folders_waited_in_vain = not self.listing_began.wait(GUARD_S)
        return super().list_folders()

    def list_files_paged(
        self, folder: str, on_page: Callable[[Sequence[FileEntry]], None]
    ) -> Sequence[FileEntry]:
        if folder.endswith("_sub"):
            self.listing_began.set()
        return super().list_files_paged(folder, on_page)


def test_the_sub_folder_is_listed_while_the_folder_list_is_on_its_way(
    clock: FakeClock, add_run: AddRun
) -> None:
    waits = night(FolderListWaits(clock=clock, zone="Europe/Vienna"), add_run)
    plain = night(Recording(clock=clock, zone="Europe/Vienna"), add_run)
    for device in (waits, plain):
        stack_one_block(device, VIENNA)
    found = load_target(waits, "IC 434", zone=VIENNA)
    assert not waits.folders_waited_in_vain
    same(found, load_target(plain, "IC 434", zone=VIENNA))
    assert sorted(waits.reads) == sorted(plain.reads)  # the same headers, each read once


class OtherSubFolder(Paged):
    """The frames are in ``IC 434-sub``; ``IC 434_sub`` is on the share but not in the folder
    list, and listing it fails."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.listed: list[str] = []

    def list_folders(self) -> list[FolderEntry]:
        return [f for f in super().list_folders() if f.name != "IC 434_sub"]

    def list_files_paged(
        self, folder: str, on_page: Callable[[Sequence[FileEntry]], None]
    ) -> Sequence[FileEntry]:
        self.listed.append(folder)
        if folder == "IC 434_sub":
            raise ListingIncompleteError("MyWorks/IC 434_sub", 3, "page 2 held 0 entries")
        return super().list_files_paged(folder, on_page)


def test_a_folder_listed_ahead_that_the_folder_list_does_not_name_is_not_used(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = night(OtherSubFolder(clock=clock, zone="Europe/Vienna"), add_run)
    for path, content in device.storage.items():
        if path.startswith("MyWorks/IC 434_sub/"):
            device.storage.put(path.replace("IC 434_sub/", "IC 434-sub/"), content)
    found = load_target(device, "IC 434", zone=VIENNA)
    assert device.listed == ["IC 434_sub", "IC 434-sub"]  # the guess first, and its failure
    assert found.sub_folders == ("IC 434-sub",)  # ... is not the target's
    assert len(found.frames) == 560
    assert set(found.frame_folders.values()) == {"IC 434-sub"}


def test_an_unknown_target_is_still_unknown_and_leaves_no_thread(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = night(Paged(clock=clock, zone="Europe/Vienna"), add_run)
    with pytest.raises(UnknownTargetError):
        load_target(device, "M 99", zone=VIENNA)
    names = ("crowdsky-headers", "crowdsky-folders")
    assert not [t for t in threading.enumerate() if t.name.startswith(names)]
