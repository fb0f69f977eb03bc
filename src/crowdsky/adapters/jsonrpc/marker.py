"""The verify marker of firmware 5.82-7.17, in the form each method accepts (sans-I/O, pure).

Firmware after 5.82 and before 7.18 leaves every request unanswered unless its ``params`` carry a
``"verify"`` marker (protocol reference §1.3: 0 of 238 unmarked requests were answered on S50 6.70
and S30 7.06). Three forms exist, and which one a method accepts is the method's own business:

* ``["verify"]`` for a method sent without params;
* ``[<params...>, "verify"]`` for list params (``set_setting`` answered 109 "unexpected param" to
  ``"verify"`` inside its object, so its object goes into such a list);
* ``{..., "verify": true}`` for object params (``set_sequence_setting`` answered 107 "expected
  object param" to the list form; ``iscope_start_view`` and ``iscope_start_stack`` accepted
  the object form).

:data:`MARKER_FORMS` is the one table of these forms: :func:`mark` adds the marker for the client
and the simulator validates requests against the same table. A method not in the table gets the
form that follows from the shape of its params. Outside the window (:func:`mark` with a firmware
that needs no marker) params pass through unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from crowdsky.adapters.jsonrpc.messages import ABSENT
from crowdsky.domain.firmware import Firmware

__all__ = ["MARKER", "MARKER_FORMS", "MarkerForm", "carries_marker", "form_of", "mark", "unmark"]

#: The marker itself.
MARKER: Final = "verify"


class MarkerForm(enum.Enum):
    """Where a method takes the marker."""

    #: ``["verify"]``: the method takes no params.
    ALONE = "alone"
    #: ``[<params...>, "verify"]``: appended to list params (an object is wrapped in the list).
    LIST = "list"
    #: ``{..., "verify": true}``: a key of the object params.
    OBJECT = "object"


_FORMS: dict[str, MarkerForm] = {
    # Observed on S50 6.70 / S30 7.06 (reference §1.3).
    "scope_get_equ_coord": MarkerForm.ALONE,
    "set_setting": MarkerForm.LIST,  # object form: 109 "unexpected param"
    "set_sequence_setting": MarkerForm.OBJECT,  # list form: 107 "expected object param"
    "iscope_start_view": MarkerForm.OBJECT,
    "iscope_start_stack": MarkerForm.OBJECT,
    "play_sound": MarkerForm.OBJECT,
    # What crowdsky sends; the form follows the shape of the params the app sends (§3, §4.1).
    "test_connection": MarkerForm.ALONE,
    "get_device_state": MarkerForm.ALONE,
    "get_albums": MarkerForm.ALONE,
    "get_img_file_page_number": MarkerForm.OBJECT,
    "get_img_file_page_name": MarkerForm.OBJECT,
    "pi_get_time": MarkerForm.ALONE,
    "pi_set_time": MarkerForm.LIST,  # the app sends [{...}]
    "clear_batch_stack": MarkerForm.ALONE,
    "clear_app_state": MarkerForm.OBJECT,
    "set_batch_stack_setting": MarkerForm.OBJECT,
    "get_batch_stack_setting": MarkerForm.ALONE,
    "start_batch_stack": MarkerForm.ALONE,
    "stop_batch_stack": MarkerForm.ALONE,
    "iscope_get_app_state": MarkerForm.ALONE,
    "get_disk_volume": MarkerForm.ALONE,
}

#: Method -> the marker form it accepts: the one table the client and the simulator share.
MARKER_FORMS: Final[Mapping[str, MarkerForm]] = MappingProxyType(_FORMS)

#: Methods that never carry the marker: the handshake of firmware 7.18+ (the window has none).
_NEVER: Final = frozenset({"verify_client"})


def _shape_form(params: object) -> MarkerForm:
    if params is ABSENT or params is None:
        return MarkerForm.ALONE
    if isinstance(params, dict):
        return MarkerForm.OBJECT
    return MarkerForm.LIST


def form_of(method: str, params: object = ABSENT) -> MarkerForm:
    """The marker form ``method`` accepts: from the table, else from the shape of ``params``.

    Examples
    --------
    >>> form_of("set_setting", {"lang": "en"}), form_of("unknown_method", {"a": 1})
    (<MarkerForm.LIST: 'list'>, <MarkerForm.OBJECT: 'object'>)
    """
    form = MARKER_FORMS.get(method)
    if form is None or (form is MarkerForm.ALONE and params is not ABSENT and params is not None):
        return _shape_form(params)
    return form


def mark(method: str, params: object, firmware: Firmware | None) -> object:
    """``params`` with the verify marker in the form ``method`` accepts, when ``firmware`` needs it.

    Parameters
    ----------
    method : str
        The JSON-RPC method.
    params : object
        Its params, or :data:`~crowdsky.adapters.jsonrpc.messages.ABSENT` for none.
    firmware : Firmware or None
        The device's firmware; ``None`` (unknown) or one without ``marker`` leaves ``params``
        as they are.

    Returns
    -------
    object
        The params to send (a new value; ``params`` is never changed). A marker already present
        is not added twice.

    Examples
    --------
    >>> fw = Firmware(2670, "6.70", marker=True)
    >>> mark("get_albums", ABSENT, fw), mark("set_setting", {"lang": "en"}, fw)
    (['verify'], [{'lang': 'en'}, 'verify'])
    >>> mark("get_img_file_page_name", {"page": 0}, fw)
    {'page': 0, 'verify': True}
    >>> mark("get_albums", ABSENT, Firmware(2775))
    ABSENT
    """
    if firmware is None or not firmware.marker or method in _NEVER or carries_marker(params):
        return params
    form = form_of(method, params)
    if form is MarkerForm.OBJECT and isinstance(params, dict):
        return {**params, MARKER: True}
    if params is ABSENT or params is None:
        return [MARKER]
    if isinstance(params, list):
        return [*params, MARKER]
    return [params, MARKER]


def carries_marker(params: object) -> bool:
    """Whether ``params`` hold a verify marker in any of its forms (``"verify"`` alone too)."""
    if params == MARKER:
        return True
    if isinstance(params, list):
        return bool(params) and params[-1] == MARKER
    if isinstance(params, dict):
        return params.get(MARKER) is True
    return False


def unmark(params: Any) -> tuple[MarkerForm | None, Any]:
    """The form a marker was sent in, and the params without it (``ABSENT`` when none remain).

    ``(None, params)`` when ``params`` carry no marker.

    Examples
    --------
    >>> unmark(["verify"]), unmark([{"lang": "en"}, "verify"]), unmark({"page": 1, "verify": True})
    ((<MarkerForm.ALONE: 'alone'>, ABSENT), (<MarkerForm.LIST: 'list'>, [{'lang': 'en'}]), \
(<MarkerForm.OBJECT: 'object'>, {'page': 1}))
    """
    if not carries_marker(params):
        return None, params
    if params == MARKER or params == [MARKER]:
        return MarkerForm.ALONE, ABSENT
    if isinstance(params, list):
        return MarkerForm.LIST, params[:-1]
    return MarkerForm.OBJECT, {k: v for k, v in params.items() if k != MARKER}
