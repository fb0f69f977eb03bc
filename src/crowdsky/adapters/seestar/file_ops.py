"""Renaming and deleting files on the Seestar: over SMB, or through a share the OS has mounted.

Renames and deletes go over SMB (share ``EMMC Images``, anonymous, direct TCP 445), the proven
path (shared README, decision 5; protocol reference §5.2). Where the operating system already has
the share mounted, :class:`MountedShareFileOps` does the same through the file system. Both check
every path with :mod:`crowdsky.domain.device_paths` before touching anything, so neither can
rename or delete in a raw sub-frame folder, outside ``MyWorks/``, or by wildcard. Listings are
not restricted: :class:`~crowdsky.adapters.seestar.network.NetworkSeestar` lists folders through
the share when it can (a few SMB round trips instead of a JSON-RPC request per 20 files).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from crowdsky.app.ports import FileEntry
from crowdsky.domain.device_paths import (
    ROOT_FOLDER,
    check_folder,
    check_mutable_path,
    check_new_name,
    check_path,
    device_path,
    folder_path,
)
from crowdsky.errors import CrowdskyError, SeestarConnectionError, StorageError

__all__ = ["SHARE", "FileOps", "MountedShareFileOps", "SmbFileOps"]

#: The share a Seestar exports over SMB.
SHARE = "EMMC Images"

_T = TypeVar("_T")


class FileOps(Protocol):
    """Renames, deletes and listings on the Seestar's storage; paths are ``MyWorks/...``.

    Every method refuses (with :class:`~crowdsky.errors.StorageError`, before touching anything)
    a path in a raw sub-frame folder when it would change it, a path that leaves ``MyWorks/``,
    and an empty name.
    """

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` to ``new_name`` in the same folder; never overwrite an existing file."""
        ...

    def delete(self, path: str) -> None:
        """Delete the file at ``path``; a missing file is a :class:`StorageError`."""
        ...

    def exists(self, path: str) -> bool:
        """True if ``path`` is an existing file."""
        ...

    def list(self, folder: str) -> list[FileEntry]:
        """Files (not folders) in ``MyWorks/<folder>``, sizes in bytes.

        Empty when the folder does not exist; an error (never empty) when it cannot be read.
        """
        ...

    def check(self) -> None:
        """Pre-flight: prove renames can work, changing nothing; raise when they cannot."""
        ...


def _renamed(path: str, new_name: str) -> tuple[tuple[str, ...], str]:
    """Check a rename and return the source components and the target path."""
    parts = check_mutable_path(path)
    return parts, device_path(parts[1], check_new_name(new_name))


class MountedShareFileOps:
    """The Seestar's ``EMMC Images`` share as mounted by the operating system.

    Parameters
    ----------
    root : Path
        The mount point: the directory that holds ``MyWorks``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _local(self, parts: tuple[str, ...]) -> Path:
        if not (self.root / parts[0]).is_dir():
            raise SeestarConnectionError(
                f"No {parts[0]} folder under {self.root}: is the Seestar's "
                f"'{SHARE}' share mounted there?"
            )
        return self.root.joinpath(*parts)

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` to ``new_name`` in its folder, refusing to overwrite a file."""
        parts, new_path = _renamed(path, new_name)
        source, target = self._local(parts), self._local(check_path(new_path))
        if not source.is_file():
            raise StorageError(f"Cannot rename {path}: no such file")
        if target.exists() or target.is_symlink():
            raise StorageError(f"Cannot rename {path} to {new_name!r}: that name already exists")
        # os.rename would silently replace a target created in between; the check above narrows
        # that window, and nothing else on the device writes CrowdSky_* names.
        with _storage_errors(f"Cannot rename {path} to {new_name!r}"):
            os.rename(source, target)

    def delete(self, path: str) -> None:
        """Delete the file at ``path``."""
        target = self._local(check_mutable_path(path))
        if not target.is_file():
            raise StorageError(f"Cannot delete {path}: no such file")
        with _storage_errors(f"Cannot delete {path}"):
            target.unlink()

    def exists(self, path: str) -> bool:
        """True if ``path`` is an existing file."""
        return self._local(check_path(path)).is_file()

    def check(self) -> None:
        """Pre-flight: ``MyWorks`` is there under the mount point and writable."""
        works = self._local((ROOT_FOLDER,))
        if not works.is_dir():
            raise SeestarConnectionError(
                f"No {ROOT_FOLDER} folder under {self.root}: is the Seestar's '{SHARE}' share "
                "mounted there?"
            )
        if not os.access(works, os.W_OK | os.X_OK):
            raise StorageError(f"{works} is not writable: renames would fail.")

    def list(self, folder: str) -> list[FileEntry]:
        """Files in ``MyWorks/<folder>``, sorted by name; empty if the folder does not exist."""
        directory = self._local((ROOT_FOLDER, check_folder(folder)))
        try:
            with (
                _storage_errors(f"Cannot list {folder_path(folder)}"),
                os.scandir(directory) as entries,
            ):
                files = [FileEntry(e.name, e.stat().st_size) for e in entries if e.is_file()]
        except StorageError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return []  # the one failure that means "no such folder"
            raise
        return sorted(files, key=lambda entry: entry.name)


@contextlib.contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageError(f"{what}: {exc.strerror or exc}") from exc


class SmbFileOps:
    """The Seestar's ``EMMC Images`` share over SMB, with pysmb.

    Connects lazily on first use and reconnects once when the link has dropped. Not thread-safe:
    use one instance per thread.

    Parameters
    ----------
    host : str
        The Seestar's address.
    port : int
        445 on the device (direct TCP, no NetBIOS session).
    share : str
        The share name.
    username, password : str
        Empty for the device's anonymous access.
    timeout : float
        Seconds for connecting and for each operation.
    use_ntlm_v2 : bool
        The device permits NTLMv1, which is what works with it; set True for servers that
        require NTLMv2.
    """

    def __init__(
        self,
        host: str,
        *,
        port: int = 445,
        share: str = SHARE,
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        use_ntlm_v2: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.share = share
        self.timeout = timeout
        self._username = username
        self._password = password
        self._use_ntlm_v2 = use_ntlm_v2
        self._conn: Any = None

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` to ``new_name`` in its folder, refusing to overwrite a file."""
        _, new_path = _renamed(path, new_name)
        if self.exists(new_path):
            raise StorageError(f"Cannot rename {path} to {new_name!r}: that name already exists")
        # pysmb sends ReplaceIfExists = 0, so the server also refuses a target created meanwhile.
        self._call(
            f"Cannot rename {path} to {new_name!r}",
            lambda conn: conn.rename(self.share, path, new_path, timeout=self.timeout),
        )

    def delete(self, path: str) -> None:
        """Delete the file at ``path``."""
        check_mutable_path(path)
        # deleteFiles takes a pattern and quietly skips folders and non-matches, so check that
        # exactly this file is there first (the path has no wildcards: check_mutable_path).
        if not self.exists(path):
            raise StorageError(f"Cannot delete {path}: no such file")
        self._call(
            f"Cannot delete {path}",
            lambda conn: conn.deleteFiles(self.share, path, timeout=self.timeout),
        )

    def exists(self, path: str) -> bool:
        """True if ``path`` is an existing file."""
        check_path(path)

        def attributes(conn: Any) -> Any:
            from smb.smb_structs import OperationFailure

            try:
                return conn.getAttributes(self.share, path, timeout=self.timeout)
            except OperationFailure as exc:
                if _not_found(exc):
                    return None
                raise

        info = self._call(f"Cannot look up {path}", attributes)
        return info is not None and not info.isDirectory

    def list(self, folder: str) -> list[FileEntry]:
        """Files in ``MyWorks/<folder>``, sorted by name; empty if the folder does not exist."""
        check_folder(folder)

        def entries(conn: Any) -> list[Any]:
            from smb.smb_structs import OperationFailure

            try:
                found: list[Any] = conn.listPath(
                    self.share, folder_path(folder), timeout=self.timeout
                )
            except OperationFailure as exc:
                if _not_found(exc):
                    return []
                raise
            return found

        files = [
            FileEntry(e.filename, int(e.file_size))
            for e in self._call(f"Cannot list {folder_path(folder)}", entries)
            if not e.isDirectory
        ]
        return sorted(files, key=lambda entry: entry.name)

    def check(self) -> None:
        """Pre-flight: log in to the share and list ``MyWorks`` (nothing is changed)."""
        self._call(
            f"Cannot open the '{self.share}' share",
            lambda conn: conn.listPath(self.share, ROOT_FOLDER, timeout=self.timeout),
        )

    def connect_within(self, seconds: float) -> bool:
        """True when the share is connected, logging in now if need be, within ``seconds``.

        For work the share may speed up but need not do (a listing the JSON-RPC pages can give
        too): a share that does not answer costs ``seconds``, not the operations' ``timeout``.
        False for any failure; the connection is then left closed, and a later rename connects
        with the full ``timeout`` as before.
        """
        if self._conn is not None:
            return True
        patient, self.timeout = self.timeout, seconds
        try:
            self._connection()
        except CrowdskyError:
            return False
        finally:
            self.timeout = patient
        return True

    def close(self) -> None:
        """Close the SMB connection, if one is open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> SmbFileOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, operation: Callable[[Any], _T]) -> _T:
        """Run ``operation`` on a live connection, reconnecting once if the link had dropped."""
        link_errors = _link_errors()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with self._translate(what):
                    return operation(conn)
            except SeestarConnectionError as exc:
                self.close()
                if attempt == 2 or not isinstance(exc.__cause__, link_errors):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> Any:
        if self._conn is not None:
            return self._conn
        try:
            from smb.SMBConnection import SMBConnection
        except ImportError as exc:  # a dependency, but a broken environment may lack it
            raise SeestarConnectionError(
                "SMB access needs the pysmb package, a dependency of crowdsky that is missing "
                "here: pip install pysmb. Or mount the Seestar's "
                f"'{self.share}' share and pass its folder with --share."
            ) from exc

        conn = SMBConnection(
            self._username,
            self._password,
            "CROWDSKY",
            "SEESTAR",
            use_ntlm_v2=self._use_ntlm_v2,
            is_direct_tcp=True,
        )
        try:
            with self._translate(f"Cannot open the '{self.share}' share"):
                authenticated = conn.connect(self.host, self.port, timeout=self.timeout)
        except BaseException:
            conn.close()
            raise
        if not authenticated:
            conn.close()
            raise SeestarConnectionError(
                f"The SMB server at {self.host}:{self.port} refused the login to "
                f"'{self.share}'. {_HINT}"
            )
        self._conn = conn
        return conn

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Turn pysmb and socket exceptions into crowdsky errors."""
        from smb.base import NotConnectedError, NotReadyError, SMBTimeout
        from smb.smb_structs import OperationFailure, ProtocolError

        try:
            yield
        except OperationFailure as exc:
            # str(exc) dumps every SMB message in hex; the message alone is what a user needs.
            raise StorageError(f"{what}: {exc.message}") from exc
        except (NotConnectedError, NotReadyError, SMBTimeout, ProtocolError, OSError) as exc:
            raise SeestarConnectionError(
                f"{what}: SMB server {self.host}:{self.port} unreachable ({exc!r}). {_HINT}"
            ) from exc


_HINT = (
    "The Seestar's share needs anonymous SMB with NTLMv1 permitted (some systems must enable "
    "SMB1/NTLMv1 for it); alternatively mount the 'EMMC Images' share and use "
    "MountedShareFileOps."
)


def _link_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning the connection dropped (worth one reconnect), not a refusal."""
    from smb.base import NotConnectedError, SMBTimeout

    return (NotConnectedError, SMBTimeout, socket.error)


# NT status codes for "no such file / folder"; anything else (no such share, access denied) is a
# real failure, not an absent file.
_NOT_FOUND = frozenset({0xC000000F, 0xC0000034, 0xC000003A})


def _not_found(exc: Any) -> bool:
    """True if a pysmb ``OperationFailure`` ended in a not-found status."""
    messages = getattr(exc, "smb_messages", None) or []
    return bool(messages) and getattr(messages[-1], "status", None) in _NOT_FOUND
