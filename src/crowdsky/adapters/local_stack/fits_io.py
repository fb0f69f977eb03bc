"""Reading raw sub-frames and writing the device's stack format, for the local stacker.

Raw subs are only ever opened for reading: :func:`read_sub` reads a whole sub (header and Bayer
mosaic) and :func:`read_rows` re-reads a band of its rows straight from the file (FITS pixels are
stored row after row after the header), so combining in strips never holds whole frames.

:func:`write_stack` writes what a Seestar's stack is: one primary HDU of shape ``(3, H, W)``
(R, G, B planes), uint16 stored as ``BITPIX = 16`` with ``BZERO = 32768``, the subs' keywords
carried over with ``STACKCNT``, ``EXPTIME`` and ``TOTALEXP`` for the frames kept, and the
device's two JPEG companions beside it (:func:`crowdsky.domain.names.companion_names`): a
full-size ``<stem>.jpg`` preview and a ``<stem>_thn.jpg`` thumbnail. All files appear
atomically (written as ``.part``, flushed to disk, then renamed) and hold no time of
writing, so the same input gives the same bytes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cv2
import numpy as np
from numpy.typing import NDArray

from crowdsky.domain.names import companion_names
from crowdsky.errors import LocalStackError

__all__ = [
    "StackHeader",
    "SubFrame",
    "read_rows",
    "read_sub",
    "stack_header",
    "thumbnail_path",
    "write_stack",
]

#: Cards a FITS writer makes from the data itself, never copied from a sub.
_STRUCTURAL = frozenset(
    {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "BZERO", "BSCALE", "END"}
)
#: Cards that describe a raw Bayer mosaic and are false of a debayered stack.
_MOSAIC_ONLY = frozenset({"BAYERPAT", "XBAYROFF", "YBAYROFF"})
#: Cards that are not keywords (commentary) and are not carried over.
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})
#: Longest side of the thumbnail, in pixels.
THUMBNAIL_SIZE = 320


@attrs.frozen
class SubFrame:
    """A raw sub-frame as read from its file.

    Parameters
    ----------
    header : Mapping[str, Any]
        Its primary header's keywords (commentary cards left out), in file order.
    comments : Mapping[str, str]
        The comments beside those keywords.
    mosaic : numpy.ndarray
        The 2-D uint16 Bayer mosaic, ``(rows, columns)``.
    data_offset : int
        Where the pixels start in the file, in bytes (for :func:`read_rows`).
    """

    header: Mapping[str, Any]
    comments: Mapping[str, str]
    mosaic: NDArray[np.uint16] = attrs.field(eq=False)
    data_offset: int


def read_sub(path: Path) -> SubFrame:
    """Read a raw sub-frame: its header and its mosaic (the file is opened read only).

    Parameters
    ----------
    path : Path
        The ``Light_*.fit`` file.

    Returns
    -------
    SubFrame

    Raises
    ------
    LocalStackError
        When the file is missing, is not FITS, or is not a 2-D 16-bit mosaic with ``BZERO =
        32768`` (what a Seestar writes).
    """
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    try:
        with warnings.catch_warnings():
            # A truncated file is told by its length below, not by astropy's warning.
            warnings.simplefilter("ignore", AstropyWarning)
            hdul = fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=True)
        with hdul:
            hdu = hdul[0]
            header = {key: value for key, value in hdu.header.items() if key not in _COMMENTARY}
            comments = {key: str(hdu.header.comments[key]) for key in header}
            _check_mosaic(path, header)
            offset = int(hdul.fileinfo(0)["datLoc"])
            raw = read_rows(path, offset, header["NAXIS1"], 0, header["NAXIS2"])
    except LocalStackError:
        raise
    except (OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise LocalStackError(f"{path.name} could not be read as a raw sub-frame: {exc}") from exc
    return SubFrame(header=header, comments=comments, mosaic=raw, data_offset=offset)


def _check_mosaic(path: Path, header: Mapping[str, Any]) -> None:
    layout = (header.get("BITPIX"), header.get("NAXIS"), header.get("BZERO", 0))
    if layout != (16, 2, 32768) or header.get("BSCALE", 1) != 1:
        raise LocalStackError(
            f"{path.name} is not a raw Seestar sub-frame (BITPIX, NAXIS, BZERO = {layout}; "
            "expected 16, 2, 32768)."
        )


def read_rows(
    path: Path, data_offset: int, width: int, first: int, stop: int
) -> NDArray[np.uint16]:
    """Rows ``first`` to ``stop - 1`` of a sub's mosaic, read from the file alone.

    Parameters
    ----------
    path : Path
        The sub-frame (opened read only).
    data_offset : int
        Where its pixels start (:attr:`SubFrame.data_offset`).
    width : int
        Pixels per row (``NAXIS1``).
    first, stop : int
        The rows wanted, ``stop`` excluded.

    Returns
    -------
    numpy.ndarray
        ``(stop - first, width)`` uint16.

    Raises
    ------
    LocalStackError
        When the file cannot be read or is shorter than its header says.
    """
    count = (stop - first) * width
    try:
        with path.open("rb") as file:
            file.seek(data_offset + 2 * first * width)
            data = file.read(2 * count)
    except OSError as exc:
        raise LocalStackError(f"{path.name} could not be read: {exc}") from exc
    if len(data) != 2 * count:
        raise LocalStackError(f"{path.name} is shorter than its header says (truncated copy?).")
    # int16 stored with BZERO = 32768 is the uint16 value with its top bit flipped.
    stored = np.frombuffer(data, dtype=">u2")
    return (stored ^ np.uint16(0x8000)).astype(np.uint16).reshape(stop - first, width)


@attrs.frozen
class StackHeader:
    """The keywords of a stack, in file order (structural cards are the writer's).

    Parameters
    ----------
    cards : tuple of (str, Any, str)
        ``(keyword, value, comment)``.
    """

    cards: tuple[tuple[str, Any, str], ...]


def stack_header(
    first_sub: Mapping[str, Any], kept: int, comments: Mapping[str, str] | None = None
) -> StackHeader:
    """The header of a stack of ``kept`` frames whose first combined sub has ``first_sub``.

    Every keyword of that sub is carried over (``DATE-OBS``, ``RA``, ``DEC``, ``OBJECT``,
    ``FILTER``, the instrument's), except the structural ones and those describing a Bayer
    mosaic; ``STACKCNT`` is ``kept``, ``EXPTIME`` the sub's exposure and ``TOTALEXP`` their
    product.

    Parameters
    ----------
    first_sub : Mapping[str, Any]
        The header of the first (earliest) sub combined.
    kept : int
        Frames combined.
    comments : Mapping[str, str], optional
        Comments to write beside the keywords.

    Returns
    -------
    StackHeader

    Raises
    ------
    LocalStackError
        When the sub has no ``EXPTIME`` (or ``EXPOSURE``) to compute ``TOTALEXP`` from.
    """
    comments = comments or {}
    comments = {
        **comments,
        "STACKCNT": "Stack frames",
        "TOTALEXP": "Total Exposure Time in seconds",
    }
    exptime = first_sub.get("EXPTIME", first_sub.get("EXPOSURE"))
    if not isinstance(exptime, (int, float)) or isinstance(exptime, bool):
        raise LocalStackError("The sub-frames carry no EXPTIME, so TOTALEXP cannot be written.")
    values: dict[str, Any] = {
        key: value
        for key, value in first_sub.items()
        if key not in _STRUCTURAL | _MOSAIC_ONLY | _COMMENTARY
    }
    values["STACKCNT"] = kept
    values["EXPTIME"] = exptime
    values["TOTALEXP"] = kept * exptime
    return StackHeader(tuple((key, value, comments.get(key, "")) for key, value in values.items()))


def thumbnail_path(output: Path) -> Path:
    """Where the thumbnail of the stack ``output`` goes (``<stem>_thn.jpg``, as on the device)."""
    return output.with_name(companion_names(output.name)[-1])


def write_stack(output: Path, planes: NDArray[np.uint16], header: StackHeader) -> Path:
    """Write the stack, its ``.jpg`` preview and ``_thn.jpg`` thumbnail atomically.

    Returns the thumbnail's path.

    Parameters
    ----------
    output : Path
        The ``.fit`` to write (replaced if it exists).
    planes : numpy.ndarray
        ``(3, H, W)`` uint16, R, G, B.
    header : StackHeader
        Its keywords (see :func:`stack_header`).

    Raises
    ------
    LocalStackError
        When the files cannot be written; no ``.part`` file is left behind.
    """
    from astropy.io import fits

    hdu = fits.PrimaryHDU(data=planes)
    for key, value, comment in header.cards:
        hdu.header[key] = (value, comment) if comment else value
    preview_name, thumb_name = companion_names(output.name)
    thumb = output.with_name(thumb_name)
    jpegs = {output.with_name(preview_name): preview_jpeg(planes), thumb: thumbnail_jpeg(planes)}
    fit_part = output.with_name(output.name + ".part")
    parts = [fit_part, *(path.with_name(path.name + ".part") for path in jpegs)]
    try:
        with fit_part.open("wb") as file:
            hdu.writeto(file)
            _flush(file)
        for jpeg, part in zip(jpegs.values(), parts[1:], strict=True):
            with part.open("wb") as file:
                file.write(jpeg)
                _flush(file)
        # The companions first: a .fit is what says a stack exists.
        for path, part in zip(jpegs, parts[1:], strict=True):
            os.replace(part, path)
        os.replace(fit_part, output)
    except (OSError, ValueError) as exc:
        for part in parts:
            part.unlink(missing_ok=True)
        raise LocalStackError(f"The stack {output.name} could not be written: {exc}") from exc
    return thumb


def _flush(file: Any) -> None:
    file.flush()
    os.fsync(file.fileno())


def thumbnail_jpeg(planes: NDArray[np.uint16]) -> bytes:
    """A stretched JPEG preview of a stack, its longest side :data:`THUMBNAIL_SIZE` pixels.

    The background (median) goes to black and the 99.9th percentile to white, the same for the
    three channels, with a square-root stretch between so that faint detail shows.
    """
    _, rows, cols = planes.shape
    scale = THUMBNAIL_SIZE / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    # cv2 wants (H, W, C) in B, G, R order.
    bgr = np.ascontiguousarray(planes[::-1].transpose(1, 2, 0)).astype(np.float32)
    small = np.asarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), dtype=np.float32)
    return _stretched_jpeg(small)


def preview_jpeg(planes: NDArray[np.uint16]) -> bytes:
    """The full-size JPEG preview of a stack (the device's ``<stem>.jpg``).

    Stretched as :func:`thumbnail_jpeg` stretches.
    """
    bgr = np.ascontiguousarray(planes[::-1].transpose(1, 2, 0)).astype(np.float32)
    return _stretched_jpeg(bgr)


def _stretched_jpeg(small: NDArray[np.float32]) -> bytes:
    low = float(np.median(small))
    high = float(np.percentile(small, 99.9))
    span = max(high - low, 1.0)
    stretched = np.clip((small - low) / span, 0.0, 1.0)
    image = np.rint(np.sqrt(stretched) * 255.0).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise LocalStackError("The stack's thumbnail could not be encoded as JPEG.")
    return bytes(encoded.tobytes())
