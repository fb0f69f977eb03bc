"""Gathering what is on the Seestar: targets, raw frames, coverage, and the device's zone.

The shell half of planning: everything here reads through the :class:`~crowdsky.app.ports.Seestar`
port and hands plain data to the domain, which decides. Which headers to read is the domain's
:class:`~crowdsky.domain.device_time.DeviceTimeSettler`'s call: :func:`load_target` only lists,
reads what it is asked for (each read retried, see :mod:`crowdsky.app.headers`; several at once
when the Seestar takes :class:`~crowdsky.app.ports.ConcurrentHeaderReads`) and feeds it back.

When the Seestar also hands its listings over page by page
(:class:`~crowdsky.app.ports.PagedListing`) and the zone is known beforehand (the user's, or the
one the device reports), the headers the settler will most likely ask for
(:func:`~crowdsky.domain.device_time.likely_headers`) are read while later pages are still
arriving, and the sub folder current firmware uses (``<target>_sub``) is listed while the
folder list is still on its way (a listing of a folder the list does not name is not used).
That only moves reads earlier: the settler still decides from the complete listing,
its questions are answered from the reads already made (reading the rest), a listing that stays
incomplete still raises before anything is planned, and a header read ahead that could not be
read fails the target only if the settler asks for it.

With a :class:`~crowdsky.app.ports.HeaderCache` and a Seestar that knows its identity
(:class:`~crowdsky.app.ports.DeviceIdentity`), a header read on an earlier run is not read again:
a raw sub-frame is never rewritten, so a fact kept for the same path and the same listed size
still holds (a size that differs, or is unknown, means reading it). Reads ahead skip those too.
After the target is loaded, the facts of the subs still listed (kept and newly read) replace the
ones kept for its folders; a read that failed is never kept.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crowdsky.app.headers import HEADER_READ_ATTEMPTS, read_header
from crowdsky.app.ports import (
    ConcurrentHeaderReads,
    DeviceIdentity,
    FileEntry,
    Header,
    HeaderCache,
    HeaderFact,
    PagedListing,
    Seestar,
)
from crowdsky.domain import (
    CoverageKey,
    CrowdskyName,
    RawFrame,
    ZoneDecision,
    parse_crowdsky_name,
    parse_raw_names,
)
from crowdsky.domain.device_paths import device_path, sub_folder_of, target_of_sub_folder
from crowdsky.domain.device_time import (
    CannotSettle,
    DeviceTimeSettler,
    HeaderRead,
    HeaderResult,
    HeaderUnreadable,
    NeedHeaders,
    likely_headers,
)
from crowdsky.domain.headers import parse_date_obs
from crowdsky.errors import DeviceTimeWarning, HeaderReadError, UnknownTargetError

__all__ = [
    "TargetInventory",
    "device_zone",
    "find_target",
    "list_target_folders",
    "load_target",
]


@attrs.frozen
class TargetInventory:
    """Everything planning needs about one target.

    Parameters
    ----------
    target : str
        Target name.
    sub_folders : tuple of str
        Folders holding its raw sub-frames (``"IC 434_sub"``).
    frames : tuple of RawFrame
        Raw sub-frames, with ``date_obs`` where it was read.
    zone : ZoneDecision
        How local name times become UTC.
    covered : frozenset of CoverageKey
        Blocks that already have a CrowdSky stack.
    frame_folders : dict of str to str
        The sub folder each frame (by name) was listed in.
    """

    target: str
    sub_folders: tuple[str, ...]
    frames: tuple[RawFrame, ...]
    zone: ZoneDecision
    covered: frozenset[CoverageKey]
    frame_folders: dict[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def path_of(self, frame: RawFrame) -> str:
        """The full ``MyWorks/<folder>/<name>`` path of a frame."""
        return device_path(self.frame_folders[frame.name], frame.name)


def list_target_folders(seestar: Seestar) -> dict[str, tuple[str, ...]]:
    """Targets with raw sub-frame folders, mapped to those folders, sorted by target name."""
    found: dict[str, list[str]] = {}
    for entry in seestar.list_folders():
        target = target_of_sub_folder(entry.name)
        if target is not None:
            found.setdefault(target, []).append(entry.name)
    return {t: tuple(sorted(found[t])) for t in sorted(found, key=str.casefold)}


def find_target(seestar: Seestar, target: str) -> tuple[str, ...]:
    """The sub folders of ``target``; :class:`UnknownTargetError` if it has none."""
    folders = list_target_folders(seestar)
    if target not in folders:
        raise UnknownTargetError(target, tuple(folders))
    return folders[target]


def device_zone(seestar: Seestar) -> tzinfo | None:
    """The IANA zone the device reports (``pi_get_time``), or ``None`` if absent or unknown."""
    name = seestar.device_time().zone
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _stacked(seestar: Seestar, target: str) -> list[CrowdskyName]:
    names = (parse_crowdsky_name(entry.name) for entry in seestar.list_files(target))
    return [crowd for crowd in names if crowd is not None]


def _try_read(seestar: Seestar, path: str) -> Header | HeaderReadError:
    try:
        return read_header(seestar, path)
    except HeaderReadError as exc:
        return exc


class _HeaderReads:
    """Header reads for one target: in order, several at once where the Seestar takes that.

    A Seestar that takes :class:`~crowdsky.app.ports.ConcurrentHeaderReads` gets that many
    reads at once, on a pool kept for the whole target, and may be asked to read ahead
    (:meth:`read_ahead`). Reads ahead wait their turn here and go to the pool only as it has
    room, so the reads :meth:`results` is asked for start next, never behind the reads ahead
    still waiting. :meth:`results` still takes the results in the order asked for and
    stops at the first that failed (after its retries): the answer is the same as one read
    after another would give, only sooner. Leaving the ``with`` block drops reads not started.

    ``known`` are facts remembered from earlier runs, by path: one whose size is the size
    listed now (:meth:`listed`) answers instead of a read.
    """

    def __init__(self, seestar: Seestar, known: Mapping[str, HeaderFact] | None = None) -> None:
        self._seestar = seestar
        workers = 1
        if isinstance(seestar, ConcurrentHeaderReads):
            workers = seestar.concurrent_header_reads
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="crowdsky-headers")
            if workers > 1
            else None
        )
        self._started: dict[str, Future[Header | HeaderReadError]] = {}
        self._ahead: dict[str, None] = {}  # reads ahead not handed to the pool yet, in order
        self._room = workers  # reads the pool can take without queueing them
        self._lock = threading.RLock()  # a done read's callback may run in the caller's thread
        self._closed = False
        self._read: dict[str, Header] = {}
        self._known = dict(known or {})
        self._sizes: dict[tuple[str, str], int] = {}

    def __enter__(self) -> _HeaderReads:
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._closed = True
            self._ahead.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def concurrent(self) -> bool:
        """True when reads run on a pool (and reading ahead is possible)."""
        return self._pool is not None

    def know(self, facts: Mapping[str, HeaderFact]) -> None:
        """Take more facts of earlier runs, by path (as ``known`` is taken)."""
        self._known.update(facts)

    def listed(self, folder: str, entries: Iterable[FileEntry]) -> None:
        """Note the sizes ``folder`` lists now (a later listing of a file overrides)."""
        self._sizes.update(((folder, e.name), e.size) for e in entries)

    def _fact(self, path: str) -> HeaderFact | None:
        fact = self._known.get(path)
        if fact is None or fact.size <= 0 or fact.size != self._sizes.get(_folder_and_name(path)):
            return None
        return fact

    def read_ahead(self, paths: Iterable[str]) -> None:
        """Read ``paths`` as the pool has room, for :meth:`results` to take later (pool only)."""
        if self._pool is None:
            return
        with self._lock:
            for path in paths:
                if path not in self._started and self._fact(path) is None:
                    self._ahead[path] = None
            self._hand_over()

    def results(self, paths: Sequence[str], names: Sequence[str]) -> list[HeaderResult]:
        """Results for ``names`` (at ``paths``), stopping at the first unreadable header."""
        if self._pool is not None:
            with self._lock:  # these first: the pool takes them before any read ahead waiting
                for path in paths:
                    if self._fact(path) is None:
                        self._started_now(path)
        return _results(names, map(self._header, paths))

    def _started_now(self, path: str) -> Future[Header | HeaderReadError]:
        """The read of ``path``, submitted now (ahead of reads waiting) unless it was before."""
        with self._lock:
            started = self._started.get(path)
            if started is None:
                self._ahead.pop(path, None)
                self._start(path)
                started = self._started[path]
            return started

    def _hand_over(self) -> None:
        """Give the pool the next reads ahead while it has room (the lock held)."""
        while self._room > 0 and self._ahead and not self._closed:
            path = next(iter(self._ahead))
            del self._ahead[path]
            self._start(path)

    def _start(self, path: str) -> None:
        """Submit the read of ``path`` (the lock held)."""
        assert self._pool is not None, "only with a pool"
        self._room -= 1
        started = self._pool.submit(_try_read, self._seestar, path)
        self._started[path] = started
        started.add_done_callback(self._done)

    def _done(self, _: Future[Header | HeaderReadError]) -> None:
        with self._lock:
            self._room += 1
            self._hand_over()

    def _header(self, path: str) -> Header | HeaderReadError:
        fact = self._fact(path)
        if fact is not None:
            return {"DATE-OBS": fact.date_obs}
        if self._pool is None:
            header = _try_read(self._seestar, path)
        else:
            header = self._started_now(path).result()
        if not isinstance(header, HeaderReadError):
            self._read[path] = header
        return header

    def facts(self, listed: Collection[tuple[str, str]]) -> list[HeaderFact]:
        """Facts of the ``(folder, name)`` listed: kept ones still true and every read made."""
        with self._lock:
            reads = list(self._started.items())
        for path, started in reads:
            if started.done() and not started.cancelled():
                header = started.result()
                if not isinstance(header, HeaderReadError):
                    self._read.setdefault(path, header)
        facts: list[HeaderFact] = []
        for path in dict.fromkeys([*self._read, *self._known]):
            key = _folder_and_name(path)
            size = self._sizes.get(key, 0)
            if key not in listed or size <= 0:
                continue
            if path in self._read:
                facts.append(HeaderFact(path, size, _date_obs_card(self._read[path])))
            elif (kept := self._fact(path)) is not None:
                facts.append(kept)
        return facts


def _folder_and_name(path: str) -> tuple[str, str]:
    folder, _, name = path.removeprefix("MyWorks/").rpartition("/")
    return folder, name


def _date_obs_card(header: Header) -> str | None:
    card = header.get("DATE-OBS")
    return card if isinstance(card, str) else None


def _results(
    names: Sequence[str], headers: Iterable[Header | HeaderReadError]
) -> list[HeaderResult]:
    results: list[HeaderResult] = []
    for name, header in zip(names, headers, strict=False):
        if isinstance(header, HeaderReadError):
            results.append(HeaderUnreadable(name=name, reason=header.reason))
            break
        results.append(HeaderRead(name=name, date_obs=parse_date_obs(header.get("DATE-OBS"))))
    return results


class _Lister:
    """Lists sub folders; with a zone to forecast in, reads ahead while pages arrive.

    Frames parsed from the pages are kept by name, so the complete listing is not parsed twice.
    """

    def __init__(
        self,
        seestar: Seestar,
        reads: _HeaderReads,
        forecast: Callable[[Sequence[RawFrame]], Iterable[str]] | None,
    ) -> None:
        self._seestar = seestar
        self._reads = reads
        self._forecast = forecast
        self._parsed: dict[str, RawFrame | None] = {}
        self._early: dict[str, Sequence[FileEntry] | Exception] = {}

    @property
    def reads_ahead(self) -> bool:
        """True when listings are paged with a forecast, so listing early reads early too."""
        return self._forecast is not None and isinstance(self._seestar, PagedListing)

    def list_early(self, folder: str) -> None:
        """List ``folder`` now, for :meth:`frames` to take if it turns out to be asked for.

        A listing that fails raises only if the folder is asked for, as it would have then; one
        never asked for is dropped.
        """
        try:
            self._early[folder] = self._paged(folder)
        except Exception as exc:  # the listing's own errors, raised if the folder is asked for
            self._early[folder] = exc

    def frames(self, folders: Iterable[str]) -> list[tuple[str, RawFrame]]:
        """The raw frames of ``folders`` with the folder each was listed in."""
        frames: list[tuple[str, RawFrame]] = []
        for folder in folders:
            frames += ((folder, frame) for frame in self._frames_of(folder))
        return frames

    def _frames_of(self, folder: str) -> tuple[RawFrame, ...] | list[RawFrame]:
        seestar = self._seestar
        if self._forecast is None or not isinstance(seestar, PagedListing):
            entries = seestar.list_files(folder)
            self._reads.listed(folder, entries)
            return parse_raw_names(entry.name for entry in entries)
        listed = self._early.pop(folder, None)
        if isinstance(listed, Exception):
            raise listed
        if listed is None:
            listed = self._paged(folder)
        names = [entry.name for entry in listed]
        self._parse([name for name in names if name not in self._parsed])
        return [frame for frame in map(self._parsed.__getitem__, names) if frame is not None]

    def _paged(self, folder: str) -> Sequence[FileEntry]:
        assert isinstance(self._seestar, PagedListing), "only paged when there is a forecast"
        listed = self._seestar.list_files_paged(folder, functools.partial(self._on_page, folder))
        self._reads.listed(folder, listed)
        return listed

    def _parse(self, names: Sequence[str]) -> list[RawFrame]:
        frames = parse_raw_names(names)
        self._parsed.update(dict.fromkeys(names))
        self._parsed.update((frame.name, frame) for frame in frames)
        return list(frames)

    def _on_page(self, folder: str, page: Sequence[FileEntry]) -> None:
        assert self._forecast is not None, "only paged when there is a forecast"
        self._reads.listed(folder, page)
        fresh = self._parse([entry.name for entry in page if entry.name not in self._parsed])
        wanted = self._forecast(fresh)
        self._reads.read_ahead(device_path(folder, name) for name in wanted)


def load_target(
    seestar: Seestar,
    target: str,
    *,
    block_minutes: int = 15,
    tz: tzinfo | None = None,
    host_zone: tzinfo | None = None,
    zone: tzinfo | None = None,
    header_cache: HeaderCache | None = None,
) -> TargetInventory:
    """Read one target's frames and coverage and settle the device's zone for it.

    Parameters
    ----------
    seestar : Seestar
        The telescope.
    target : str
        Target name (see :func:`list_target_folders`).
    block_minutes : int
        Block length: frames near its boundaries have their ``DATE-OBS`` read (unless both
        candidate blocks are already stacked).
    tz : tzinfo, optional
        The user's override of the device zone.
    host_zone : tzinfo, optional
        Last-resort zone (the computer's), used with a :class:`DeviceTimeWarning`.
    zone : tzinfo, optional
        The device's reported zone, if already asked (see :func:`device_zone`).
    header_cache : HeaderCache, optional
        Header facts of earlier runs: asked first, told the new ones once the target loaded.
        Used only for a Seestar that knows its identity.

    Raises
    ------
    HeaderReadError
        When a header the settler asked for could not be read, even when retried: nothing is
        planned from a guess.
    """
    stacked = _stacked(seestar, target)
    expected = tz or zone
    with _HeaderReads(seestar) as reads:
        forecast = None
        if expected is not None and reads.concurrent:
            forecast = functools.partial(
                likely_headers, zone=expected, stacked=stacked, block_minutes=block_minutes
            )
        lister = _Lister(seestar, reads, forecast)
        folders = _find_target_listing_ahead(seestar, target, lister, reads, header_cache)
        cache = _Cache.of(seestar, header_cache, folders)
        if cache is not None:
            reads.know(cache.known)
        listed = lister.frames(folders)
        folder_of = {frame.name: folder for folder, frame in listed}
        settler = DeviceTimeSettler(
            [frame for _, frame in listed],
            stacked=stacked,
            override=tz,
            device_zone=zone,
            host_zone=host_zone,
            block_minutes=block_minutes,
        )
        step = settler.next_step()
        while isinstance(step, NeedHeaders):
            paths = [device_path(folder_of[name], name) for name in step.names]
            settler.receive_headers(reads.results(paths, step.names))
            step = settler.next_step()
    if isinstance(step, CannotSettle):
        raise _read_error(step.unreadable[0], folder_of)
    if cache is not None:
        cache.keep(reads.facts({(folder, frame.name) for folder, frame in listed}))
    for text in step.warnings:
        warnings.warn(f"{target}: {text}", DeviceTimeWarning, stacklevel=2)
    return TargetInventory(target, folders, step.frames, step.zone, step.covered, folder_of)


def _find_target_listing_ahead(
    seestar: Seestar,
    target: str,
    lister: _Lister,
    reads: _HeaderReads,
    header_cache: HeaderCache | None,
) -> tuple[str, ...]:
    """:func:`find_target`, while the folder current firmware uses is listed (and read) ahead.

    The folder list (``get_albums``) and the sub folder's listing go over different channels
    of the network Seestar, so the one hides the other. Only when reading ahead: the listing
    ahead is kept only if the folder list names it (see :meth:`_Lister.list_early`).
    """
    if not lister.reads_ahead:
        return find_target(seestar, target)
    guess = sub_folder_of(target)
    early = _Cache.of(seestar, header_cache, [guess])
    if early is not None:
        reads.know(early.known)
    with ThreadPoolExecutor(1, thread_name_prefix="crowdsky-folders") as pool:
        folders = pool.submit(find_target, seestar, target)
        lister.list_early(guess)
        return folders.result()


@attrs.frozen
class _Cache:
    """The header facts kept for one device's sub folders, and where to keep the new ones."""

    store: HeaderCache
    device: str
    folders: tuple[str, ...]
    known: dict[str, HeaderFact]

    @classmethod
    def of(
        cls, seestar: Seestar, store: HeaderCache | None, folders: Sequence[str]
    ) -> _Cache | None:
        if store is None or not isinstance(seestar, DeviceIdentity) or not seestar.identity:
            return None
        device, folders = seestar.identity, tuple(folders)
        known = {fact.path: fact for fact in store.recall(device, folders)}
        return cls(store, device, folders, known)

    def keep(self, facts: Sequence[HeaderFact]) -> None:
        """Keep ``facts`` for these folders, unless they are the ones already kept."""
        if set(facts) != set(self.known.values()):
            self.store.keep(self.device, self.folders, facts)


def _read_error(unreadable: HeaderUnreadable, folder_of: dict[str, str]) -> HeaderReadError:
    path = device_path(folder_of[unreadable.name], unreadable.name)
    return HeaderReadError(path, HEADER_READ_ATTEMPTS, unreadable.reason)
