"""The path guards every file adapter applies before touching the Seestar's storage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain.device_paths import (
    check_folder,
    check_mutable_path,
    check_new_name,
    check_path,
    is_sub_folder,
    listed_folder,
    split_device_path,
)
from crowdsky.errors import StorageError

# Names as the Seestar writes them: letters (any script), digits, spaces, dots, dashes, underscores.
names = st.text(
    st.characters(categories=["L", "N"], include_characters=" ._-+()"), min_size=1, max_size=40
).filter(lambda n: n.strip() and n not in (".", ".."))
folders = names.filter(lambda f: not is_sub_folder(f))
suffixes = st.sampled_from(["_sub", "-sub", "_mosaic_sub", "_SUB", "-Sub", "_sub.", "_sub "])


@given(folders, names)
def test_files_in_stack_folders_may_change(folder: str, name: str) -> None:
    path = f"MyWorks/{folder}/{name}"
    assert check_mutable_path(path) == ("MyWorks", folder, name)
    assert check_new_name(name) == name


@given(names, suffixes, names)
def test_files_in_raw_sub_folders_never_may(target: str, suffix: str, name: str) -> None:
    path = f"MyWorks/{target}{suffix}/{name}"
    check_path(path)  # reading is fine
    with pytest.raises(StorageError, match="raw sub-frames"):
        check_mutable_path(path)


@given(
    st.lists(st.sampled_from(["MyWorks", "M 81", "..", ".", "", "M 81_sub", "a.fit"]), max_size=5)
)
def test_no_path_escapes_myworks(parts: list[str]) -> None:
    path = "/".join(parts)
    try:
        checked = check_path(path)
    except StorageError:
        return
    assert checked[0] == "MyWorks"
    assert not {"", ".", ".."} & set(checked)


@pytest.mark.parametrize(
    "name", ["*", "a*.fit", "a?.fit", "a\\b", "a:b", "x\x00", "<a>", 'a"b', "a|b"]
)
def test_wildcards_and_separators_are_not_names(name: str) -> None:
    with pytest.raises(StorageError):
        check_new_name(name)


@pytest.mark.parametrize("folder", ["", ".", "..", "a/b", "a\\b"])
def test_listing_takes_one_folder_name(folder: str) -> None:
    with pytest.raises(StorageError):
        check_folder(folder)


@given(folders, names)
def test_a_built_path_splits_back(folder: str, name: str) -> None:
    assert split_device_path(f"MyWorks/{folder}/{name}") == (folder, name)
    assert listed_folder(f"MyWorks/{folder}") == folder


@pytest.mark.parametrize(
    "path", ["IC 434_sub/a.fit", "MyWorks/a.fit", "MyWorks/../a/b", "MyWorks/a/b/c", "MyWorks//a"]
)
def test_a_device_path_is_one_file_in_one_folder(path: str) -> None:
    with pytest.raises(StorageError):
        split_device_path(path)
    with pytest.raises(StorageError):
        check_mutable_path(path)


@pytest.mark.parametrize(
    "directory", ["", "M 81", "Other/M 81", "MyWorks/M 81/inner", "MyWorks/.."]
)
def test_a_listing_names_myworks_or_one_folder_in_it(directory: str) -> None:
    with pytest.raises(StorageError):
        listed_folder(directory)
