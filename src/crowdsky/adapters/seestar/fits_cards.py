"""A fast reader for the plain cards of a FITS header, with astropy left for anything else.

A Seestar sub's header is 40-70 fixed-format cards (``KEYWORD = value / comment``) of strings,
logicals, integers and reals. Reading them with :class:`astropy.io.fits.Header` costs about a
millisecond per header (configuration look-ups and a regular expression per card), which is
most of a header read on a local network. :func:`plain_cards` reads those cards directly from
the header bytes and gives up (``None``) on the first card it is not sure of -- a complex
value, a ``CONTINUE``d long string, a ``HIERARCH`` keyword, lower-case exponents, a card
without a value indicator -- so that the caller reads that header with astropy instead. Where
it answers, it answers as astropy would (``tests/fuzz/test_fits_headers.py`` compares them).
"""

from __future__ import annotations

import re
from typing import Any, cast

__all__ = ["plain_cards"]

_CARD = 80
_END = "END" + " " * 5
_COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})
#: Keywords astropy gives a meaning of their own (long strings, long keywords).
_SPECIAL = frozenset({"CONTINUE", "HIERARCH"})
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
#: A value field: a quoted string (quotes doubled inside), or a bare token; then an optional
#: comment. Anything else is left to astropy.
_STRING = re.compile(r" *'((?:[ -&(-~]|'')*)' *(?:/.*)?")
_BARE = re.compile(r" *([^ /]*) *(?:/.*)?")
_INT = re.compile(r"[+-]?[0-9]+")
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[ED][+-]?[0-9]+)?")


def plain_cards(text: str) -> dict[str, Any] | None:
    """Keyword to value of every valued card before ``END``, or ``None`` to leave it to astropy.

    Each distinct card's reading is remembered (up to :data:`_CARDS_KEPT` cards per process):
    the subs of a night repeat most of their cards word for word, so most cards of a header are
    one dictionary look-up.

    Parameters
    ----------
    text : str
        The header as ASCII text, a whole number of 80-character cards.

    Returns
    -------
    dict or None
        Strings right-stripped (quotes undoubled), ``True``/``False``, ``int``, ``float``
        (possibly infinite: the caller decides), ``None`` for an undefined value; commentary
        cards left out; a repeated keyword keeps its last value. ``None`` when some card is not
        of these plain forms.
    """
    cards: dict[str, Any] = {}
    known = _KNOWN_CARDS
    for offset in range(0, len(text) - len(text) % _CARD, _CARD):
        card = text[offset : offset + _CARD]
        reading = known.get(card)
        if reading is None:
            reading = _reading(card)
            if len(known) < _CARDS_KEPT:
                known[card] = reading
        if reading is _SKIP:
            continue
        if reading is _AT_END:
            return cards
        if reading is _UNSURE:
            return None
        keyword, value = cast("tuple[str, Any]", reading)
        cards[keyword] = value
    return None  # no END card: astropy says what is wrong


_UNSURE = object()
#: A commentary card, left out.
_SKIP = object()
#: The ``END`` card.
_AT_END = object()
#: Distinct cards whose readings are remembered, at most (a few MB).
_CARDS_KEPT = 20_000
#: Card text to its reading: ``(keyword, value)``, or one of the marks above.
_KNOWN_CARDS: dict[str, tuple[str, Any] | object] = {}


def _reading(card: str) -> tuple[str, Any] | object:
    """What one card says: ``(keyword, value)``, or ``_SKIP``, ``_AT_END`` or ``_UNSURE``."""
    keyword = card[:8].rstrip()
    if card[:8] == _END:
        return _AT_END
    if keyword in _COMMENTARY:
        return _SKIP
    if card[8:10] != "= " or keyword in _SPECIAL or not _KEYWORD.fullmatch(keyword):
        return _UNSURE
    value = _value(card[10:])
    return _UNSURE if value is _UNSURE else (keyword, value)


def _value(field: str) -> Any:
    """The value of a card's value field (after ``= ``), or ``_UNSURE``."""
    if field.lstrip().startswith("'"):
        quoted = _STRING.fullmatch(field)
        if quoted is None:
            return _UNSURE
        text = quoted[1].replace("''", "'").rstrip()
        return _UNSURE if text.endswith("&") else text  # perhaps a CONTINUEd long string
    bare = _BARE.fullmatch(field)
    if bare is None:
        return _UNSURE
    token = bare[1]
    if token == "":
        return None
    if token in ("T", "F"):
        return token == "T"
    if _INT.fullmatch(token):
        return int(token)
    if _REAL.fullmatch(token):
        return float(token.replace("D", "E"))
    return _UNSURE
