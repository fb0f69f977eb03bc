"""The cached demo Seestar of ``--simulator``: the night index gives back the night laid down."""

from __future__ import annotations

from pathlib import Path

from crowdsky.adapters.device_model.demo_cache import (
    MARKER,
    NIGHT_INDEX,
    IndexedNightStorage,
    _read_index,
    _write_index,
    cached_demo_seestar,
)
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER, FitsImage
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.adapters.device_model.storage import MemoryStorage, SplitStorage


def _raw(device: FakeSeestar) -> object:
    storage = device.storage
    assert isinstance(storage, SplitStorage)
    return storage.raw


def _same_device(device: FakeSeestar, laid: FakeSeestar) -> None:
    assert device.clock.now() == laid.clock.now()
    for setting in ("zone", "report_zone", "firmware", "instrument", "telescope"):
        assert getattr(device, setting) == getattr(laid, setting)
    assert device.storage.folders() == laid.storage.folders()
    for folder in laid.storage.folders():
        files = laid.storage.files(folder)
        if not folder.endswith("_sub"):  # target folders: small files on disk
            assert [f.name for f in device.storage.files(folder)] == [f.name for f in files]
            continue
        assert device.storage.files(folder) == files, folder
        for entry in files:
            path = f"MyWorks/{folder}/{entry.name}"
            if entry.name.endswith(".fit"):
                assert device.storage.read_header(path) == laid.storage.read_header(path)


def test_a_later_command_gets_the_night_back_from_the_index(tmp_path: Path) -> None:
    first = cached_demo_seestar(tmp_path)
    assert isinstance(_raw(first), MemoryStorage)  # laid down, then described
    assert (tmp_path / NIGHT_INDEX).is_file()
    later = cached_demo_seestar(tmp_path)
    assert isinstance(_raw(later), IndexedNightStorage)  # not laid down again
    _same_device(later, demo_seestar())


def test_an_index_cut_short_or_of_another_night_is_written_anew(tmp_path: Path) -> None:
    cached_demo_seestar(tmp_path)
    index = tmp_path / NIGHT_INDEX
    text = index.read_text(encoding="utf-8")
    index.write_text(text[: len(text) // 2], encoding="utf-8")  # half the folders
    assert _read_index(index) is None
    device = cached_demo_seestar(tmp_path)
    assert isinstance(_raw(device), MemoryStorage)  # laid down again, never a shorter night
    assert index.read_text(encoding="utf-8") == text
    index.write_text(text.replace('"demo": "', '"demo": "older-'), encoding="utf-8")
    assert _read_index(index) is None


def test_reset_clears_the_index_with_the_stacks(tmp_path: Path) -> None:
    cached_demo_seestar(tmp_path)
    assert (tmp_path / MARKER).is_file()
    device = cached_demo_seestar(tmp_path, reset=True)
    assert isinstance(_raw(device), MemoryStorage)  # started over from the demo night
    assert (tmp_path / NIGHT_INDEX).is_file()


def test_options_lay_the_night_down_as_asked(tmp_path: Path) -> None:
    cached_demo_seestar(tmp_path)
    device = cached_demo_seestar(tmp_path, zone="America/New_York")
    assert isinstance(_raw(device), MemoryStorage)
    assert device.zone == "America/New_York"


def test_any_folder_content_comes_back_as_it_was(tmp_path: Path) -> None:
    # Beyond the demo's uniform subs: a stack, a frame with other cards, other bytes, a JPEG.
    memory = MemoryStorage()
    contents = {
        "a.fit": FitsImage({"OBJECT": "M 42", "EXPTIME": 10.0, "DATE-OBS": "x1"}),
        "b.fit": FitsImage({"OBJECT": "M 42", "EXPTIME": 10.0, "DATE-OBS": "x2"}),
        "c.fit": FitsImage({"OBJECT": "M 42", "EXPTIME": 10.0, "DATE-OBS": "x3"}, planes=3),
        "d.fit": FitsImage({"EXPTIME": 20.0, "OBJECT": "M 42", "GAIN": 80}),
        "a.jpg": JPEG_PLACEHOLDER,
        "e.jpg": bytes(range(256)),
    }
    for name, content in contents.items():
        memory.put(f"MyWorks/M 42_sub/{name}", content)
    memory.put("MyWorks/M 42/stack.fit", FitsImage({"OBJECT": "M 42"}, planes=3))  # not raw
    memory.put("MyWorks/M 81_sub/gone.jpg", JPEG_PLACEHOLDER)
    memory.delete("MyWorks/M 81_sub/gone.jpg")  # an empty folder stays, as on the device
    device = FakeSeestar(storage=memory)
    _write_index(tmp_path / NIGHT_INDEX, device, memory)
    index = _read_index(tmp_path / NIGHT_INDEX)
    assert index is not None
    storage = IndexedNightStorage(index.folders, index.shape)
    assert storage.folders() == ["M 42_sub", "M 81_sub"]
    assert storage.files("M 81_sub") == []
    assert not storage.exists("MyWorks/M 81_sub/gone.jpg")
    assert storage.files("M 42_sub") == memory.files("M 42_sub")
    for name in contents:
        path = f"MyWorks/M 42_sub/{name}"
        out = tmp_path / name
        assert (
            storage.download(path, out).read_bytes()
            == memory.download(path, tmp_path / "x").read_bytes()
        )
        if name.endswith(".fit"):
            assert list(storage.read_header(path).items()) == list(memory.read_header(path).items())
    assert storage.files("M 42_sub") == memory.files("M 42_sub")  # filled now: the same listing
