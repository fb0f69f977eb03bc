"""What is sent with a stack upload besides the file: metadata read from the FITS and its name.

The server keys a stack by the 15-minute UTC chunk of its ``DATE-OBS`` and the HEALPix pixel of
its ``RA``/``DEC`` (pixel 0 without them), whatever the file name says: the key looked for before
an upload is repeated is computed from the header the same way
(:func:`crowdsky.domain.uploads.server_key_of`), since a name's key differs from it for blocks of
other lengths and for headers without a pointing.

A stack's header of plain cards is read directly (the same cards as the Seestar reader's
:func:`~crowdsky.adapters.seestar.fits_cards.plain_cards`), anything unusual by astropy; both
give the same fields (``tests/fuzz/test_fits_headers.py``), the direct reader about a
millisecond sooner per upload.
"""

from __future__ import annotations

import cmath
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from crowdsky.adapters.seestar.fits_cards import plain_cards
from crowdsky.domain import block_bounds, parse_crowdsky_name
from crowdsky.domain.headers import parse_date_obs
from crowdsky.domain.uploads import StackFacts, block_of_chunk_key, stack_facts
from crowdsky.errors import ServerError, StorageError

__all__ = ["LocalFitsFiles", "StackMeta", "companion_thumbnail", "image_type", "stack_meta"]


@attrs.frozen
class StackMeta:
    """The optional form fields of a stack upload, read from the file and its name."""

    n_frames_input: int | None = None
    n_frames_aligned: int | None = None
    date_obs_start: str | None = None
    date_obs_end: str | None = None
    server_key: str | None = None
    object_name: str | None = None
    facts: StackFacts | None = None


def _int_card(header: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(header[key])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


#: Headers longer than this (a Seestar stack's is one or two blocks) are left to astropy.
_MAX_PLAIN_BLOCKS = 36
_BLOCK = 2880
_END_CARD = b"END     "
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})


def _plain_header(handle: BinaryIO) -> dict[str, Any] | None:
    """The primary header's cards read directly, or ``None`` to leave the header to astropy.

    Only a header of plain cards (:func:`~crowdsky.adapters.seestar.fits_cards.plain_cards`)
    that starts as a standard primary header does (``SIMPLE = T``, a valid ``BITPIX``,
    ``NAXIS`` and each ``NAXISn`` in order) and ends within :data:`_MAX_PLAIN_BLOCKS` blocks is
    read here: astropy reads such a header to the same values, about a millisecond slower.
    """
    data = bytearray()
    for _ in range(_MAX_PLAIN_BLOCKS):
        block = handle.read(_BLOCK)
        if len(block) < _BLOCK:
            return None
        data += block
        if any(block[at : at + 8] == _END_CARD for at in range(0, _BLOCK, 80)):
            break
    else:
        return None
    try:
        cards = plain_cards(data.decode("ascii"))
    except UnicodeDecodeError:
        return None
    return cards if cards is not None and _standard_primary(cards) else None


def _standard_primary(cards: dict[str, Any]) -> bool:
    naxis = cards.get("NAXIS")
    if cards.get("SIMPLE") is not True or type(naxis) is not int or not 0 <= naxis <= 999:
        return False
    axes = [f"NAXIS{n}" for n in range(1, naxis + 1)]
    if list(cards)[: 3 + naxis] != ["SIMPLE", "BITPIX", "NAXIS", *axes]:
        return False
    sizes = [cards[axis] for axis in axes]
    return cards["BITPIX"] in _BITPIX and all(type(n) is int and n >= 0 for n in sizes)


#: The NAXIS card: its value, if it is an integer, decides whether astropy may read the header.
_NAXIS_CARD = re.compile(rb"NAXIS   = *([+-]?[0-9]+) *(?:/.*)?")


def _check_naxis(handle: BinaryIO) -> None:
    """Refuse a header whose ``NAXIS`` is an integer outside 0-999, before astropy sees it.

    The FITS standard allows at most 999 axes; astropy takes ``NAXIS = 10**30`` and loops for
    minutes over the axes it would have. Any other oddity is astropy's to refuse.
    """
    for _ in range(_MAX_PLAIN_BLOCKS):
        block = handle.read(_BLOCK)
        for at in range(0, len(block) - 79, 80):
            match = _NAXIS_CARD.fullmatch(block[at : at + 80].rstrip())
            if match is not None and not 0 <= int(match[1]) <= 999:
                raise ValueError(f"NAXIS is {int(match[1])}, not 0-999")
            if block[at : at + 8] == _END_CARD:
                return
        if len(block) < _BLOCK:
            return


def _astropy_header(handle: BinaryIO) -> dict[str, Any]:
    _check_naxis(handle)
    handle.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        header = fits.getheader(handle, 0)
        # An undefined value (``KEY =`` and nothing) is absent, as the direct reader says.
        return {
            card.keyword: None if isinstance(card.value, fits.card.Undefined) else card.value
            for card in header.cards
        }


def _read_cards(path: Path, *, direct: bool = True) -> dict[str, Any]:
    """The primary header's cards as plain values; a project error for any unreadable card.

    Plain headers are read directly (``direct``), anything else by astropy.
    """
    try:
        # Our own handle: astropy leaves its own open when it fails half-way through.
        with path.open("rb") as handle:
            cards = _plain_header(handle) if direct else None
            if cards is None:
                handle.seek(0)
                cards = _astropy_header(handle)
    # astropy fails lazily and in many ways on odd headers (KeyError for a missing NAXISn,
    # VerifyError for an unparsable card, AttributeError for a second SIMPLE card).
    except (
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        fits.VerifyError,
    ) as exc:
        raise ServerError(f"{path.name} is not a readable FITS file: {exc}") from exc
    for keyword, value in cards.items():
        if isinstance(value, (float, complex)) and not cmath.isfinite(value):
            raise ServerError(f"{path.name} has an unreadable FITS header: {keyword} is {value}")
    return cards


def stack_meta(path: Path) -> StackMeta:
    """Frame counts, the observation span, the server's chunk key and the object of a stack.

    Frames: ``n_frames_aligned`` is ``STACKCNT`` (what the stacker kept), ``n_frames_input`` the
    count in the CrowdSky name; each stands in for the other when missing. Span: the start is
    ``DATE-OBS``; the end is the end of the UTC block the name's chunk key (else ``DATE-OBS``)
    falls in. Every frame of a block stack lies inside its block, whereas ``DATE-OBS + TOTALEXP``
    would end too early whenever the frames have gaps between them.
    """
    return _meta_from(path, _read_cards(path))


def _meta_from(path: Path, header: Mapping[str, Any]) -> StackMeta:
    name = parse_crowdsky_name(path.name)
    stackcnt = _int_card(header, "STACKCNT")
    named = name.frames if name is not None else None
    date_obs = parse_date_obs(header.get("DATE-OBS"))
    facts = stack_facts(header, name)
    block = block_of_chunk_key(name.chunk_key) if name is not None and name.chunk_key else None
    if block is None and date_obs is not None:
        block = block_bounds(date_obs)
    return StackMeta(
        n_frames_input=named if named is not None else stackcnt,
        n_frames_aligned=stackcnt if stackcnt is not None else named,
        date_obs_start=date_obs.isoformat() if date_obs is not None else None,
        date_obs_end=block[1].isoformat() if block is not None else None,
        server_key=facts.server_key,
        object_name=facts.object_name,
        facts=facts,
    )


def companion_thumbnail(path: Path) -> Path | None:
    """The ``_thn.jpg`` beside a stack, else its ``.jpg``, else ``None``."""
    stem = path.with_suffix("")
    for candidate in (Path(f"{stem}_thn.jpg"), Path(f"{stem}.jpg")):
        if candidate.is_file():
            return candidate
    return None


def image_type(path: Path) -> str:
    """The MIME type of a thumbnail."""
    return "image/png" if path.suffix.lower() == ".png" else "image/jpeg"


class LocalFitsFiles:
    """Headers of FITS files on this computer (:class:`crowdsky.app.ports.LocalFits`)."""

    def read_header(self, path: Path) -> dict[str, Any]:
        """The primary header of ``path`` as keyword -> value (commentary cards left out).

        Raises
        ------
        StorageError
            When the file cannot be read or is not FITS.
        """
        try:
            with Path(path).open("rb") as handle:
                _check_naxis(handle)
            header = fits.getheader(path, 0)
        except (OSError, ValueError, TypeError) as exc:
            raise StorageError(f"{Path(path).name} is not a readable FITS file: {exc}") from exc
        skip = {"COMMENT", "HISTORY", ""}
        return {key: value for key, value in header.items() if key not in skip}
