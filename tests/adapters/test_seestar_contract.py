"""One contract for every Seestar: the in-memory FakeSeestar and NetworkSeestar on the simulator.

Each case runs against ``fake`` (a :class:`FakeSeestar` over a directory) and ``network-<fw>``
for every firmware profile of the simulator (:data:`FIRMWARE_PROFILES`: the same kind of device,
running that firmware, served by :class:`SimulatorServer` on loopback, reached by
:class:`NetworkSeestar` over JSON-RPC and HTTP, renaming through the simulator's root as a
mounted share, listing in JSON-RPC pages); a profile added there is picked up here. ``share`` is
the default profile listing its folders through the mounted share instead. The rename and delete
cases also run over ``smb``: a real Samba server exporting the simulator's root as ``EMMC Images``
(which lists through SMB). Files are laid down through the device model, so both sides see
exactly the same night.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import (
    SAVE_DELAY_S,
    VIENNA,
    Target,
    add_sub,
    sub_image,
    sub_name,
)
from crowdsky.adapters.seestar.network import NetworkSeestar
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.options import FIRMWARE_PROFILES
from crowdsky.adapters.simulator.server import device_firmware
from crowdsky.app.ports import BatchStackEvents, BatchStackStatus, DeviceTime, Seestar
from crowdsky.domain.device_paths import check_mutable_path, check_new_name
from crowdsky.errors import SeestarRpcError, StorageError

try:  # tests/ laid out as packages
    from .samba import SambaServer, SambaUnavailable, find_smbd
except ImportError:  # rootdir-relative imports
    from samba import SambaServer, SambaUnavailable, find_smbd  # type: ignore[no-redef]

START = datetime(2026, 2, 27, 20, 22, 40, tzinfo=UTC)  # 21:22:40 in Vienna
MORNING = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)  # 07:00 in Vienna
EPSILON = "\u03b5 Cnc"


@attrs.define
class Rig:
    """A Seestar under test, the device model behind it and the directory holding its files."""

    seestar: Seestar
    device: FakeSeestar
    clock: FakeClock
    root: Path
    kind: str

    def lay(self, count: int, target: str = "IC 434", *, ra: float = 85.25) -> list[str]:
        """``count`` raw subs 13 s apart, with JPEG companions; their ``.fit`` paths."""
        return [self._lay_one(target, START + i * timedelta(seconds=13), ra) for i in range(count)]

    def _lay_one(self, target: str, date_obs: datetime, ra: float) -> str:
        if target.isascii():
            return add_sub(self.device, target, 10.0, "LP", date_obs, ra, -2.46)
        # FITS cards are ASCII: the header names the target in ASCII, the folder does not.
        saved = date_obs + timedelta(seconds=10.0 + SAVE_DELAY_S)
        path = f"MyWorks/{target}_sub/{sub_name(self.device, target, 10.0, 'LP', saved)}"
        header = Target(target.encode("ascii", "replace").decode(), ra, -2.46)
        image = sub_image(self.device, header, 10.0, "LP", date_obs, VIENNA, 24.0)
        self.device.storage.put(path, image)
        self.device.storage.put(path.replace(".fit", "_thn.jpg"), JPEG_PLACEHOLDER)
        return path

    def local(self, path: str) -> Path:
        return self.root.joinpath(*path.split("/"))


#: One network rig per firmware profile of the simulator.
NETWORK_KINDS = [f"network-{profile}" for profile in FIRMWARE_PROFILES]
DEFAULT_PROFILE = SimulatorOptions().firmware


def _device(root: Path, clock: FakeClock, firmware: str = DEFAULT_PROFILE) -> FakeSeestar:
    return FakeSeestar(
        clock=clock,
        zone="Europe/Vienna",
        storage=DirectoryStorage(root),
        seconds_per_frame=2.0,
        setup_seconds=1.0,
        firmware=device_firmware(firmware),
    )


@attrs.frozen
class Keys:
    """A stand-in for the Seestar app's key, made at run time; the private half in a file."""

    private_file: Path
    public_pem: bytes


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    private, public = generate_test_keypair()
    path = tmp_path_factory.mktemp("key") / "seestar_key.pem"
    path.write_bytes(private)
    return Keys(path, public)


def _network(
    stack: ExitStack,
    root: Path,
    clock: FakeClock,
    keys: Keys,
    smb: SambaServer | None = None,
    firmware: str = DEFAULT_PROFILE,
    *,
    through_share: bool = False,
) -> Rig:
    device = _device(root, clock, firmware)
    options = SimulatorOptions(
        auth_public_key=keys.public_pem,
        firmware=firmware,
        pistatus_interval=None,
        batch_poll_interval=0.05,
    )
    sim = stack.enter_context(SimulatorServer(device, root, options=options))
    seestar = NetworkSeestar(
        sim.host,
        port=sim.rpc_port,
        http_port=sim.http_port,
        key_path=keys.private_file,
        mounted_share=None if smb else root,
        smb_port=smb.port if smb else 445,
        timeout=5.0,
        list_through_share=through_share or smb is not None,
    )
    stack.callback(seestar.close)
    kind = "smb" if smb else "share" if through_share else f"network-{firmware}"
    return Rig(seestar, device, clock, root, kind)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="module")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaServer]:
    """An ``smbd`` exporting a directory that each SMB test uses as the simulator's root."""
    if find_smbd() is None:
        if _in_ci():
            pytest.fail("Samba is required in CI: smbd is not installed", pytrace=False)
        pytest.skip("smbd is not installed (apt-get install samba)")
    base = tmp_path_factory.mktemp("contract-samba")
    (base / "work").mkdir()
    (base / "share").mkdir()
    server = SambaServer(base / "work", base / "share")
    try:
        server.start()
    except SambaUnavailable as exc:
        if _in_ci():
            pytest.fail(f"Samba is required in CI: {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def _emptied(directory: Path) -> Path:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return directory


def _make_rig(request: pytest.FixtureRequest, tmp_path: Path, stack: ExitStack) -> Rig:
    clock = FakeClock(MORNING)
    kind: str = request.param
    if kind == "fake":
        device = _device(tmp_path / "emmc", clock)
        return Rig(device, device, clock, tmp_path / "emmc", kind)
    keys: Keys = request.getfixturevalue("keys")
    if kind == "share":
        return _network(stack, tmp_path / "emmc", clock, keys, through_share=True)
    if kind.startswith("network-"):
        return _network(stack, tmp_path / "emmc", clock, keys, firmware=kind.split("-", 1)[1])
    samba: SambaServer = request.getfixturevalue("samba")
    return _network(stack, _emptied(samba.share_dir), clock, keys, smb=samba)


@pytest.fixture(params=["fake", *NETWORK_KINDS, "share"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    with ExitStack() as stack:
        yield _make_rig(request, tmp_path, stack)


@pytest.fixture(params=["fake", *NETWORK_KINDS, "share", "smb"])
def files_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """For renames and deletes, which also go over a real SMB server."""
    with ExitStack() as stack:
        yield _make_rig(request, tmp_path, stack)


# --- listings ------------------------------------------------------------------------------------


def test_folders_list_targets_and_sub_folders_with_entry_counts(rig: Rig) -> None:
    rig.lay(3)
    rig.lay(2, EPSILON, ra=120.0)
    folders = {entry.name: entry.count for entry in rig.seestar.list_folders()}
    assert folders == {"IC 434_sub": 3, f"{EPSILON}_sub": 2}


def test_files_page_past_twenty_with_sizes(rig: Rig) -> None:
    paths = rig.lay(25)  # 75 files: four pages on the device
    entries = rig.seestar.list_files("IC 434_sub")
    on_disk = {p.name: p.stat().st_size for p in (rig.root / "MyWorks" / "IC 434_sub").iterdir()}
    assert [e.name for e in entries] == sorted(on_disk)
    assert len(entries) == 75
    assert {p.rsplit("/", 1)[1] for p in paths} <= {e.name for e in entries}
    for entry in entries:  # the device reports whole KiB
        assert 0 <= on_disk[entry.name] - entry.size < 1024


def test_names_with_spaces_and_greek_letters_list_and_read(rig: Rig) -> None:
    (path,) = rig.lay(1, EPSILON, ra=120.0)
    assert [e.name for e in rig.seestar.list_files(f"{EPSILON}_sub")] == sorted(
        p.name for p in (rig.root / "MyWorks" / f"{EPSILON}_sub").iterdir()
    )
    header = rig.seestar.read_header(path)
    assert header["OBJECT"] == "? Cnc"
    assert header["DATE-OBS"].startswith("2026-02-27T20:22:40")


def test_a_missing_folder_lists_empty(rig: Rig) -> None:
    rig.lay(1)
    assert list(rig.seestar.list_files("No Such Target_sub")) == []


def test_headers_of_missing_or_non_fits_files_are_storage_errors(rig: Rig) -> None:
    (path,) = rig.lay(1)
    with pytest.raises(StorageError):
        rig.seestar.read_header(path.replace(".fit", "_missing.fit"))
    with pytest.raises(StorageError):
        rig.seestar.read_header(path.replace(".fit", "_thn.jpg"))


def test_device_time_is_the_wall_clock_and_zone(rig: Rig) -> None:
    assert rig.seestar.device_time() == DeviceTime(datetime(2026, 2, 28, 7, 0), "Europe/Vienna")
    rig.device.report_zone = False
    assert rig.seestar.device_time().zone is None


# --- batch stacking ------------------------------------------------------------------------------


def status(rig: Rig) -> BatchStackStatus:
    reading = rig.seestar.batch_stack_status()
    assert reading is not None
    return reading


def test_a_batch_stack_runs_to_complete_and_stays_until_cleared(rig: Rig) -> None:
    paths = rig.lay(5)
    rig.seestar.clear_batch_stack()
    assert rig.seestar.batch_stack_status() is None
    rig.seestar.configure_batch_stack("IC 434_sub", paths)
    rig.seestar.start_batch_stack()
    assert status(rig).state == "working"
    assert status(rig).total_img == 5
    rig.clock.advance(3600)
    done = status(rig)
    assert done.state == "complete"
    assert (done.stacked_img, done.percent) == (5, 100.0)
    assert done.output_folder == "MyWorks/IC 434"
    assert done.output_fit is not None
    assert done.output_fit.rsplit("/", 1)[1] in {e.name for e in rig.seestar.list_files("IC 434")}
    assert rig.seestar.read_header(done.output_fit)["STACKCNT"] == 5
    rig.clock.advance(60)
    assert status(rig) == done  # stale until cleared
    rig.seestar.clear_batch_stack()
    assert rig.seestar.batch_stack_status() is None


def test_a_second_start_is_refused_with_259(rig: Rig) -> None:
    rig.seestar.configure_batch_stack("IC 434_sub", rig.lay(5))
    rig.seestar.start_batch_stack()
    with pytest.raises(SeestarRpcError) as refused:
        rig.seestar.start_batch_stack()
    assert refused.value.code == 259
    assert status(rig).state == "working"


def test_stop_cancels_and_is_harmless_when_idle(rig: Rig) -> None:
    rig.seestar.stop_batch_stack()
    rig.seestar.configure_batch_stack("IC 434_sub", rig.lay(5))
    rig.seestar.start_batch_stack()
    rig.seestar.stop_batch_stack()
    assert status(rig).state == "cancel"
    rig.clock.advance(3600)
    assert status(rig).state == "cancel"
    assert [e for e in rig.seestar.list_files("IC 434") if e.name.endswith(".fit")] == []
    rig.seestar.stop_batch_stack()


def test_a_stack_of_frames_that_do_not_exist_fails_with_no_image(rig: Rig) -> None:
    rig.lay(1)
    rig.seestar.configure_batch_stack("IC 434_sub", ["MyWorks/IC 434_sub/Light_nothing.fit"])
    rig.seestar.start_batch_stack()
    rig.clock.advance(60)
    failed = status(rig)
    assert (failed.state, failed.code) == ("fail", 267)


# --- renames, deletes, downloads -----------------------------------------------------------------


def stacked(rig: Rig) -> str:
    """A completed stack's ``.fit`` path, cleared from the device's state."""
    rig.seestar.configure_batch_stack("IC 434_sub", rig.lay(3))
    rig.seestar.start_batch_stack()
    rig.clock.advance(3600)
    fit = status(rig).output_fit
    assert fit is not None
    rig.seestar.clear_batch_stack()
    return fit


def test_renames_and_deletes_outside_sub_folders(files_rig: Rig) -> None:
    rig = files_rig
    fit = stacked(rig)
    new = "CrowdSky_3_IC 434_10.0s_LP_20260227.81_HP102265.fit"
    rig.seestar.rename(fit, new)
    names = {e.name for e in rig.seestar.list_files("IC 434")}
    assert new in names
    assert fit.rsplit("/", 1)[1] not in names
    assert rig.local(f"MyWorks/IC 434/{new}").is_file()
    with pytest.raises(StorageError):
        rig.seestar.rename(fit, "anything.fit")  # gone
    thumb = next(n for n in names if n.endswith("_thn.jpg"))
    with pytest.raises(StorageError):
        rig.seestar.rename(f"MyWorks/IC 434/{thumb}", new)  # would overwrite
    rig.seestar.delete(f"MyWorks/IC 434/{new}")
    assert not rig.local(f"MyWorks/IC 434/{new}").exists()
    with pytest.raises(StorageError):
        rig.seestar.delete(f"MyWorks/IC 434/{new}")


def test_renames_and_deletes_in_folders_with_greek_names(files_rig: Rig) -> None:
    folder = f"MyWorks/{EPSILON}"
    old = f"DSO_Stacked_2_{EPSILON}_10.0s_20260227_221000_thn.jpg"
    new = f"CrowdSky_2_{EPSILON}_10.0s_LP_20260227.84_HP071234_thn.jpg"
    files_rig.device.storage.put(f"{folder}/{old}", JPEG_PLACEHOLDER)
    files_rig.seestar.rename(f"{folder}/{old}", new)
    assert [e.name for e in files_rig.seestar.list_files(EPSILON)] == [new]
    assert files_rig.local(f"{folder}/{new}").read_bytes() == JPEG_PLACEHOLDER
    files_rig.seestar.delete(f"{folder}/{new}")
    assert list(files_rig.seestar.list_files(EPSILON)) == []


def test_raw_sub_frames_are_never_renamed_or_deleted(files_rig: Rig) -> None:
    (path,) = files_rig.lay(1)
    before = files_rig.local(path).read_bytes()
    with pytest.raises(StorageError):
        files_rig.seestar.rename(path, "CrowdSky_1_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    with pytest.raises(StorageError):
        files_rig.seestar.delete(path)
    assert files_rig.local(path).read_bytes() == before


# --- what may be renamed or deleted, and to what -------------------------------------------------

STACK_JPG = "MyWorks/IC 434/DSO_Stacked_3_IC 434_10.0s_20260227_212500_thn.jpg"
BAD_NAMES = [
    "",
    "   ",
    ".",
    "..",
    "a/b.jpg",
    "../b.jpg",
    "a\\b.jpg",
    "a*b.jpg",
    "*",
    "b?.jpg",
    "a:b.jpg",
    "<b>.jpg",
    'a"b.jpg',
    "a|b.jpg",
    "a\x00b.jpg",
]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the device's storage and anything beside it) with its bytes."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def refusal(check: Callable[[str], object], argument: str) -> str:
    """The message of the domain rule's refusal of ``argument``."""
    with pytest.raises(StorageError) as refused:
        check(argument)
    return str(refused.value)


def test_bad_new_names_are_refused_alike_by_every_seestar(files_rig: Rig) -> None:
    files_rig.device.storage.put(STACK_JPG, JPEG_PLACEHOLDER)
    before = snapshot(files_rig.root)
    for name in BAD_NAMES:
        with pytest.raises(StorageError) as renamed:
            files_rig.seestar.rename(STACK_JPG, name)
        assert str(renamed.value) == refusal(check_new_name, name), repr(name)
        path = f"MyWorks/IC 434/{name}"
        with pytest.raises(StorageError) as deleted:
            files_rig.seestar.delete(path)
        assert str(deleted.value) == refusal(check_mutable_path, path), repr(name)
    assert snapshot(files_rig.root) == before


def test_paths_that_leave_myworks_are_refused(files_rig: Rig, tmp_path: Path) -> None:
    (sub,) = files_rig.lay(1)
    files_rig.device.storage.put(STACK_JPG, JPEG_PLACEHOLDER)
    (files_rig.root / "secret.jpg").write_bytes(JPEG_PLACEHOLDER)
    (files_rig.root / "Other" / "IC 434").mkdir(parents=True)
    (files_rig.root / "Other" / "IC 434" / "a.jpg").write_bytes(JPEG_PLACEHOLDER)
    jpg = STACK_JPG.rsplit("/", 1)[1]
    escapes = [
        "",
        "MyWorks",
        "MyWorks/secret.jpg",
        "MyWorks/../secret.jpg",
        "MyWorks/./IC 434/" + jpg,
        "MyWorks//IC 434/" + jpg,
        "/" + STACK_JPG,
        "../" + STACK_JPG,
        STACK_JPG.replace("/", "\\"),
        "Other/IC 434/a.jpg",
        "MyWorks/IC 434/../" + sub.removeprefix("MyWorks/"),
        "MyWorks/IC 434/inner/" + jpg,
    ]
    before = snapshot(files_rig.root)
    for path in escapes:
        with pytest.raises(StorageError) as renamed:
            files_rig.seestar.rename(path, "CrowdSky_b.jpg")
        assert str(renamed.value) == refusal(check_mutable_path, path), repr(path)
        with pytest.raises(StorageError) as deleted:
            files_rig.seestar.delete(path)
        assert str(deleted.value) == str(renamed.value), repr(path)
        with pytest.raises(StorageError):
            files_rig.seestar.download(path, tmp_path / "copy.jpg")
    assert snapshot(files_rig.root) == before
    assert not (tmp_path / "copy.jpg").exists()


@pytest.mark.parametrize(
    "suffix", ["_sub", "-sub", "_mosaic_sub", "_SUB", "-Sub", "_Mosaic_SUB", "_sub."]
)
def test_no_raw_sub_folder_form_lets_a_sub_change(files_rig: Rig, suffix: str) -> None:
    name = "Light_IC 434_10.0s_LP_20260227-212253.fit"
    path = f"MyWorks/IC 434{suffix}/{name}"
    header = Target("IC 434", 85.25, -2.46)
    files_rig.device.storage.put(
        path, sub_image(files_rig.device, header, 10.0, "LP", START, VIENNA, 24.0)
    )
    before = snapshot(files_rig.root)
    spellings = {path, f"MyWorks/IC 434{suffix.upper()}/{name}", f"MyWorks/IC 434{suffix} /{name}"}
    for spelling in sorted(spellings):
        with pytest.raises(StorageError, match="raw sub-frames"):
            files_rig.seestar.rename(
                spelling, "CrowdSky_1_IC 434_10.0s_LP_20260227.81_HP102265.fit"
            )
        with pytest.raises(StorageError, match="raw sub-frames"):
            files_rig.seestar.delete(spelling)
    assert snapshot(files_rig.root) == before
    assert files_rig.seestar.read_header(path)["OBJECT"] == "IC 434"


def test_downloads_are_whole_and_atomic(rig: Rig, tmp_path: Path) -> None:
    (path,) = rig.lay(1)
    dest = tmp_path / "out" / "copy.fit"
    dest.parent.mkdir()
    assert rig.seestar.download(path, dest) == dest
    assert dest.read_bytes() == rig.local(path).read_bytes()
    with pytest.raises(StorageError):
        rig.seestar.download(path.replace(".fit", "_missing.fit"), tmp_path / "out" / "none.fit")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["copy.fit"]


def test_a_download_tells_its_bytes_as_they_arrive(rig: Rig, tmp_path: Path) -> None:
    # Several pieces of the network adapter's 1 MiB buffer: the count grows to the whole size.
    body = b"SIMPLE  =                    T".ljust(1200 * 2880, b" ")
    path = "MyWorks/IC 434/DSO_Stacked_big.fit"
    rig.device.storage.put(path, body)
    moved: list[tuple[int, int | None]] = []
    dest = rig.seestar.download(
        path, tmp_path / "big.fit", on_bytes=lambda done, total: moved.append((done, total))
    )
    assert dest.read_bytes() == body
    assert moved[-1] == (len(body), len(body))
    counts = [done for done, _ in moved]
    assert counts == sorted(set(counts))  # strictly growing
    assert {total for _, total in moved} == {len(body)}
    if rig.kind != "fake":
        assert len(moved) >= 3  # per piece, not once at the end


# --- network only --------------------------------------------------------------------------------


@pytest.mark.parametrize("rig", NETWORK_KINDS, indirect=True)
def test_the_network_seestar_is_woken_by_pushed_batch_stack_events(rig: Rig) -> None:
    seestar = rig.seestar
    assert isinstance(seestar, BatchStackEvents)
    seestar.configure_batch_stack("IC 434_sub", rig.lay(2))
    seestar.start_batch_stack()
    rig.clock.advance(3600)
    assert seestar.wait_batch_stack_event(10.0)
