"""A streaming ``multipart/form-data`` body with a known length.

httpx's ``files=`` builds the whole body in memory for some inputs, so a 12 MB stack costs 12 MB
and a large raw frame its size (field notes, item 11). This body reads each file in chunks while
it is sent and knows its length in advance, so the request carries a ``Content-Length`` (the
CrowdSky server is PHP behind a web server that may refuse chunked uploads) and memory stays flat
whatever the file size. It can be iterated again for a retry.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

__all__ = ["FilePart", "MultipartBody"]

#: Bytes read from a file at a time. Each piece costs httpx/h11 framing and a progress call, so
#: fewer pieces cost the client less CPU; past 512 KiB a piece no longer fits the CPU cache on
#: its way from the file to the socket and the cost grows again (BENCHMARKS.md).
_CHUNK = 512 * 1024
_CRLF = b"\r\n"


@attrs.frozen
class FilePart:
    """One file part: form ``name``, the local ``path``, the ``filename`` sent and its type."""

    name: str
    path: Path
    filename: str
    content_type: str = "application/octet-stream"


def _quote(text: str) -> str:
    # As browsers do (WHATWG): escape the three characters that would break the header line.
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody:
    """A ``multipart/form-data`` body that streams its files.

    Parameters
    ----------
    fields : Sequence[tuple[str, str]]
        Plain form fields, in order.
    files : Sequence[FilePart]
        File parts, sent after the fields.
    chunk_size : int
        Bytes read from a file at a time (512 KiB by default).
    on_bytes : callable, optional
        Told ``(done, content_length)`` each time a piece of the body has been handed on
        (a retry that iterates the body again counts from 0).

    Examples
    --------
    >>> body = MultipartBody([("a", "1")], [], boundary="XyZ")
    >>> b"".join(body).splitlines()
    [b'--XyZ', b'Content-Disposition: form-data; name="a"', b'', b'1', b'--XyZ--']
    >>> body.content_length
    63
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        files: Sequence[FilePart],
        *,
        boundary: str | None = None,
        chunk_size: int = _CHUNK,
        on_bytes: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.boundary = boundary or secrets.token_hex(16)
        self.fields = tuple(fields)
        self.files = tuple(files)
        self.chunk_size = chunk_size
        self.on_bytes = on_bytes
        # Sizes are taken once: a file that changes while it is sent is caught in __iter__.
        self._sizes = tuple(part.path.stat().st_size for part in self.files)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header value, with the boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def headers(self) -> dict[str, str]:
        """``Content-Type`` and ``Content-Length`` for the request."""
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}

    def _field_head(self, name: str) -> bytes:
        disposition = f'Content-Disposition: form-data; name="{_quote(name)}"'
        return b"--" + self.boundary.encode() + _CRLF + disposition.encode() + _CRLF + _CRLF

    def _file_head(self, part: FilePart) -> bytes:
        lines = (
            f"--{self.boundary}",
            f'Content-Disposition: form-data; name="{_quote(part.name)}"; '
            f'filename="{_quote(part.filename)}"',
            f"Content-Type: {part.content_type}",
            "",
            "",
        )
        return "\r\n".join(lines).encode("utf-8")

    def _tail(self) -> bytes:
        return b"--" + self.boundary.encode() + b"--" + _CRLF

    @property
    def content_length(self) -> int:
        """Exact body length in bytes."""
        total = sum(
            len(self._field_head(n)) + len(v.encode("utf-8")) + len(_CRLF) for n, v in self.fields
        )
        total += sum(
            len(self._file_head(part)) + size + len(_CRLF)
            for part, size in zip(self.files, self._sizes, strict=True)
        )
        return total + len(self._tail())

    def __iter__(self) -> Iterator[bytes]:
        if self.on_bytes is None:
            yield from self._pieces()
            return
        total, done = self.content_length, 0
        for piece in self._pieces():
            yield piece
            done += len(piece)
            self.on_bytes(done, total)

    def _pieces(self) -> Iterator[bytes]:
        for name, value in self.fields:
            yield self._field_head(name) + value.encode("utf-8") + _CRLF
        for part, size in zip(self.files, self._sizes, strict=True):
            yield self._file_head(part)
            sent = 0
            with part.path.open("rb") as handle:
                while sent < size:
                    chunk = handle.read(min(self.chunk_size, size - sent))
                    if not chunk:
                        raise OSError(f"{part.path.name} shrank while it was being sent")
                    sent += len(chunk)
                    yield chunk
            yield _CRLF
        yield self._tail()
