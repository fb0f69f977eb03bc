"""The device model's stores: one behaviour in memory and on disk, real files on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from astropy.io import fits

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER, S50_SHAPE, FitsImage
from crowdsky.adapters.device_model.night import add_sub, demo_seestar
from crowdsky.adapters.device_model.storage import DeviceStorage, DirectoryStorage, MemoryStorage
from crowdsky.app.ports import FileEntry
from crowdsky.errors import StorageError

SUB = FitsImage({"OBJECT": "IC 434", "FILTER": "IRCUT   ", "RA": 85.25, "EXPTIME": 10.0})
STACK = FitsImage({"OBJECT": "IC 434", "STACKCNT": 3}, planes=3)
FIT = "MyWorks/IC 434_sub/Light_IC 434_10.0s_IRCUT_20260227-212254.fit"
JPG = "MyWorks/IC 434_sub/Light_IC 434_10.0s_IRCUT_20260227-212254.jpg"


@pytest.fixture(params=["memory", "directory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeviceStorage]:
    if request.param == "memory":
        yield MemoryStorage()
    else:
        yield DirectoryStorage(tmp_path / "emmc")


def test_put_list_and_read(storage: DeviceStorage) -> None:
    storage.put(FIT, SUB)
    storage.put(JPG, JPEG_PLACEHOLDER)
    assert storage.folders() == ["IC 434_sub"]
    assert [f.name for f in storage.files("IC 434_sub")] == [FIT[19:], JPG[19:]]
    assert storage.exists(FIT)
    assert not storage.exists("MyWorks/IC 434_sub/other.fit")
    header = storage.read_header(FIT)
    assert header["FILTER"] == "IRCUT"  # right-stripped
    assert (header["SIMPLE"], header["BITPIX"], header["NAXIS"], header["BZERO"]) == (
        True,
        16,
        2,
        32768,
    )
    assert header["RA"] == 85.25


def test_stacks_have_three_planes(storage: DeviceStorage) -> None:
    storage.put("MyWorks/IC 434/s.fit", STACK)
    header = storage.read_header("MyWorks/IC 434/s.fit")
    assert (header["NAXIS"], header["NAXIS3"], header["STACKCNT"]) == (3, 3, 3)


def test_missing_folder_lists_empty(storage: DeviceStorage) -> None:
    assert storage.files("Nothing") == []
    assert storage.files("../..") == [] or isinstance(storage, MemoryStorage)


def test_read_header_of_missing_or_jpeg(storage: DeviceStorage) -> None:
    storage.put(JPG, JPEG_PLACEHOLDER)
    for path in (FIT, JPG):
        with pytest.raises(StorageError):
            storage.read_header(path)


def test_rename_and_its_refusals(storage: DeviceStorage) -> None:
    storage.put(FIT, SUB)
    storage.put(JPG, JPEG_PLACEHOLDER)
    storage.rename(JPG, "renamed.jpg")
    assert not storage.exists(JPG)
    assert storage.exists("MyWorks/IC 434_sub/renamed.jpg")
    with pytest.raises(StorageError):
        storage.rename(JPG, "again.jpg")
    with pytest.raises(StorageError):
        storage.rename(FIT, "renamed.jpg")  # never replaces
    with pytest.raises(StorageError):
        storage.rename(FIT, "sub/dir.fit")
    assert storage.read_header(FIT)["OBJECT"] == "IC 434"


def test_delete(storage: DeviceStorage) -> None:
    storage.put(FIT, SUB)
    storage.delete(FIT)
    assert storage.files("IC 434_sub") == []
    assert storage.folders() == ["IC 434_sub"]  # the folder stays
    with pytest.raises(StorageError):
        storage.delete(FIT)


def test_put_replaces(storage: DeviceStorage) -> None:
    storage.put(FIT, SUB)
    storage.put(FIT, FitsImage({"OBJECT": "M 42"}))
    assert storage.read_header(FIT)["OBJECT"] == "M 42"
    assert len(storage.files("IC 434_sub")) == 1


def test_download_is_valid_and_atomic(storage: DeviceStorage, tmp_path: Path) -> None:
    storage.put(FIT, SUB)
    storage.put(JPG, JPEG_PLACEHOLDER)
    out = tmp_path / "out"
    out.mkdir()
    dest = storage.download(FIT, out / "sub.fit")
    with fits.open(dest) as hdul:
        assert hdul[0].header["OBJECT"] == "IC 434"
        assert hdul[0].data.dtype.name == "uint16"
    listed = {f.name: f.size for f in storage.files("IC 434_sub")}
    assert dest.stat().st_size == listed[FIT[19:]]
    assert storage.download(JPG, out / "x.jpg").read_bytes() == JPEG_PLACEHOLDER
    assert sorted(p.name for p in out.iterdir()) == ["sub.fit", "x.jpg"]


def test_failed_download_keeps_the_old_file(storage: DeviceStorage, tmp_path: Path) -> None:
    dest = tmp_path / "keep.fit"
    dest.write_bytes(b"previous")
    with pytest.raises(StorageError):
        storage.download(FIT, dest)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["keep.fit"]


@pytest.mark.parametrize(
    "path", ["IC 434_sub/a.fit", "MyWorks/a.fit", "MyWorks/../a/b", "MyWorks/a/b/c", "MyWorks//a"]
)
def test_paths_outside_myworks_are_refused(storage: DeviceStorage, path: str) -> None:
    with pytest.raises(StorageError):
        storage.put(path, JPEG_PLACEHOLDER)
    with pytest.raises(StorageError):
        storage.exists(path)
    assert storage.folders() == []


def test_memory_sizes_are_those_of_full_s50_files() -> None:
    storage = MemoryStorage()
    storage.put(FIT, SUB)
    storage.put("MyWorks/IC 434/s.fit", STACK)
    assert storage.shape == S50_SHAPE
    assert storage.files("IC 434_sub") == [FileEntry(FIT[19:], 2880 + 1080 * 1920 * 2)]
    assert storage.files("IC 434")[0].size == 2880 + 3 * 1080 * 1920 * 2


def test_directory_tree_is_real_and_small(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.put(FIT, SUB)
    storage.put(JPG, JPEG_PLACEHOLDER)
    on_disk = tmp_path / FIT
    assert on_disk.is_file()
    assert storage.files("IC 434_sub")[0].size == on_disk.stat().st_size < 10_000
    with fits.open(on_disk) as hdul:
        assert hdul[0].data.shape == (32, 18)
    assert (tmp_path / JPG).read_bytes()[:2] == b"\xff\xd8"


def test_directory_listing_ignores_partial_files(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.put(FIT, SUB)
    (tmp_path / (FIT + ".part")).write_bytes(b"half")
    assert [f.name for f in storage.files("IC 434_sub")] == [FIT[19:]]


def test_directory_sees_files_changed_behind_its_back(tmp_path: Path) -> None:
    """Samba shares the same tree: a rename there is what the model sees."""
    storage = DirectoryStorage(tmp_path)
    storage.put(JPG, JPEG_PLACEHOLDER)
    os.rename(tmp_path / JPG, tmp_path / "MyWorks/IC 434_sub/moved.jpg")
    assert [f.name for f in storage.files("IC 434_sub")] == ["moved.jpg"]


def test_garbage_fits_is_a_storage_error(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.put(FIT, b"SIMPLE  = nonsense")
    with pytest.raises(StorageError):
        storage.read_header(FIT)


def test_device_over_a_directory(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 2, 28, 6, 0, tzinfo=UTC))
    device = FakeSeestar(clock=clock, storage=DirectoryStorage(tmp_path))
    start = datetime(2026, 2, 27, 20, 22, 40, tzinfo=UTC)
    paths = [
        add_sub(device, "IC 434", 10.0, "LP", start + timedelta(seconds=13 * i), 85.25, -2.46)
        for i in range(3)
    ]
    device.configure_batch_stack("MyWorks/IC 434_sub", paths)
    device.start_batch_stack()
    status = device.batch_stack_status()
    assert status is not None
    assert status.output_fit is not None
    with fits.open(tmp_path / status.output_fit) as hdul:
        assert hdul[0].header["STACKCNT"] == 3
        assert hdul[0].data.shape == (3, 32, 18)
    assert {p.name for p in (tmp_path / "MyWorks/IC 434").iterdir()} == {
        status.output_files[0],
        status.output_files[0].replace(".fit", ".jpg"),
        status.output_files[1],
    }


def test_memory_and_directory_demo_agree(tmp_path: Path) -> None:
    memory = demo_seestar()
    disk = demo_seestar(storage=DirectoryStorage(tmp_path))
    assert memory.list_folders() == disk.list_folders()
    for folder in ("IC 434", "M 42_sub"):
        assert [f.name for f in memory.list_files(folder)] == [
            f.name for f in disk.list_files(folder)
        ]
    path = "MyWorks/IC 434_sub/" + memory.list_files("IC 434_sub")[0].name
    mine, theirs = memory.read_header(path), disk.read_header(path)
    for key in ("NAXIS1", "NAXIS2"):
        mine.pop(key)
        theirs.pop(key)
    assert mine == theirs
