"""One contract for renames and deletes: a mounted share and real SMB (smbd on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdsky.adapters.seestar.file_ops import FileOps, MountedShareFileOps, SmbFileOps
from crowdsky.app.ports import FileEntry
from crowdsky.errors import SeestarConnectionError, StorageError

try:
    from .samba import SambaServer, free_port
except ImportError:
    from samba import SambaServer, free_port  # type: ignore[no-redef]

STACK = "MyWorks/M 81/DSO_Stacked_33_M 81_20.0s_20260227_225203"
CROWD = "CrowdSky_33_M 81_20.0s_LP_20260227.87_HP102265"


def put(root: Path, path: str, data: bytes = b"SIMPLE  =") -> Path:
    local = root.joinpath(*path.split("/"))
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    return local


def snapshot(root: Path) -> dict[str, bytes]:
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(params=["mounted", "smb"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FileOps, Path]]:
    """``(ops, root)``: the backend under test and the local directory holding ``MyWorks``."""
    if request.param == "mounted":
        (tmp_path / "MyWorks").mkdir()
        yield MountedShareFileOps(tmp_path), tmp_path
        return
    share: Path = request.getfixturevalue("samba_share")
    (share / "MyWorks").mkdir()
    server: SambaServer = request.getfixturevalue("samba_server")
    with SmbFileOps(server.host, port=server.port, timeout=10) as ops:
        yield ops, share


def test_rename_moves_the_file_and_keeps_its_bytes(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, STACK + ".fit", b"stack bytes")
    ops.rename(STACK + ".fit", CROWD + ".fit")
    assert snapshot(root) == {f"MyWorks/M 81/{CROWD}.fit": b"stack bytes"}


def test_rename_refuses_to_overwrite(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, STACK + ".fit", b"new")
    put(root, f"MyWorks/M 81/{CROWD}.fit", b"old")
    before = snapshot(root)
    with pytest.raises(StorageError, match="already exists"):
        ops.rename(STACK + ".fit", CROWD + ".fit")
    assert snapshot(root) == before


def test_rename_of_a_missing_file_fails(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/other.fit")
    with pytest.raises(StorageError, match="DSO_Stacked"):
        ops.rename(STACK + ".fit", CROWD + ".fit")
    assert snapshot(root) == {"MyWorks/M 81/other.fit": b"SIMPLE  ="}


def test_companions_are_renamed_one_by_one(storage: tuple[FileOps, Path]) -> None:
    """The .fit and the .jpg exist, the _thn.jpg does not: only that one rename fails."""
    ops, root = storage
    put(root, STACK + ".fit", b"fit")
    put(root, STACK + ".jpg", b"jpg")
    ops.rename(STACK + ".fit", CROWD + ".fit")
    ops.rename(STACK + ".jpg", CROWD + ".jpg")
    with pytest.raises(StorageError):
        ops.rename(STACK + "_thn.jpg", CROWD + "_thn.jpg")
    assert snapshot(root) == {
        f"MyWorks/M 81/{CROWD}.fit": b"fit",
        f"MyWorks/M 81/{CROWD}.jpg": b"jpg",
    }


def test_names_with_spaces_and_greek_letters(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    old = "MyWorks/ε Cnc/DSO_Stacked_12_ε Cnc_10.0s_20260301_010203.fit"
    new = "CrowdSky_12_ε Cnc_10.0s_LP_20260301.00_HP000123.fit"
    put(root, old, b"greek")
    assert ops.exists(old)
    ops.rename(old, new)
    assert not ops.exists(old)
    assert ops.exists(f"MyWorks/ε Cnc/{new}")
    assert snapshot(root) == {f"MyWorks/ε Cnc/{new}": b"greek"}
    assert ops.list("ε Cnc") == [FileEntry(new, 5)]


def test_delete_removes_only_that_file(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, f"MyWorks/M 81/{CROWD}.fit")
    put(root, f"MyWorks/M 81/{CROWD}.jpg", b"keep")
    ops.delete(f"MyWorks/M 81/{CROWD}.fit")
    assert snapshot(root) == {f"MyWorks/M 81/{CROWD}.jpg": b"keep"}


def test_delete_of_a_missing_file_fails(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/other.fit")
    with pytest.raises(StorageError, match="no such file"):
        ops.delete(f"MyWorks/M 81/{CROWD}.fit")
    assert snapshot(root) == {"MyWorks/M 81/other.fit": b"SIMPLE  ="}


def test_delete_refuses_a_folder(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/inner/x.fit")
    with pytest.raises(StorageError):
        ops.delete("MyWorks/M 81/inner")
    assert snapshot(root) == {"MyWorks/M 81/inner/x.fit": b"SIMPLE  ="}


RAW = [
    "MyWorks/M 81_sub/Light_M 81_10.0s_LP_20260227-225203.fit",
    "MyWorks/Algol-sub/Light_Algol_90.0s_LP_20240319-225247.jpg",
    "MyWorks/M 81_mosaic_sub/Light_mosaic_M 81_10.0s_LP_20260227-225203.fit",
    "MyWorks/M 81_SUB/Light_M 81_10.0s_LP_20260227-225203.fit",
]


@pytest.mark.parametrize("path", RAW)
def test_raw_sub_frames_are_never_renamed_or_deleted(
    storage: tuple[FileOps, Path], path: str
) -> None:
    ops, root = storage
    put(root, path, b"raw")
    before = snapshot(root)
    with pytest.raises(StorageError, match="raw sub-frames"):
        ops.rename(path, "CrowdSky_x.fit")
    with pytest.raises(StorageError, match="raw sub-frames"):
        ops.delete(path)
    assert snapshot(root) == before
    assert ops.exists(path)  # reading is allowed


ESCAPES = [
    "MyWorks/../secret.fit",
    "MyWorks/M 81/../M 81_sub/Light_a.fit",
    "/MyWorks/M 81/a.fit",
    "../MyWorks/M 81/a.fit",
    "MyWorks\\M 81\\a.fit",
    "Other/M 81/a.fit",
    "MyWorks/a.fit",
    "",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_outside_myworks_are_refused(storage: tuple[FileOps, Path], path: str) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/a.fit")
    put(root, "MyWorks/M 81_sub/Light_a.fit")
    before = snapshot(root)
    with pytest.raises(StorageError):
        ops.rename(path, "b.fit")
    with pytest.raises(StorageError):
        ops.delete(path)
    assert snapshot(root) == before


@pytest.mark.parametrize("name", ["", "   ", "..", "../b.fit", "sub/b.fit", "*.fit", "b?.fit"])
def test_bad_new_names_are_refused(storage: tuple[FileOps, Path], name: str) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/a.fit")
    with pytest.raises(StorageError):
        ops.rename("MyWorks/M 81/a.fit", name)
    assert snapshot(root) == {"MyWorks/M 81/a.fit": b"SIMPLE  ="}


def test_wildcards_never_reach_a_delete(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/a.jpg")
    put(root, "MyWorks/M 81/b.jpg")
    with pytest.raises(StorageError, match="wildcards"):
        ops.delete("MyWorks/M 81/*.jpg")
    assert len(snapshot(root)) == 2


def test_list_gives_files_with_sizes(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, "MyWorks/M 81/b.fit", b"12345")
    put(root, "MyWorks/M 81/a b.jpg", b"1")
    put(root, "MyWorks/M 81/folder/c.fit")
    assert ops.list("M 81") == [FileEntry("a b.jpg", 1), FileEntry("b.fit", 5)]
    assert ops.list("Nothing here") == []
    assert not ops.exists("MyWorks/M 81/folder")
    with pytest.raises(StorageError):
        ops.list("../etc")


# --- SMB only ---------------------------------------------------------------------------------


def test_smb_unreachable_names_host_port_and_the_way_out() -> None:
    port = free_port()  # nothing listens there
    with (
        SmbFileOps("127.0.0.1", port=port, timeout=5) as ops,
        pytest.raises(SeestarConnectionError) as caught,
    ):
        ops.exists("MyWorks/M 81/a.fit")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "NTLMv1" in message
    assert "mount" in message
    assert isinstance(caught.value.__cause__, OSError)


def test_smb_reconnects_once_after_the_link_drops(tmp_path: Path, samba_server: object) -> None:
    """A new smbd on the same port after the first one died: the next call just works."""
    share = tmp_path / "share"
    put(share, "MyWorks/M 81/a.fit")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = SambaServer(tmp_path / "one", share)
    with first, SmbFileOps(first.host, port=first.port, timeout=10) as ops:
        assert ops.exists("MyWorks/M 81/a.fit")
        first.stop()
        with SambaServer(tmp_path / "two", share, port=first.port):
            ops.rename("MyWorks/M 81/a.fit", "b.fit")
    assert snapshot(share) == {"MyWorks/M 81/b.fit": b"SIMPLE  ="}


def test_smb_refusal_is_reported_without_a_hex_dump(samba_server: SambaServer) -> None:
    with (
        SmbFileOps(samba_server.host, port=samba_server.port, share="No Such Share") as ops,
        pytest.raises(StorageError) as caught,
    ):
        ops.exists("MyWorks/M 81/a.fit")
    assert "No Such Share" in str(caught.value)
    assert "SMB Message" not in str(caught.value)


# --- mounted only -----------------------------------------------------------------------------


def test_mounted_share_that_is_not_mounted(tmp_path: Path) -> None:
    ops = MountedShareFileOps(tmp_path / "not-mounted")
    with pytest.raises(SeestarConnectionError, match="mounted"):
        ops.exists("MyWorks/M 81/a.fit")


def test_the_preflight_check_passes_and_changes_nothing(storage: tuple[FileOps, Path]) -> None:
    ops, root = storage
    put(root, f"{STACK}.fit")
    before = snapshot(root)
    ops.check()
    assert snapshot(root) == before


def test_the_preflight_check_fails_without_an_smb_server() -> None:
    with (
        SmbFileOps("127.0.0.1", port=free_port(), timeout=5) as ops,
        pytest.raises(SeestarConnectionError, match="unreachable"),
    ):
        ops.check()


def test_the_preflight_check_fails_on_a_folder_that_is_not_the_share(tmp_path: Path) -> None:
    with pytest.raises(SeestarConnectionError, match="mounted there"):
        MountedShareFileOps(tmp_path).check()
