"""Reading files from the Seestar's HTTP file server (port 80, protocol reference §5.1).

``GET http://<ip>/MyWorks/<folder>/<file>`` with the path percent-encoded (``/`` kept); no
authentication; a missing file is a 404. Whether the server honours ``Range`` is not known, so
:meth:`HttpFiles.read_header` works both ways: with a 206 it asks for more ranges until the
``END`` card has been seen; with a 200 (Range ignored) it reads the body only until the ``END``
card and then closes the response, so a 4 MB sub costs a few kilobytes either way.

Downloads are bounded like the CrowdSky server's (:mod:`crowdsky.adapters.fits_transfer`): at
most ``max_bytes`` and never more than the ``Content-Length``, within an overall deadline, and a
``.fit``/``.fits`` file is kept only when it is whole FITS (an HTML error page is not a stack).
"""

from __future__ import annotations

import cmath
import contextlib
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from crowdsky.adapters.direct_http import DirectGets, NotPlain
from crowdsky.adapters.fits_transfer import (
    DEFAULT_TRANSFER_DEADLINE,
    MAX_FITS_BYTES,
    Piece,
    TransferError,
    TransferTimeout,
    bounded,
    counted,
    remove_stale_parts,
    save_stream,
)
from crowdsky.adapters.http_body import body_pieces
from crowdsky.adapters.seestar.fits_cards import plain_cards
from crowdsky.app.ports import ByteProgress
from crowdsky.domain.device_paths import check_path
from crowdsky.errors import SeestarConnectionError, StorageError

__all__ = ["BLOCK", "HttpFiles"]

log = logging.getLogger("crowdsky.seestar")

#: A FITS header is a whole number of 2880-byte blocks of 80-byte cards.
BLOCK = 2880
_CARD = 80
_END_CARD = b"END" + b" " * 5
# A header longer than this is not a Seestar header (theirs fit in one or two blocks).
_MAX_HEADER = 200 * BLOCK
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})


class HttpFiles:
    """The Seestar's HTTP file server: FITS headers and streamed, atomic downloads.

    Parameters
    ----------
    base_url : str
        ``http://<ip>`` (or ``http://<ip>:<port>``) of the device's file server.
    client : httpx.Client, optional
        The client to use (tests pass one with a ``MockTransport``). A client passed in is not
        closed by :meth:`close`; one created here is. Without one, header reads from a plain
        ``http://`` server that no proxy setting covers go over this object's own kept-alive
        sockets (:class:`~crowdsky.adapters.direct_http.DirectGets`), a third of
        httpx's cost per read, with every check the same; downloads always use httpx.
    timeout : float
        Seconds for connecting and for each read.
    header_blocks : int
        2880-byte blocks asked for in the first header request. Seestar headers fit in one or
        two (protocol reference §6), so two; a longer header is read on in ranges that double.
    max_bytes : int
        The largest file downloaded (:data:`~crowdsky.adapters.fits_transfer.MAX_FITS_BYTES`).
    transfer_deadline : float
        Seconds one download (or header read) may take in all, checked as each piece arrives.
    clock : callable
        Monotonic seconds for the deadline (tests pass a fake).
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        header_blocks: int = 2,
        max_bytes: int = MAX_FITS_BYTES,
        transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._first_range = max(1, header_blocks) * BLOCK
        self._max_bytes = max_bytes
        self._deadline = transfer_deadline
        self._clock = clock
        self._swept: set[Path] = set()
        self._direct = _direct_gets(self.base_url, timeout) if client is None else None

    def url(self, path: str) -> str:
        """The URL of a storage path, percent-encoded with ``/`` kept.

        Examples
        --------
        >>> HttpFiles("http://10.0.0.1/").url("MyWorks/M 81/a b.fit")
        'http://10.0.0.1/MyWorks/M%2081/a%20b.fit'
        """
        check_path(path)
        return f"{self.base_url}/{quote(path, safe='/')}"

    def read_header(self, path: str) -> dict[str, Any]:
        """The primary FITS header of ``path`` as keyword → value (strings right-stripped).

        Commentary cards (``COMMENT``, ``HISTORY``, blank) are left out.

        Raises
        ------
        StorageError
            When the file is missing (404), not FITS, or the server answers with an error.
        SeestarConnectionError
            When the server cannot be reached or stops answering.
        """
        url = self.url(path)
        buffer = bytearray()
        want = self._first_range
        while True:
            start = len(buffer)
            headers = {"Range": f"bytes={start}-{start + want - 1}"}
            with self._translate(path), self._get(url, headers) as (status, fields, body):
                _check_status(status, path, ok=(200, 206))
                chunks = bounded(
                    body,
                    what=f"The header of {path}",
                    max_bytes=self._max_bytes,
                    deadline=self._deadline,
                    clock=self._clock,
                )
                if status == 200:
                    # Range ignored: the body is the whole file from byte 0.
                    return _parse(_read_until_end(chunks, path), path)
                total = _check_content_range(fields, start, path)
                _read_at_most(chunks, buffer, start + want)
                if _content_length(fields) in range(want + 1):
                    _drain(chunks)  # to the end of the answer: the connection is kept for reuse
            end = _header_end(buffer, path)
            if end is not None:
                return _parse(bytes(buffer[:end]), path)
            # Without Content-Range, a short answer means end of file; with it, the total says.
            at_eof = len(buffer) < start + want if total is None else len(buffer) >= total
            if at_eof or len(buffer) == start:
                raise StorageError(f"{path} is not a FITS file: no END card before end of file")
            if len(buffer) >= _MAX_HEADER:
                raise StorageError(f"{path}: no END card in the first {_MAX_HEADER} bytes")
            want *= 2

    @contextlib.contextmanager
    def _get(
        self, url: str, headers: dict[str, str]
    ) -> Iterator[tuple[int, Mapping[str, str], Iterator[bytes]]]:
        """A ``GET``'s status, header fields and body: directly when possible, else by httpx."""
        if self._direct is not None:
            try:
                with self._direct.get(_target(url), headers) as answer:
                    yield answer.status, answer.headers, answer.pieces()
                    return
            except NotPlain:
                pass  # an answer only httpx reads (chunked, encoded): ask again through it
        with self._client.stream("GET", url, headers=headers) as reply:
            yield reply.status_code, reply.headers, reply.iter_bytes()

    def download(self, path: str, dest: Path, *, on_bytes: ByteProgress | None = None) -> Path:
        """Copy ``path`` to the local file ``dest``, atomically, and return ``dest``.

        The body is streamed into ``<dest>.part`` as it arrives, checked against
        ``Content-Length`` when the server sends one (fewer or more bytes are an error), capped at
        ``max_bytes`` and ``transfer_deadline``, and moved onto ``dest`` with :func:`os.replace`;
        a ``.fit``/``.fits`` file must be whole FITS (``SIMPLE  =``, whole 2880-byte blocks). On
        any failure the ``.part`` file is removed and ``dest`` is untouched. ``.fit.part`` /
        ``.fits.part`` files in the folder older than any transfer (killed runs) are removed.
        ``on_bytes`` is told the bytes written so far and the ``Content-Length`` (``None``
        when not sent), once per piece of the body (up to 1 MiB).

        Raises
        ------
        StorageError
            Missing file, truncated, oversized or not-FITS transfer, or the local file could not
            be written.
        SeestarConnectionError
            When the server cannot be reached, stops answering, or outlasts the deadline.
        """
        dest = Path(dest)
        self._sweep(dest.parent)
        url = self.url(path)
        what = f"Download of {path}"
        with self._translate(path), self._client.stream("GET", url) as reply:
            _check_status(reply.status_code, path, ok=(200,))
            expected = _content_length(reply.headers)
            chunks = bounded(
                body_pieces(reply),
                what=what,
                max_bytes=self._max_bytes,
                deadline=self._deadline,
                expected=expected,
                clock=self._clock,
            )
            check = dest.suffix.lower() in (".fit", ".fits")
            chunks = counted(chunks, on_bytes, expected)
            received = save_stream(
                _complete(chunks, expected, what), dest, what=what, check_fits=check
            )
        log.debug("%s: %d bytes", what, received)
        return dest

    def _sweep(self, folder: Path) -> None:
        """Remove our stale ``.part`` files in ``folder``, once per folder and instance."""
        if folder in self._swept:
            return
        self._swept.add(folder)
        # Another run with the default deadline may be downloading here: never sweep younger.
        for stale in remove_stale_parts(folder, max(self._deadline, DEFAULT_TRANSFER_DEADLINE)):
            log.info("Removed %s, left by an interrupted download", stale.name)

    @contextlib.contextmanager
    def _translate(self, path: str) -> Iterator[None]:
        """Turn httpx and OS exceptions into crowdsky errors that name the file and the server."""
        try:
            yield
        except TransferTimeout as exc:
            raise SeestarConnectionError(f"{exc} from {self.base_url}") from None
        except TransferError as exc:
            raise StorageError(str(exc)) from None
        except (httpx.TimeoutException, httpx.NetworkError) as exc:
            raise SeestarConnectionError(
                f"Seestar file server {self.base_url} did not answer for {path}: {exc!r}"
            ) from exc
        except httpx.HTTPError as exc:
            raise StorageError(f"Reading {path} from {self.base_url} failed: {exc!r}") from exc
        except OSError as exc:
            raise StorageError(f"Local file error while copying {path}: {exc}") from exc

    def check(self) -> None:
        """Pre-flight: ask the file server for its root; any HTTP answer means it is there.

        Raises
        ------
        SeestarConnectionError
            When the server cannot be reached or does not answer.
        """
        with self._translate("/"), self._client.stream("GET", f"{self.base_url}/"):
            pass  # whatever the status, the server answered

    def close(self) -> None:
        """Close the HTTP client (and the header reads' sockets) if this object created it."""
        if self._direct is not None:
            self._direct.close()
        if self._own_client:
            self._client.close()

    def __enter__(self) -> HttpFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _direct_gets(base_url: str, timeout: float) -> DirectGets | None:
    """Own sockets for ``base_url``: only plain HTTP with no proxy configured for it."""
    parts = urlsplit(base_url)
    host = parts.hostname
    if parts.scheme != "http" or host is None or parts.path not in ("", "/"):
        return None
    if getproxies().get("http") and not proxy_bypass(host):
        return None  # httpx goes through the proxy; so must every request
    return DirectGets(host, parts.port or 80, timeout)


def _target(url: str) -> str:
    """The request target (path and query) of an absolute URL."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _check_status(status: int, path: str, ok: tuple[int, ...]) -> None:
    if status in ok:
        return
    if status == 404:
        raise StorageError(f"No such file on the Seestar: {path} (HTTP 404)")
    if status == 416:
        raise StorageError(f"{path} is not a FITS file: it is empty (HTTP 416)")
    raise StorageError(f"Seestar file server answered HTTP {status} for {path}")


def _check_content_range(fields: Mapping[str, str], start: int, path: str) -> int | None:
    """The file's total size from ``Content-Range``; the range must begin where it was asked."""
    match = _CONTENT_RANGE.fullmatch(fields.get("content-range", "").strip())
    if match is None:
        return None
    if int(match[1]) != start:
        raise StorageError(f"Seestar file server sent bytes from {match[1]}, not {start}: {path}")
    return None if match[3] == "*" else int(match[3])


def _content_length(fields: Mapping[str, str]) -> int | None:
    value = fields.get("content-length")
    if fields.get("content-encoding", "identity").lower() != "identity":
        return None  # it counts encoded bytes, not the file's; h11 checks those itself
    return int(value) if value is not None and value.isdigit() else None


def _complete(chunks: Iterable[Piece], expected: int | None, what: str) -> Iterator[Piece]:
    """Pass ``chunks`` on; fewer bytes than ``Content-Length`` announced is an error at the end."""
    received = 0
    for chunk in chunks:
        received += len(chunk)
        yield chunk
    if expected is not None and received != expected:
        raise TransferError(f"{what} is incomplete: {received} of {expected} bytes")


def _read_at_most(chunks: Iterable[Piece], buffer: bytearray, limit: int) -> None:
    """Append chunks to ``buffer`` up to ``limit`` bytes (a server may send more than asked)."""
    for chunk in chunks:
        buffer += chunk[: limit - len(buffer)]
        if len(buffer) >= limit:
            return


def _drain(chunks: Iterable[Piece]) -> None:
    """Read an answer to its end (nothing, or what is left of a short range) and drop it."""
    for _ in chunks:
        pass


def _read_until_end(chunks: Iterable[Piece], path: str) -> bytes:
    """Read a full-file body only until the block holding the ``END`` card, then stop."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        end = _header_end(buffer, path)
        if end is not None:
            return bytes(buffer[:end])
        if len(buffer) >= _MAX_HEADER:
            raise StorageError(f"{path}: no END card in the first {_MAX_HEADER} bytes")
    raise StorageError(f"{path} is not a FITS file: no END card before end of file")


def _header_end(buffer: bytes | bytearray, path: str) -> int | None:
    """Byte offset just past the header block holding ``END``, or ``None`` if not seen yet."""
    if len(buffer) >= _CARD and bytes(buffer[:9]) != b"SIMPLE  =":
        raise StorageError(f"{path} is not a FITS file (it does not start with SIMPLE)")
    whole = len(buffer) - len(buffer) % BLOCK
    for offset in range(0, whole, _CARD):
        if buffer[offset : offset + 8] == _END_CARD:
            return offset - offset % BLOCK + BLOCK
    return None


def _parse(data: bytes, path: str) -> dict[str, Any]:
    """Header cards as a dict: plain cards read directly, anything else by astropy.

    astropy's warnings about odd cards are not the caller's concern.
    """
    try:
        text = data.decode("ascii")
        plain = plain_cards(text)
        if plain is not None:
            return {keyword: _clean(keyword, value) for keyword, value in plain.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            header = fits.Header.fromstring(text)
            cards: dict[str, Any] = {}
            for card in header.cards:
                if card.keyword in _COMMENTARY:
                    continue
                cards[card.keyword] = _clean(card.keyword, card.value)
    # astropy reads odd cards lazily and fails in many ways (KeyError for a missing NAXISn).
    except (
        UnicodeDecodeError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        OverflowError,
        fits.VerifyError,
    ) as exc:
        raise StorageError(f"{path} has an unreadable FITS header: {exc}") from exc
    return cards


def _clean(keyword: str, value: Any) -> Any:
    if isinstance(value, str):
        return value.rstrip()
    if isinstance(value, fits.card.Undefined):
        return None
    if isinstance(value, (float, complex)) and not cmath.isfinite(value):
        # -1E400 reads as -inf: no reading of the card, and int() of it would overflow later.
        raise ValueError(f"card {keyword} has a number out of range")
    return value
