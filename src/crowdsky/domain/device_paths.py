"""Checking paths on the Seestar's storage before anything touches them.

Paths are strings relative to the storage root (the HTTP root and the SMB share root, protocol
reference §3.1), always ``MyWorks/<folder>/<file>``. Every adapter that reads, renames or deletes
goes through these checks first, so a bad path is refused before a byte goes over the wire:

* nothing may escape ``MyWorks/`` (absolute paths, ``..``, backslashes, NUL);
* nothing in a raw sub-frame folder (``*_sub``, ``*-sub``, ``*_mosaic_sub``) may be renamed or
  deleted (shared README, decision 4). The comparison ignores case and trailing dots and spaces,
  because the SMB share and many mounted file systems treat ``M 81_SUB.`` as ``M 81_sub``;
* no wildcard may reach a rename or delete: pysmb's ``deleteFiles`` takes a *pattern*, so a
  name like ``*`` would empty a folder.
"""

from __future__ import annotations

from crowdsky.domain.folders import is_sub_folder as is_protected_folder
from crowdsky.errors import StorageError

__all__ = [
    "ROOT_FOLDER",
    "check_folder",
    "check_mutable_path",
    "check_new_name",
    "check_path",
    "device_path",
    "folder_path",
    "is_protected_folder",
]

#: The only top-level folder crowdsky works in.
ROOT_FOLDER = "MyWorks"

# Characters that SMB treats as wildcards or that no Seestar name contains; refusing them in
# names that are renamed or deleted keeps a pattern-taking delete from matching many files.
_UNSAFE_IN_NAMES = frozenset('*?<>|"\\:\x00')


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


def check_mutable_path(path: str) -> tuple[str, ...]:
    """The components of a path that may be renamed or deleted.

    Raises
    ------
    StorageError
        For everything :func:`check_path` refuses, for a path in a raw sub-frame folder, and for
        a file name with wildcard characters.
    """
    parts = check_path(path)
    if len(parts) < 3:
        raise StorageError(f"Refusing to change {path!r}: not a file in a {ROOT_FOLDER} folder")
    for folder in parts[1:-1]:
        if is_protected_folder(folder):
            raise StorageError(
                f"Refusing to rename or delete {path!r}: {folder!r} holds raw sub-frames, "
                "which crowdsky never changes"
            )
    check_new_name(parts[-1])
    return parts


def check_new_name(name: str) -> str:
    """A bare file name that is safe to rename to (or delete by).

    Raises
    ------
    StorageError
        For an empty name, ``.``/``..``, a path separator or a wildcard character.
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
    """
    if not isinstance(folder, str) or not folder or folder in (".", ".."):
        raise StorageError(f"Refusing folder name {folder!r}")
    if "/" in folder or "\\" in folder or "\x00" in folder:
        raise StorageError(f"Refusing folder name {folder!r}: it must be a single folder")
    return folder
