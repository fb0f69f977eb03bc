"""The Seestar over the network: JSON-RPC on 4700, files over HTTP on 80, renames over SMB 445.

:class:`NetworkSeestar` satisfies :class:`crowdsky.app.ports.Seestar` (and the optional
:class:`~crowdsky.app.ports.BatchStackEvents`) with three channels, each the proven one for its
job (protocol reference §3-§5, shared README decisions 4-6):

* **JSON-RPC** (:class:`~crowdsky.adapters.jsonrpc.JsonRpcConnection`, authenticated with
  :class:`~crowdsky.adapters.jsonrpc.RsaAuthenticator` on firmware 7.18+): albums, paged
  listings (when the share cannot list, see below), the device clock and the batch stacker;
* **HTTP** (:class:`~crowdsky.adapters.seestar.http_files.HttpFiles`): FITS headers and downloads;
* **SMB** (:class:`~crowdsky.adapters.seestar.file_ops.SmbFileOps`), or a share the operating
  system has mounted (:class:`~crowdsky.adapters.seestar.file_ops.MountedShareFileOps`): renames
  and deletes, and folder listings while the share can list. The
  JSON-RPC ``delete_image`` is never sent: its semantics are unpublished and ``{"name": ""}``
  may wipe the whole storage.

Firmware
--------
The connection learns the firmware before anything else (``get_device_state``, see
:mod:`crowdsky.adapters.jsonrpc.firmware`) and keeps it; :meth:`NetworkSeestar.firmware_info`
reports it. Firmware 5.82-7.17 gets the verify marker on every request. Batch stacks name their
frames by full ``MyWorks/<folder>/<file>`` paths on 7.75 and later (and when the firmware is
unknown), by bare names before (§4.1). If a stack still fails with 267 "no image", it is set up
once more with the other form, and that form is kept for this device while it works.

Every error leaving this module is a :class:`~crowdsky.errors.CrowdskyError`; replies of an
unexpected shape are read as far as they make sense (:mod:`~crowdsky.adapters.seestar.replies`).

Listings through the share
--------------------------
A folder is listed through the file share when it can list (``list_through_share``, on by
default): one SMB directory query returns hundreds of entries per reply, where the JSON-RPC
listing costs a request per 20 (a night's ``_sub`` folder with its JPEG companions is some 200
pages). The result is the paged listing's: files only, sorted by name, ``.avi`` skipped; sizes
are the share's exact bytes rather than whole KiB. The share's "no such folder" is an empty
listing, as the pages give for it. Any failure of the share listing (the share unreachable, a
refusal, an odd reply) is logged at info and the folder is listed in pages instead, never read
as empty; after a failure to reach the share, listings go straight to the pages for the rest of
this object's life (each would otherwise wait for the same connection timeout). An SMB share
not yet connected gets ``probe_timeout`` seconds to log in for a listing (not the 30 s a rename
may wait): a share that never answers then costs a plan a few seconds once, not half a minute.

A paged folder listing is complete or fails
-------------------------------------------
``get_img_file_page_number`` sets the folder being paged on the device, for that connection
only (§3.3): pages asked for on a new socket come back empty. A listing is therefore accepted
only when

* every page came back on the connection that set the folder
  (:attr:`~crowdsky.adapters.jsonrpc.JsonRpcConnection.generation` unchanged), and
* it holds what the page count promised: every page before the last is full and the last one
  is not empty, so ``n`` pages hold more than ``(n - 1) x 20`` entries and, with the documented
  page size, at most ``n x 20`` (a longer page is accepted, should a firmware page more). A
  count of one page that comes back empty is an empty folder.

Otherwise the whole listing is tried again from a new page count, three attempts in all, and
then :class:`~crowdsky.errors.ListingIncompleteError` is raised: a short listing would stack
blocks with part of their frames and count them as covered for good. Without a usable page
count nothing can be checked but the connection; a short page then ends the listing.

Once the page count is known, up to :data:`PAGES_IN_FLIGHT` page requests are on the link at
once, each with its own id: the next is sent before the previous reply came back, so the link's
round trip is paid about once per :data:`PAGES_IN_FLIGHT` pages rather than once per page. The
page size is fixed by the firmware (20, §3.3) and no request filters the JPEG companions out,
so this is the one way to list a large ``_sub`` folder sooner. A page request only reads (the
folder was chosen by the page count before any is sent, and nothing else pages on this
connection meanwhile), and each reply is matched to its page by its id, so the result does not
depend on the order the device answers in; the device answers requests sent back to back (a
seestar_alp log shows replies to later requests queued behind a slow one, §1.6). Without a page
count the pages are asked for one at a time, since a short page ends the listing.

A folder that grows while it is paged (the device saving subs) is not an error. If the device
pages a snapshot taken by the page count, nothing changes; if it pages the live folder, a new
file shifts the entries after it one place later, so an entry may come twice (kept once) but
none that existed when the listing began is skipped, and every page before the last stays full.
The new files themselves may or may not be listed; the next run sees them. A folder that
*shrinks* while it is paged (a file deleted by another client) can shift an entry past a page
boundary unseen; crowdsky itself never deletes or renames a raw sub-frame, and such a listing
is caught only when the last page comes back empty.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from crowdsky.adapters.jsonrpc import ABSENT, Event, JsonRpcConnection, RsaAuthenticator
from crowdsky.adapters.seestar.file_ops import FileOps, MountedShareFileOps, SmbFileOps
from crowdsky.adapters.seestar.http_files import HttpFiles
from crowdsky.adapters.seestar.replies import (
    PAGE_SIZE,
    page_length,
    parse_albums,
    parse_app_state,
    parse_app_states,
    parse_batch_stack,
    parse_device_time,
    parse_page,
    parse_page_count,
)
from crowdsky.app.ports import (
    BatchStackState,
    BatchStackStatus,
    ByteProgress,
    DeviceTime,
    FileEntry,
    FolderEntry,
    Header,
)
from crowdsky.domain.device_paths import as_folder_path
from crowdsky.domain.firmware import Firmware, PathForm, batch_path_form
from crowdsky.domain.preflight import Link
from crowdsky.errors import (
    CrowdskyError,
    ListingIncompleteError,
    SeestarConnectionError,
    SeestarError,
    SeestarRpcError,
    StorageError,
)

__all__ = ["NetworkSeestar", "connect_seestar"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: "method not found": firmware without ``clear_batch_stack`` (reference §1.7, §4.1).
_NO_SUCH_METHOD: Final = 103
#: "no image": a batch stack whose file names resolved to nothing (§4.1).
_NO_IMAGE: Final = 267
#: Pages read when the device gives no usable page count: stop at a short page, or here.
_MAX_PAGES_UNKNOWN: Final = 5000
#: Whole listings tried, each with a new page count, before a short one is reported.
LISTING_ATTEMPTS: Final = 3

#: Page requests sent before the first of them is answered (see the module notes).
PAGES_IN_FLIGHT: Final = 4

PathArg = str | os.PathLike[str]


#: Header reads in flight at once (:class:`~crowdsky.app.ports.ConcurrentHeaderReads`): a few
#: HTTP connections hide each read's round trip; more would only queue on the device.
CONCURRENT_HEADER_READS = 4


def _base_url(host: str, port: int) -> str:
    # A bare IPv6 address needs brackets in a URL.
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{name}" if port == 80 else f"http://{name}:{port}"


def _is_batch_stack(event: Event) -> bool:
    return event.name == "BatchStack"


def _frame_name(base: str, path: str, form: PathForm) -> str:
    """``path`` (full, or bare in ``base``) in the form ``set_batch_stack_setting`` should get."""
    if form is PathForm.BARE:
        return path.rsplit("/", 1)[-1]
    return path if "/" in path else f"{base}/{path}"


class _ShortListing(Exception):
    """One attempt at a listing came back short; the message says how."""


def _check_page(index: int, count: int | None, length: int | None) -> None:
    """Raise :class:`_ShortListing` unless page ``index`` holds what ``count`` promises."""
    where = f"page {index + 1} of {count if count is not None else 'an unknown number'}"
    if length is None:
        raise _ShortListing(f"{where} was unreadable")
    if count is None:
        return  # no promise to check: a short page ends the listing
    last = index == count - 1
    if (not last and length < PAGE_SIZE) or (last and length == 0 and count > 1):
        raise _ShortListing(f"{where} held {length} entries")


class NetworkSeestar:
    """A real (or simulated) Seestar on the network, as the application's ``Seestar`` port.

    Nothing connects on construction: the JSON-RPC socket opens (and authenticates) on the first
    command or on :meth:`connect`; HTTP and SMB connect on first use. Use it as a context
    manager, or call :meth:`close`.

    Parameters
    ----------
    host : str
        Name or address (``seestar.local``, ``10.0.0.1``).
    port : int
        JSON-RPC port (4700).
    http_port : int
        The file server's port (80).
    key_path : str or path-like, optional
        PEM file with the Seestar app's private key; else ``$SEESTAR_KEY_PATH``, else the
        default path. Firmware older than 7.18 needs none.
    mounted_share : str or path-like, optional
        Where the operating system has mounted the ``EMMC Images`` share (the directory that
        holds ``MyWorks``); renames and deletes then go through it instead of SMB.
    smb_port : int
        SMB port (445, direct TCP).
    timeout : float
        Seconds to wait for a reply, a read or a connection.
    probe_timeout : float
        Seconds each step of learning the firmware waits (a firmware of the 5.82-7.17 window
        costs one such wait per connection: its silence is how it is recognised), and the
        seconds an SMB share not yet connected gets to log in before a listing goes through
        the pages instead.
    connection : JsonRpcConnection, optional
        Use this connection instead of opening one (tests); firmware rules apply only as far
        as it was made with ``probe_firmware=True``.
    files : HttpFiles, optional
        Use this file reader instead of ``http://<host>:<http_port>`` (tests).
    file_ops : FileOps, optional
        Use this rename/delete/listing backend (tests).
    list_through_share : bool
        List folders through the file share (SMB or the mounted share) when it can, falling
        back to the JSON-RPC pages when it cannot; ``False``: always the pages.

    Notes
    -----
    Objects passed in (``connection``, ``files``, ``file_ops``) are not closed by
    :meth:`close`; the ones created here are.
    """

    def __init__(
        self,
        host: str,
        *,
        port: int = 4700,
        http_port: int = 80,
        key_path: PathArg | None = None,
        mounted_share: PathArg | None = None,
        smb_port: int = 445,
        timeout: float = 10.0,
        probe_timeout: float = 2.5,
        connection: JsonRpcConnection | None = None,
        files: HttpFiles | None = None,
        file_ops: FileOps | None = None,
        list_through_share: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self._owned: list[Callable[[], None]] = []
        if connection is None:
            auth = RsaAuthenticator(key_path)
            connection = JsonRpcConnection(
                host,
                port,
                timeout=timeout,
                authenticator=auth,
                probe_firmware=True,
                probe_timeout=probe_timeout,
            )
            self._owned.append(connection.close)
        if files is None:
            files = HttpFiles(_base_url(host, http_port), timeout=timeout)
            self._owned.append(files.close)
        if file_ops is None:
            file_ops = self._default_file_ops(host, mounted_share, smb_port, timeout)
        self._rpc = connection
        self._files = files
        self._ops = file_ops
        # The firmware keeps one directory context for paging (§3.3) and pysmb connections are
        # not thread-safe: one listing, and one file operation, at a time.
        self._listing = threading.Lock()
        self._ops_lock = threading.Lock()
        self._list_through_share = list_through_share
        # A share that may speed listings up but does not answer is waited for this long only.
        self._share_wait = probe_timeout
        self._legacy_clear = False
        # The frame-name form that worked after a 267 (None: the firmware's rule), and the
        # selection of the current stack with whether it was already tried in the other form.
        self._path_form: PathForm | None = None
        self._selection: tuple[str, tuple[str, ...]] | None = None
        self._form_retried = False

    def _default_file_ops(
        self, host: str, mounted_share: PathArg | None, smb_port: int, timeout: float
    ) -> FileOps:
        if mounted_share is not None:
            return MountedShareFileOps(Path(mounted_share).expanduser())
        smb = SmbFileOps(host, port=smb_port, timeout=max(timeout, 30.0))
        self._owned.append(smb.close)
        return smb

    @property
    def identity(self) -> str:
        """``<host>:<port>`` (host in lower case): the name this telescope is reached by."""
        return f"{self.host.lower()}:{self.port}"

    def __repr__(self) -> str:
        return f"NetworkSeestar({self.host!r}, rpc={self._rpc!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the JSON-RPC connection and authenticate now rather than on the first command.

        Raises
        ------
        SeestarConnectionError
            When the Seestar cannot be reached.
        SeestarAuthError
            When it needs a key that is missing, unreadable or rejected.
        """
        self._rpc.connect()

    def firmware_info(self) -> Firmware | None:
        """The Seestar's model and firmware, learnt on connecting; ``None`` when it did not tell.

        Connects first if needed.

        Raises
        ------
        SeestarConnectionError, SeestarAuthError
            As :meth:`connect`.
        """
        self._rpc.connect()
        return self._rpc.firmware

    @property
    def path_form(self) -> PathForm:
        """How batch stacks name their frames on this device (full paths or bare names).

        Full paths until the firmware is known (before connecting, or when it did not tell).
        """
        if self._path_form is not None:
            return self._path_form
        firmware = self._rpc.firmware
        return batch_path_form(firmware.ver_int if firmware is not None else None)

    def close(self) -> None:
        """Close every connection this object opened (idempotent)."""
        owned, self._owned = self._owned, []
        for close in reversed(owned):
            try:
                close()
            except (CrowdskyError, OSError) as exc:  # closing must not hide the real error
                log.debug("closing %r failed: %r", close, exc)

    def __enter__(self) -> NetworkSeestar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- files ---------------------------------------------------------------------------------

    def list_folders(self) -> list[FolderEntry]:
        """Folders directly under ``MyWorks``, from ``get_albums`` (every group flattened)."""
        return parse_albums(self._rpc.call("get_albums"))

    def list_files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>`` (see :meth:`list_files_paged`)."""
        return self.list_files_paged(folder, None)

    def list_files_paged(
        self, folder: str, on_page: Callable[[Sequence[FileEntry]], None] | None
    ) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>``, sorted by name; empty for a folder that does not exist.

        Through the file share when it can list (see the module notes: sizes in exact bytes),
        else in pages of 20 through ``get_img_file_page_number`` and ``get_img_file_page_name``
        (§3.3, sizes converted from KiB to bytes); ``.avi`` videos are skipped either way. The
        paged listing is complete or fails: a dropped link, or fewer entries than the page count
        promises, starts it again (see the module notes), up to :data:`LISTING_ATTEMPTS` times.
        ``on_page``, if given, is told each page's entries as they arrive, before the listing
        is known to be complete (the pages of an attempt that came back short included); a
        listing through the share tells it all the entries once.

        Raises
        ------
        ListingIncompleteError
            When every attempt came back short.
        SeestarConnectionError
            When the Seestar cannot be reached or stops answering.
        """
        through_share = self._share_listing(folder)
        if through_share is not None:
            if on_page is not None:
                on_page(through_share)
            return through_share
        directory = as_folder_path(folder)
        reason = ""
        with self._listing:
            for attempt in range(1, LISTING_ATTEMPTS + 1):
                try:
                    entries = self._list_once(directory, on_page)
                except _ShortListing as short:
                    reason = str(short)
                    log.info(
                        "listing of %s came back short (%s); attempt %d of %d",
                        directory, reason, attempt, LISTING_ATTEMPTS,
                    )  # fmt: skip
                    continue
                return sorted(entries.values(), key=lambda entry: entry.name)
        raise ListingIncompleteError(directory, LISTING_ATTEMPTS, reason)

    def _share_listing(self, folder: str) -> list[FileEntry] | None:
        """``folder``'s files through the share; ``None`` when the pages must tell."""
        if not self._list_through_share:
            return None
        connect_within = getattr(self._ops, "connect_within", None)
        if connect_within is not None:
            with self._ops_lock:
                answered = connect_within(self._share_wait)
            if not answered:
                self._list_through_share = False  # do not wait for the share on every folder
                log.info(
                    "the file share did not answer within %.1f s; listing folders in pages",
                    self._share_wait,
                )
                return None
        try:
            with self._ops_lock:
                found = self._ops.list(folder)
        except Exception as exc:  # whatever went wrong, the pages can still tell
            if isinstance(exc, SeestarConnectionError):
                self._list_through_share = False  # do not wait for the share on every folder
            log.info(
                "listing %s through the file share failed (%s); listing it in pages instead",
                as_folder_path(folder), exc,
            )  # fmt: skip
            return None
        files = [entry for entry in found if not entry.name.lower().endswith(".avi")]
        return sorted(files, key=lambda entry: entry.name)

    def _list_once(
        self, directory: str, on_page: Callable[[Sequence[FileEntry]], None] | None
    ) -> dict[str, FileEntry]:
        """One whole listing of ``directory``, by name; :class:`_ShortListing` when short."""
        try:
            count = parse_page_count(
                self._rpc.call("get_img_file_page_number", {"dir": directory, "skip_avi": True})
            )
        except SeestarRpcError as exc:
            # The reply for a missing folder is unpublished; an error can only mean "none".
            log.debug("no listing for %s: %s", directory, exc)
            return {}
        generation = self._rpc.generation  # the connection that now holds the folder
        if count is None:
            return self._pages_one_by_one(generation, on_page)
        entries: dict[str, FileEntry] = {}
        pool = ThreadPoolExecutor(PAGES_IN_FLIGHT, thread_name_prefix="crowdsky-page")
        try:
            pages = pool.map(lambda index: self._page(index, generation), range(count))
            for index, result in enumerate(pages):
                self._check_generation(generation, index)
                _check_page(index, count, page_length(result))
                page = parse_page(result)
                for entry in page:
                    entries.setdefault(entry.name, entry)  # twice when the folder grew under us
                if on_page is not None:
                    on_page(page)
        except Exception:
            # Pages not sent yet are dropped; those on the link (or sent again on a new one) are
            # waited for, so that none of them meets the next attempt's page count on the link.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: do not wait for the link
            raise
        pool.shutdown()
        return entries

    def _pages_one_by_one(
        self, generation: int, on_page: Callable[[Sequence[FileEntry]], None] | None
    ) -> dict[str, FileEntry]:
        """The pages of a folder whose page count is unknown, up to the first short one."""
        entries: dict[str, FileEntry] = {}
        for index in range(_MAX_PAGES_UNKNOWN):
            result = self._page(index, generation)
            self._check_generation(generation, index)
            length = page_length(result)
            _check_page(index, None, length)
            page = parse_page(result)
            for entry in page:
                entries.setdefault(entry.name, entry)
            if on_page is not None:
                on_page(page)
            if (length or 0) < PAGE_SIZE:
                break  # no usable page count: a short page is the last one
        return entries

    def _page(self, index: int, generation: int) -> Any:
        """Page ``index``; :class:`_ShortListing` when it failed because the link was replaced.

        A page on the link when it drops is sent again on the new one (where it comes back
        empty, §3.3); with pages in flight several are, and one may meet another drop there.
        Either way the attempt is short, not the Seestar unreachable: the next attempt's page
        count tells.
        """
        try:
            return self._rpc.call("get_img_file_page_name", {"page": index})
        except SeestarConnectionError as exc:
            if self._rpc.generation == generation:
                raise
            where = f"the link was replaced before page {index + 1} came back"
            raise _ShortListing(where) from exc

    def _check_generation(self, generation: int, index: int) -> None:
        if self._rpc.generation != generation:
            raise _ShortListing(f"the link was replaced before page {index + 1} came back")

    def read_header(self, path: str) -> Header:
        """The primary FITS header of ``path``, read over HTTP (a few KB, not the whole file).

        Safe to call from several threads at once: each read takes a connection of the HTTP
        client's pool (see :attr:`concurrent_header_reads`).
        """
        return self._files.read_header(path)

    @property
    def concurrent_header_reads(self) -> int:
        """Header reads planning may run at once, each on its own HTTP connection."""
        return CONCURRENT_HEADER_READS

    def download(self, path: str, dest: Path, *, on_bytes: ByteProgress | None = None) -> Path:
        """Copy ``path`` to the local file ``dest`` atomically over HTTP; return ``dest``.

        ``on_bytes`` is told the bytes received so far, once per piece of the body.
        """
        return self._files.download(path, Path(dest), on_bytes=on_bytes)

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` in its folder over SMB (or the mounted share); never in ``*_sub``."""
        with self._ops_lock:
            self._ops.rename(path, new_name)

    def delete(self, path: str) -> None:
        """Delete ``path`` over SMB (or the mounted share); never in ``*_sub``."""
        with self._ops_lock:
            self._ops.delete(path)

    # -- clock ---------------------------------------------------------------------------------

    def device_time(self) -> DeviceTime:
        """The device clock from ``pi_get_time``; empty when the firmware does not answer it."""
        try:
            result = self._rpc.call("pi_get_time")
        except SeestarRpcError as exc:
            log.debug("pi_get_time refused: %s", exc)
            return DeviceTime()
        return parse_device_time(result)

    # -- batch stacking ------------------------------------------------------------------------

    def clear_batch_stack(self) -> None:
        """Forget the last result: ``clear_batch_stack``, or ``clear_app_state`` on old firmware."""
        if not self._legacy_clear:
            try:
                self._rpc.call("clear_batch_stack")
                return
            except SeestarRpcError as exc:
                if exc.code != _NO_SUCH_METHOD:
                    raise
                log.info("clear_batch_stack unknown to this firmware; using clear_app_state")
                self._legacy_clear = True
        self._rpc.call("clear_app_state", {"name": "BatchStack"})

    def configure_batch_stack(self, folder: str, paths: Sequence[str]) -> None:
        """Select the frames of the next batch stack, named as the firmware resolves them (§4.1).

        Full ``MyWorks/<folder>/<file>`` paths on firmware 7.75 and later (a bare name is
        completed with ``folder``), bare names before; see :attr:`path_form`.
        """
        self._selection = (as_folder_path(folder), tuple(paths))
        self._form_retried = False
        self._rpc.connect()  # the form depends on the firmware, learnt on connecting
        self._send_selection(self.path_form)

    def _send_selection(self, form: PathForm) -> None:
        assert self._selection is not None
        base, paths = self._selection
        names = [_frame_name(base, path, form) for path in paths]
        files = [{"name": name} for name in names]
        self._rpc.call("set_batch_stack_setting", {"path": base, "files": files})

    def start_batch_stack(self) -> None:
        """Start the configured stack; :class:`SeestarRpcError` when refused (259: one runs)."""
        self._drain_batch_stack_events()  # events of an earlier stack would wake a waiter
        # Not repeated after a dropped link: the device may have started on the first copy.
        self._rpc.call("start_batch_stack", retry=False)

    def stop_batch_stack(self) -> None:
        """Cancel the running stack; a refusal is ignored unless the stack is still working."""
        try:
            self._rpc.call("stop_batch_stack")
        except SeestarRpcError:
            status = self._read_status()
            if status is not None and status.state is BatchStackState.WORKING:
                raise
            log.debug("stop_batch_stack refused while no stack was working")

    def batch_stack_status(self) -> BatchStackStatus | None:
        """``BatchStack`` of ``iscope_get_app_state``; ``None`` before a stack or after a clear.

        A stack that failed with 267 "no image" is set up and started once more with the other
        frame-name form (the firmware may resolve only that one); the status returned is then
        the new run's, and the form that worked is kept for this device.
        """
        status = self._read_status()
        while status is not None and self._needs_other_form(status):  # at most once
            status = self._restart_in_other_form()
        return status

    def _read_status(self) -> BatchStackStatus | None:
        return parse_app_state(self._rpc.call("iscope_get_app_state"))

    def _needs_other_form(self, status: BatchStackStatus) -> bool:
        if status.state is not BatchStackState.FAIL or status.code != _NO_IMAGE:
            return False
        if self._selection is None:
            return False
        if self._form_retried:
            # Neither form found an image: the files are the problem, not their names.
            self._path_form = None
            self._selection = None
            return False
        return True

    def _restart_in_other_form(self) -> BatchStackStatus | None:
        form = self.path_form.other
        log.info("batch stack found no image; trying again with %s frame names", form.value)
        self._form_retried = True
        self._path_form = form
        self.clear_batch_stack()
        self._send_selection(form)
        self.start_batch_stack()
        return self._read_status()

    def wait_batch_stack_event(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a pushed ``BatchStack`` event; True if one came.

        The firmware may never push one (no capture shows it, §4.2): callers still poll
        :meth:`batch_stack_status`.
        """
        return self._rpc.wait_event(_is_batch_stack, max(0.0, timeout)) is not None

    def next_batch_stack_status(self, timeout: float) -> BatchStackStatus | None:
        """Wait up to ``timeout`` seconds for a pushed ``BatchStack`` event; the state it carries.

        ``None`` when no event came in time, or when its payload is not a ``BatchStack`` entry
        (:func:`~crowdsky.adapters.seestar.replies.parse_batch_stack`); the caller then polls
        :meth:`batch_stack_status`, which stays the authority.
        """
        event = self._rpc.wait_event(_is_batch_stack, max(0.0, timeout))
        return None if event is None else parse_batch_stack(event.fields)

    def _drain_batch_stack_events(self) -> None:
        while self._rpc.wait_event(_is_batch_stack, 0) is not None:
            pass

    # -- pre-flight ----------------------------------------------------------------------------

    def check_link(self, link: Link) -> None:
        """Probe ``link`` without changing anything: ``test_connection``, ``GET /``, SMB list.

        Raises
        ------
        SeestarAuthError
            When the control link needs a key that is missing, unreadable or rejected.
        SeestarConnectionError, StorageError
            When the link does not work.
        """
        if link is Link.CONTROL:
            self._rpc.call("test_connection")
        elif link is Link.FILES:
            self._files.check()
        else:
            with self._ops_lock:
                self._ops.check()

    def app_state(self) -> dict[str, str]:
        """Each ``iscope_get_app_state`` entry → its state text (live view, stacking, ...)."""
        return parse_app_states(self._rpc.call("iscope_get_app_state"))

    # -- escape hatch --------------------------------------------------------------------------

    def call(self, method: str, params: Any = ABSENT) -> Any:
        """Send any JSON-RPC ``method`` and return its ``result`` (for what the port lacks).

        ``delete_image`` is refused: renames and deletes go over SMB (shared README, decision 5).
        """
        if method in {"delete_image", "delete_all_image"}:
            raise StorageError(
                f"Refusing to send {method!r}: deletes go over SMB, use delete(path)."
            )
        return self._rpc.call(method, params)


def connect_seestar(
    host: str,
    *,
    port: int = 4700,
    http_port: int = 80,
    key_path: PathArg | None = None,
    mounted_share: PathArg | None = None,
    smb_port: int = 445,
    timeout: float = 10.0,
    probe_timeout: float = 2.5,
    connection: JsonRpcConnection | None = None,
    files: HttpFiles | None = None,
    file_ops: FileOps | None = None,
    list_through_share: bool = True,
) -> NetworkSeestar:
    """A :class:`NetworkSeestar`, connected and authenticated.

    Parameters are those of :class:`NetworkSeestar`.

    Raises
    ------
    SeestarConnectionError
        When the Seestar cannot be reached.
    SeestarAuthError
        When it asks for a key that is missing, unreadable or rejected.

    Examples
    --------
    ::

        with connect_seestar("seestar.local", key_path="~/seestar_key.pem") as seestar:
            print(seestar.list_folders())
    """
    seestar = NetworkSeestar(
        host,
        port=port,
        http_port=http_port,
        key_path=key_path,
        mounted_share=mounted_share,
        smb_port=smb_port,
        timeout=timeout,
        probe_timeout=probe_timeout,
        connection=connection,
        files=files,
        file_ops=file_ops,
        list_through_share=list_through_share,
    )
    try:
        seestar.connect()
    except SeestarError:
        seestar.close()
        raise
    return seestar
