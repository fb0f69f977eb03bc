r"""The Seestar's JSON-RPC wire format, without any I/O (in the style of h11).

Theory of operation
-------------------
Both directions of TCP port 4700 carry one JSON object per frame, each followed by ``\r\n``
(protocol reference §1.2). The device coalesces several frames into one TCP segment and splits
large frames (``get_device_state`` is 4-5 KB) over several reads, so bytes are buffered until a
line ends. Nothing here touches a socket: bytes go in with ``receive_data`` and values come out
with ``next_message``, so the same code serves the client connection, the simulator and the
property tests.

What comes out of a client-side :class:`Decoder`:

* :class:`Reply` — has an ``id``; errors carry ``error`` + ``code`` and **no** ``result`` (§1.4);
* :class:`Event` — has ``Event`` and no ``id`` (§1.5); may arrive anywhere, even between a request
  and its reply;
* :class:`Problem` — a line that is not valid JSON (``NaN``, a number no float can hold), not an
  object, neither of the above, nested deeper than :data:`MAX_DEPTH`, or longer than the frame
  limit. It is reported and skipped; the next line decodes normally, so a bad
  frame never desynchronises the stream.

The server-side half (:class:`RequestDecoder`, :func:`encode_reply`, :func:`encode_error`,
:func:`encode_event`) writes frames in the exact shape and key order the device uses, for the
simulator and for loopback test servers.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, Final

from crowdsky.adapters.jsonrpc.messages import ABSENT, Event, Problem, Reply, Request

__all__ = [
    "ABSENT",
    "DEFAULT_MAX_FRAME",
    "MAX_DEPTH",
    "Decoder",
    "Event",
    "Problem",
    "Reply",
    "Request",
    "RequestDecoder",
    "encode_call",
    "encode_error",
    "encode_event",
    "encode_reply",
    "format_timestamp",
    "parse_device_frame",
]

#: Largest frame accepted, in bytes without the line end. Real frames are a few KB; annotation
#: results are the largest seen. A bigger frame is reported as a Problem and skipped.
DEFAULT_MAX_FRAME: Final = 1 << 20

#: Deepest nesting of arrays and objects accepted in a frame. Real frames nest five or six
#: levels; a deeper one is reported as a Problem, so that nothing downstream recurses on it.
MAX_DEPTH: Final = 64

_EXCERPT = 80
_TERMINATOR = b"\r\n"


def _dumps(obj: object, *, compact: bool) -> bytes:
    # ensure_ascii: the device itself escapes non-ASCII ("\u03b5 Cnc"), so escapes are what its
    # parser certainly reads; it also keeps lone surrogates encodable.
    separators = (",", ":") if compact else (", ", ": ")
    # allow_nan=False: NaN and Infinity are not JSON; better a ValueError here than a frame the
    # device cannot parse (it would simply never answer).
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=separators)
    return text.encode("ascii") + _TERMINATOR


def encode_call(id: int, method: str, params: object = ABSENT) -> bytes:
    r"""One request frame: ``{"id": ..., "method": ..., "params": ...}`` plus ``\r\n``.

    Parameters
    ----------
    id : int
        A fresh id; the device echoes it in the reply.
    method : str
        The method name.
    params : object, optional
        Any JSON value; the key is omitted when not given (``None`` sends ``null``).

    Returns
    -------
    bytes

    Raises
    ------
    ValueError, TypeError
        When ``params`` holds NaN/Infinity or a value JSON cannot represent (a caller's bug).

    Examples
    --------
    >>> encode_call(7, "get_albums")
    b'{"id": 7, "method": "get_albums"}\r\n'
    """
    frame: dict[str, object] = {"id": id, "method": method}
    if params is not ABSENT:
        frame["params"] = params
    return _dumps(frame, compact=False)


def format_timestamp(seconds: float) -> str:
    """The device's ``Timestamp`` text: seconds since boot, 9 decimals (``"5137.266360740"``)."""
    return f"{seconds:.9f}"


def _ts(timestamp: float | str) -> str:
    return timestamp if isinstance(timestamp, str) else format_timestamp(timestamp)


def encode_reply(id: object, method: str, result: object, *, timestamp: float | str) -> bytes:
    """A success reply in the device's key order (``jsonrpc, Timestamp, method, result, code, id``).

    Parameters
    ----------
    id : object
        The request's id, echoed verbatim.
    method : str
        The request's method.
    result : object
        Any JSON value.
    timestamp : float or str
        Seconds since boot, or an already formatted ``Timestamp``.

    Returns
    -------
    bytes
    """
    frame = {
        "jsonrpc": "2.0",
        "Timestamp": _ts(timestamp),
        "method": method,
        "result": result,
        "code": 0,
        "id": id,
    }
    return _dumps(frame, compact=True)


def encode_error(
    id: object, method: str, code: int, error: str, *, timestamp: float | str
) -> bytes:
    """An error reply: ``error`` + ``code`` and no ``result`` key, as the device sends it.

    Parameters
    ----------
    id : object
        The request's id, echoed verbatim.
    method : str
        The request's method.
    code : int
        Non-zero error code (103 "method not found", 259 "stack is already running", ...).
    error : str
        The error text.
    timestamp : float or str
        Seconds since boot, or an already formatted ``Timestamp``.

    Returns
    -------
    bytes
    """
    frame = {
        "jsonrpc": "2.0",
        "Timestamp": _ts(timestamp),
        "method": method,
        "error": error,
        "code": code,
        "id": id,
    }
    return _dumps(frame, compact=True)


def encode_event(name: str, fields: Mapping[str, object], *, timestamp: float | str) -> bytes:
    """An event frame: ``{"Event": name, "Timestamp": ..., **fields}`` (no ``id``, no ``jsonrpc``).

    Parameters
    ----------
    name : str
        ``PiStatus``, ``BatchStack``, ...
    fields : Mapping
        The event's other fields, in order; ``Event``/``Timestamp`` keys in it are ignored.
    timestamp : float or str
        Seconds since boot, or an already formatted ``Timestamp``.

    Returns
    -------
    bytes
    """
    frame: dict[str, object] = {"Event": name, "Timestamp": _ts(timestamp)}
    frame.update((k, v) for k, v in fields.items() if k not in ("Event", "Timestamp"))
    return _dumps(frame, compact=True)


def _excerpt(line: bytes) -> str:
    return line[:_EXCERPT].decode("utf-8", errors="replace")


class _LineSplitter:
    """Cuts a byte stream into lines, bounding memory for lines that never end."""

    def __init__(self, max_frame: int) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self._max = max_frame
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no b"\n"
        self._discarding = False  # inside an oversized line, dropping bytes until its end

    def feed(self, data: bytes) -> Iterator[bytes | Problem]:
        self._buf += data
        start = 0
        while (end := self._buf.find(b"\n", max(start, self._scanned))) >= 0:
            line = bytes(self._buf[start:end])
            start = end + 1
            if self._discarding:
                self._discarding = False
                continue
            # Split on LF and drop a trailing CR: the device always sends CRLF, and a raw LF
            # cannot occur inside a JSON text, so this is exact for CRLF and forgiving for LF.
            line = line.removesuffix(b"\r")
            if len(line) > self._max:
                yield Problem(f"oversized frame ({len(line)} bytes)", _excerpt(line))
            elif line.strip():
                yield line
        del self._buf[:start]
        self._scanned = len(self._buf)
        if self._discarding:
            self._buf.clear()
            self._scanned = 0
        elif len(self._buf) > self._max + 1:  # +1: a CR may still precede the LF
            yield Problem(f"oversized frame (over {self._max} bytes)", _excerpt(bytes(self._buf)))
            self._buf.clear()
            self._scanned = 0
            self._discarding = True


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: JSON allows it, but no frame can carry it back
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _depth(obj: object) -> int:
    """How deeply containers nest in ``obj``, without recursion."""
    deepest, todo = 0, [(obj, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            todo.extend((child, depth + 1) for child in item)
    return deepest


def _load_object(line: bytes) -> dict[str, Any] | Problem:
    try:
        obj = json.loads(line, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return Problem(f"malformed JSON: {type(exc).__name__}", _excerpt(line))
    if not isinstance(obj, dict):
        return Problem(f"not a JSON object ({type(obj).__name__})", _excerpt(line))
    if _depth(obj) > MAX_DEPTH:
        # Parsed, but anything that walks it again (encoding the echo, repr) would recurse.
        return Problem(f"nested deeper than {MAX_DEPTH} levels", _excerpt(line))
    return obj


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _code(frame: Mapping[str, Any]) -> int:
    code = frame.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    # No usable code: success unless the frame carries an error text.
    return -1 if "error" in frame else 0


def parse_device_frame(frame: Mapping[str, Any]) -> Reply | Event | None:
    """Classify a decoded frame from the device; ``None`` when it is neither reply nor event."""
    timestamp = _optional_str(frame.get("Timestamp"))
    name = frame.get("Event")
    if isinstance(name, str) and "id" not in frame:
        fields = {k: v for k, v in frame.items() if k not in ("Event", "Timestamp")}
        return Event(name, fields, timestamp)
    if "id" in frame:
        return Reply(
            id=frame["id"],
            method=frame["method"] if isinstance(frame.get("method"), str) else "",
            code=_code(frame),
            result=frame.get("result"),
            error=_optional_str(frame.get("error")),
            raw=frame,
            timestamp=timestamp,
        )
    return None


class _BaseDecoder:
    def __init__(self, max_frame: int) -> None:
        self._lines = _LineSplitter(max_frame)
        self._ready: deque[Any] = deque()

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the socket (any split, any number of frames).

        Parameters
        ----------
        data : bytes
            The bytes, possibly empty.
        """
        for item in self._lines.feed(data):
            self._ready.append(item if isinstance(item, Problem) else self._parse(item))

    def _parse(self, line: bytes) -> Any:
        raise NotImplementedError


class Decoder(_BaseDecoder):
    r"""Client side: turns the device's byte stream into replies, events and problems.

    Parameters
    ----------
    max_frame : int, optional
        Largest frame accepted, in bytes (default 1 MiB).

    Examples
    --------
    >>> d = Decoder()
    >>> d.receive_data(b'{"Event":"PiStatus","Timestamp":"1.0","temp":44.5}\r\n{"id":1,')
    >>> d.next_message()
    Event(name='PiStatus', fields=mappingproxy({'temp': 44.5}), timestamp='1.0')
    >>> d.next_message() is None
    True
    >>> d.receive_data(b'"method":"x","result":0,"code":0}\r\n')
    >>> d.next_message().ok
    True
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        super().__init__(max_frame)

    def _parse(self, line: bytes) -> Reply | Event | Problem:
        frame = _load_object(line)
        if isinstance(frame, Problem):
            return frame
        message = parse_device_frame(frame)
        if message is None:
            return Problem("neither a reply (id) nor an event (Event)", _excerpt(line))
        return message

    def next_message(self) -> Reply | Event | Problem | None:
        """The next complete message, or ``None`` until more bytes arrive."""
        return self._ready.popleft() if self._ready else None

    def __iter__(self) -> Iterator[Reply | Event | Problem]:
        """Drain every complete message received so far."""
        while (message := self.next_message()) is not None:
            yield message


class RequestDecoder(_BaseDecoder):
    """Device side: turns a client's byte stream into requests and problems.

    Parameters
    ----------
    max_frame : int, optional
        Largest frame accepted, in bytes (default 1 MiB).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        super().__init__(max_frame)

    def _parse(self, line: bytes) -> Request | Problem:
        frame = _load_object(line)
        if isinstance(frame, Problem):
            return frame
        method = frame.get("method")
        if not isinstance(method, str):
            return Problem("request without a method name", _excerpt(line))
        return Request(
            id=frame.get("id"),
            method=method,
            params=frame.get("params"),
            has_params="params" in frame,
            raw=frame,
        )

    def next_message(self) -> Request | Problem | None:
        """The next complete request, or ``None`` until more bytes arrive."""
        return self._ready.popleft() if self._ready else None

    def __iter__(self) -> Iterator[Request | Problem]:
        """Drain every complete request received so far."""
        while (message := self.next_message()) is not None:
            yield message
