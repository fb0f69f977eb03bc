"""Paths and names on the Seestar's storage: the one place that says how they look.

Paths are strings relative to the storage root (the HTTP root and the SMB share root, protocol
reference §3.1). Everything crowdsky touches lives in one folder directly under ``MyWorks``:
files are ``MyWorks/<folder>/<file>``. Raw sub-frames live in ``<target>_sub`` (current
firmware), ``<target>-sub`` (2024 firmware) or ``<target>_mosaic_sub`` (mosaics); stacks live in
``<target>``.

Every adapter, the in-memory device model included, builds, splits and checks paths here, so
a bad path is refused the same way everywhere, before a byte goes over the wire:

* nothing may escape ``MyWorks/`` (absolute paths, ``..``, backslashes, NUL);
* only a file directly in a folder under ``MyWorks`` may be renamed or deleted, and nothing in
  a raw sub-frame folder ever (shared README, decision 4). The comparison ignores case and
  trailing dots and spaces, because the SMB share and many mounted file systems treat
  ``M 81_SUB.`` as ``M 81_sub``;
* no wildcard may reach a rename or delete: pysmb's ``deleteFiles`` takes a *pattern*, so a
  name like ``*`` would empty a folder.
"""

from __future__ import annotations

from crowdsky.errors import StorageError

__all__ = [
    "ROOT_FOLDER",
    "SUB_FOLDER_SUFFIXES",
    "as_folder_path",
    "check_folder",
    "check_mutable_path",
    "check_new_name",
    "check_path",
    "device_path",
    "folder_name",
    "folder_path",
    "is_sub_folder",
    "listed_folder",
    "split_device_path",
    "sub_folder_of",
    "target_of_sub_folder",
]

#: The only top-level folder crowdsky works in.
ROOT_FOLDER = "MyWorks"

# The suffix current firmware gives a target's raw sub-frame folder.
_SUB_SUFFIX = "_sub"

#: Folder suffixes that mark raw sub-frame folders, longest first so ``_mosaic_sub`` wins.
SUB_FOLDER_SUFFIXES = ("_mosaic_sub", _SUB_SUFFIX, "-sub")

# Characters that SMB treats as wildcards or that no Seestar name contains; refusing them in
# names that are renamed or deleted keeps a pattern-taking delete from matching many files.
_UNSAFE_IN_NAMES = frozenset('*?<>|"\\:\x00')


# --- raw sub-frame folders ---------------------------------------------------------------------


def sub_folder_of(target: str) -> str:
    """The folder current firmware saves the raw sub-frames of ``target`` in.

    Examples
    --------
    >>> sub_folder_of("IC 434")
    'IC 434_sub'
    """
    return f"{target}{_SUB_SUFFIX}"


def target_of_sub_folder(folder: str) -> str | None:
    """The target of a raw sub-frame folder, or ``None`` for any other folder.

    Examples
    --------
    >>> target_of_sub_folder("IC 434_sub"), target_of_sub_folder("Algol-sub")
    ('IC 434', 'Algol')
    >>> target_of_sub_folder("M 81_mosaic_sub"), target_of_sub_folder("M 81") is None
    ('M 81', True)
    """
    for suffix in SUB_FOLDER_SUFFIXES:
        if folder.endswith(suffix) and len(folder) > len(suffix):
            return folder[: -len(suffix)]
    return None


def is_sub_folder(folder: str) -> bool:
    """True for a folder of raw sub-frames, which nothing may ever rename or delete in.

    Case and trailing dots and spaces are ignored, because the SMB share and many mounted file
    systems treat ``M 81_SUB.`` as ``M 81_sub``.

    Examples
    --------
    >>> [is_sub_folder(f) for f in ("M 81_sub", "Algol-SUB", "M 81_mosaic_sub. ", "M 81")]
    [True, True, True, False]
    """
    return folder.rstrip(". ").lower().endswith(SUB_FOLDER_SUFFIXES)


# --- building and splitting --------------------------------------------------------------------


def folder_path(folder: str) -> str:
    """The storage path of a folder directly under ``MyWorks``.

    Examples
    --------
    >>> folder_path("IC 434_sub")
    'MyWorks/IC 434_sub'
    """
    return f"{ROOT_FOLDER}/{folder}"


def device_path(folder: str, name: str) -> str:
    """The storage path of file ``name`` in ``folder`` (``MyWorks/<folder>/<name>``).

    Examples
    --------
    >>> device_path("M 42", "CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383.fit")
    'MyWorks/M 42/CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383.fit'
    """
    return f"{folder_path(folder)}/{name}"


def as_folder_path(folder: str) -> str:
    """``MyWorks/<folder>`` for a bare folder name; a path under ``MyWorks`` as it is.

    The firmware and its clients name a folder either way (``set_batch_stack_setting``'s
    ``path``, a ``BatchStack`` event's ``output_file.path``); surrounding slashes are dropped.

    Examples
    --------
    >>> as_folder_path("IC 434_sub"), as_folder_path("/MyWorks/IC 434_sub/")
    ('MyWorks/IC 434_sub', 'MyWorks/IC 434_sub')
    >>> as_folder_path("MyWorks")
    'MyWorks'
    """
    folder = folder.strip("/")
    if folder == ROOT_FOLDER or folder.startswith(ROOT_FOLDER + "/"):
        return folder
    return folder_path(folder)


def folder_name(folder: str) -> str:
    """The bare name of a folder given bare or as ``MyWorks/<folder>`` (the inverse of above).

    Examples
    --------
    >>> folder_name("MyWorks/IC 434_sub"), folder_name("IC 434_sub")
    ('IC 434_sub', 'IC 434_sub')
    """
    return as_folder_path(folder).removeprefix(ROOT_FOLDER + "/")


def split_device_path(path: str) -> tuple[str, str]:
    """``(folder, name)`` of a ``MyWorks/<folder>/<name>`` path.

    Raises
    ------
    StorageError
        For anything :func:`check_path` refuses, and for any other depth (``MyWorks/a.fit``,
        ``MyWorks/M 81/inner/a.fit``).

    Examples
    --------
    >>> split_device_path("MyWorks/IC 434_sub/Light_IC 434_10.0s_LP_20260227-211503.fit")
    ('IC 434_sub', 'Light_IC 434_10.0s_LP_20260227-211503.fit')
    """
    parts = check_path(path)
    if len(parts) != 3:
        raise StorageError(f"Refusing path {path!r}: not a file in a {ROOT_FOLDER} folder")
    return parts[1], parts[2]


def listed_folder(directory: str) -> str | None:
    """What a listing's ``dir`` names: ``None`` for ``MyWorks`` itself, else the folder's name.

    The JSON-RPC listing (``get_img_file_page_number``) takes ``MyWorks`` or
    ``MyWorks/<folder>``; surrounding slashes are ignored.

    Raises
    ------
    StorageError
        For any other directory (outside ``MyWorks``, nested, ``..``).

    Examples
    --------
    >>> listed_folder("MyWorks") is None, listed_folder("MyWorks/M 81/")
    (True, 'M 81')
    """
    directory = directory.strip("/")
    if directory == ROOT_FOLDER:
        return None
    parts = check_path(directory)
    if len(parts) != 2:
        raise StorageError(f"Refusing directory {directory!r}: not a {ROOT_FOLDER} folder")
    return parts[1]


# --- checking ----------------------------------------------------------------------------------


def check_path(path: str) -> tuple[str, ...]:
    """The components of a storage path that stays inside ``MyWorks/``.

    Raises
    ------
    StorageError
        For an empty, absolute or escaping path, or one outside ``MyWorks/``.

    Examples
    --------
    >>> check_path("MyWorks/M 81/a.fit")
    ('MyWorks', 'M 81', 'a.fit')
    """
    if not isinstance(path, str) or not path:
        raise StorageError(f"Refusing an empty path on the Seestar: {path!r}")
    if path.startswith("/") or "\\" in path or "\x00" in path:
        raise StorageError(f"Refusing path {path!r}: paths are relative to the storage root")
    parts = tuple(path.split("/"))
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"Refusing path {path!r}: empty, '.' or '..' component")
    if parts[0] != ROOT_FOLDER or len(parts) < 2:
        raise StorageError(f"Refusing path {path!r}: only files under {ROOT_FOLDER}/ are used")
    return parts


def check_mutable_path(path: str) -> tuple[str, str, str]:
    """The components of a path that may be renamed or deleted.

    Raises
    ------
    StorageError
        For everything :func:`split_device_path` refuses, for a path in a raw sub-frame
        folder, and for a file name that :func:`check_new_name` refuses.

    Examples
    --------
    >>> check_mutable_path("MyWorks/M 81/a.fit")
    ('MyWorks', 'M 81', 'a.fit')
    """
    folder, name = split_device_path(path)
    if is_sub_folder(folder):
        raise StorageError(
            f"Refusing to rename or delete {path!r}: {folder!r} holds raw sub-frames, "
            "which crowdsky never changes"
        )
    check_new_name(name)
    return ROOT_FOLDER, folder, name


def check_new_name(name: str) -> str:
    """A bare file name that is safe to rename to (or delete by), on every adapter alike.

    Raises
    ------
    StorageError
        For an empty or blank name, ``.``/``..``, a path separator or a wildcard character.

    Examples
    --------
    >>> check_new_name("CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383_thn.jpg")[-8:]
    '_thn.jpg'
    """
    if not isinstance(name, str) or not name.strip():
        raise StorageError(f"Refusing an empty file name: {name!r}")
    if name in (".", "..") or "/" in name or any(ch in _UNSAFE_IN_NAMES for ch in name):
        raise StorageError(f"Refusing file name {name!r}: separators and wildcards are not allowed")
    return name


def check_folder(folder: str) -> str:
    """A bare folder name directly under ``MyWorks`` (for listings).

    Raises
    ------
    StorageError
        For an empty name, ``.``/``..`` or a path separator.

    Examples
    --------
    >>> check_folder("IC 434_sub")
    'IC 434_sub'
    """
    if not isinstance(folder, str) or not folder or folder in (".", ".."):
        raise StorageError(f"Refusing folder name {folder!r}")
    if "/" in folder or "\\" in folder or "\x00" in folder:
        raise StorageError(f"Refusing folder name {folder!r}: it must be a single folder")
    return folder
