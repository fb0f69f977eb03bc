"""The files a Seestar stores, as bytes: FITS images from header cards, and JPEG placeholders.

The device model keeps a FITS file as its header cards plus a geometry (:class:`FitsImage`), and
turns it into a real file only when one is needed (on disk, or on download). The sizes computed
here are the sizes of exactly those files, so a listing and a download agree.

Geometry follows the S50 (protocol reference §6): subs are 2-D portrait frames (``NAXIS1=1080``,
``NAXIS2=1920``) of uint16 stored as int16 with ``BZERO=32768``; stacks add a third axis of 3
colour planes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from crowdsky.errors import StorageError

__all__ = [
    "JPEG_PLACEHOLDER",
    "S50_SHAPE",
    "SMALL_SHAPE",
    "FitsImage",
    "header_of",
    "read_fits_header",
    "write_fits",
]

#: Rows x columns of an S50 frame (portrait: ``NAXIS1=1080``, ``NAXIS2=1920``).
S50_SHAPE = (1920, 1080)
#: A few pixels with the S50's aspect, for trees on disk that must stay small.
SMALL_SHAPE = (32, 18)

_BLOCK = 2880
_CARD = 80
_PIXEL_LEVEL = 1200  # a dark-sky background level; the pixels carry no science here

#: Comments the device writes beside its cards (protocol reference §6.1), kept short so that no
#: card needs truncating.
_COMMENTS = {
    "CREATOR": "Capture software",
    "PRODUCER": "Powered by ZWO",
    "FOCALLEN": "Focal length of telescope in mm",
    "IMAGETYP": "Type of image",
    "STACKCNT": "Stack frames",
    "EXPOSURE": "Exposure time in seconds",
    "EXPTIME": "Exposure time in seconds",
    "TOTALEXP": "Total Exposure Time in seconds",
    "RA": "Object Right Ascension in degrees",
    "DEC": "Object Declination in degrees",
    "SITELONG": "longitude of the imaging site in degrees",
    "SITELAT": "latitude of the imaging site in degrees",
    "DATE-OBS": "Image created time",
    "FILTER": "Filter used when taking image",
    "INSTRUME": "Camera model",
    "BAYERPAT": "Bayer pattern",
    "GAIN": "Gain Value",
    "TELESCOP": "Telescope name",
    "OBJECT": "name or catalog number of object being imaged",
}


@attrs.frozen
class FitsImage:
    """A FITS file as the device model keeps it: its own header cards and its geometry.

    Parameters
    ----------
    cards : Mapping[str, Any]
        Header cards other than the structural ones (``SIMPLE``, ``BITPIX``, ``NAXIS*``,
        ``EXTEND``, ``BZERO``, ``BSCALE``), in file order.
    planes : int
        1 for a 2-D Bayer sub-frame, 3 for an RGB stack.
    """

    cards: Mapping[str, Any]
    planes: int = attrs.field(default=1, validator=attrs.validators.in_((1, 3)))

    def data_shape(self, shape: tuple[int, int]) -> tuple[int, ...]:
        """The numpy shape of the pixel array for frames of ``shape`` (rows, columns)."""
        return shape if self.planes == 1 else (self.planes, *shape)

    def structural(self, shape: tuple[int, int]) -> dict[str, Any]:
        """The structural cards a FITS reader reports for this image."""
        cards: dict[str, Any] = {"SIMPLE": True, "BITPIX": 16}
        axes = tuple(reversed(self.data_shape(shape)))
        cards["NAXIS"] = len(axes)
        cards.update({f"NAXIS{i}": n for i, n in enumerate(axes, start=1)})
        cards.update({"EXTEND": True, "BZERO": 32768, "BSCALE": 1})
        cards.update(self.cards)
        return cards

    def size(self, shape: tuple[int, int]) -> int:
        """Bytes of the file :func:`write_fits` makes: padded header plus padded data."""
        ncards = len(self.structural(shape)) + 1  # + END
        header = _padded(ncards * _CARD)
        data = _padded(2 * math.prod(self.data_shape(shape)))
        return header + data


def _padded(nbytes: int) -> int:
    return -(-nbytes // _BLOCK) * _BLOCK


def header_of(image: FitsImage, shape: tuple[int, int]) -> dict[str, Any]:
    """The header as :func:`read_fits_header` would read it back from the written file."""
    return {
        k: (v.rstrip() if isinstance(v, str) else v) for k, v in image.structural(shape).items()
    }


def write_fits(image: FitsImage, shape: tuple[int, int], out: BinaryIO) -> None:
    """Write ``image`` as a valid FITS file with uniform pixels of frames of ``shape``.

    The cards are formatted here rather than by astropy, which takes milliseconds per file: a
    night of thousands of subs on disk would take a minute to lay down.
    """
    cards = b"".join(
        _card(key, value, _COMMENTS.get(key, "")) for key, value in image.structural(shape).items()
    )
    header = cards + b"END".ljust(_CARD)
    out.write(header.ljust(_padded(len(header)), b" "))
    # uint16 is stored as big-endian int16 offset by BZERO = 32768, as the Seestar does.
    data = struct.pack(">h", _PIXEL_LEVEL - 32768) * math.prod(image.data_shape(shape))
    out.write(data.ljust(_padded(len(data)), b"\0"))


def _card(key: str, value: Any, comment: str) -> bytes:
    """One fixed-format 80-byte header card (FITS standard 4.0, section 4.2)."""
    if isinstance(value, str):
        text = "'" + value.replace("'", "''").ljust(8) + "'"
    else:
        text = _number(value).rjust(20)
    card = f"{key:<8}= {text}"
    if comment:
        card += f" / {comment}"
    if len(card) > _CARD or not card.isascii():
        raise ValueError(f"Header card {key}={value!r} does not fit a FITS card.")
    return card.ljust(_CARD).encode("ascii")


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"FITS cannot hold {number!r}.")
    text = repr(number).upper()
    mantissa, _, exponent = text.partition("E")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{exponent}" if exponent else mantissa


def read_fits_header(path: Path) -> dict[str, Any]:
    """The primary header of the FITS file at ``path`` as a dict (strings right-stripped).

    Raises
    ------
    StorageError
        When the file is missing or is not FITS.
    """
    # Imported here: astropy.io.fits takes 0.25 s to import, and listing or planning reads none.
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            header = hdul[0].header
            return {
                key: (value.rstrip() if isinstance(value, str) else value)
                for key, value in header.items()
                if key not in ("COMMENT", "HISTORY", "")
            }
    except FileNotFoundError as exc:
        raise StorageError(f"No such file on the Seestar: {path.name}") from exc
    except (OSError, ValueError, IndexError) as exc:
        raise StorageError(f"{path.name} is not a readable FITS file: {exc}") from exc


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _grey_jpeg() -> bytes:
    """A baseline JPEG of one 8x8 mid-grey block, the smallest image any decoder accepts.

    Both Huffman tables hold a single one-bit code (DC difference 0, AC end-of-block), so the
    whole scan is the two bits ``00`` padded with ones: ``0x3F``.
    """
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + b"\x01" * 64),
            _segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00"),
            _segment(0xC4, b"\x00" + one_code),
            _segment(0xC4, b"\x10" + one_code),
            _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x3f\xff\xd9",
        )
    )


#: The bytes of every ``.jpg`` / ``_thn.jpg`` companion the model writes.
JPEG_PLACEHOLDER = _grey_jpeg()
