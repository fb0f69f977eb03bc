"""Reading the Seestar's JSON-RPC results into the port's value types, without any I/O.

The firmware's reply shapes are known from a handful of captures and client sources (protocol
reference §3-§4), and some are not published at all (``pi_get_time``). Every function here
therefore takes *any* JSON value and returns the best reading it can: entries of the wrong type
are skipped and a missing field gets the port's default. A malformed reply must cost a listing
entry, never a ``TypeError`` escaping the adapter. A number that no device could mean (a size
of 1e308 KiB, 10**400 pages or frames, a percentage beyond any float) is a
:class:`~crowdsky.errors.SeestarError`, the only exception these functions raise: believed, it
would end up in a loop or a file name; skipped, it would hide the fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crowdsky.app.ports import BatchStackState, BatchStackStatus, DeviceTime, FileEntry, FolderEntry
from crowdsky.domain.device_paths import as_folder_path
from crowdsky.errors import SeestarError

__all__ = [
    "PAGE_SIZE",
    "page_length",
    "parse_albums",
    "parse_app_state",
    "parse_batch_stack",
    "parse_device_time",
    "parse_page",
    "parse_page_count",
]

#: Entries per ``get_img_file_page_name`` page (reference §3.3).
PAGE_SIZE = 20

# Beyond these no Seestar reply means what it says (its storage holds some 10 000 files).
_MAX_PAGES = 100_000
_MAX_COUNT = 10_000_000
_MAX_SIZE_K = float(2**32)  # 4 TiB
_MAX_SECONDS = 1e9
_MAX_PERCENT = 1e6


def as_int(value: Any, default: int | None = None) -> int | None:
    """``value`` as an int when it is one in disguise (``3``, ``3.0``, ``"3"``), else ``default``.

    Examples
    --------
    >>> [as_int(v) for v in (3, 3.0, " 3 ", True, 2.5, "x", None)]
    [3, 3, 3, None, None, None, None]
    """
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def _to_float(value: Any) -> float | None:
    """A number as a float (``inf`` when too big for one); ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        return None
    except OverflowError:  # an int beyond 1e308
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _as_float(value: Any, default: float | None = None) -> float | None:
    number = _to_float(value)
    return number if number is not None and math.isfinite(number) else default


def _shown(value: Any) -> str:
    if isinstance(value, int) and abs(value) > 10**30:
        return f"a {value.bit_length()}-bit integer"
    return repr(value)[:40]


def _measure(value: Any, field: str, limit: float, default: float | None) -> float | None:
    """A reported quantity: ``default`` when not a number, an error when no device could mean it.

    Raises
    ------
    SeestarError
        When the number is not finite or beyond ``limit`` in size: believing it would put
        nonsense into a listing, a loop or a file name, and skipping it would hide the fault.
    """
    number = _to_float(value)
    if number is None:
        return default
    if not (math.isfinite(number) and abs(number) <= limit):
        raise SeestarError(f"The Seestar sent an impossible {field}: {_shown(value)}")
    return number


def _count(value: Any, field: str) -> int:
    number = _measure(value, field, _MAX_COUNT, None)
    count = as_int(value, 0) if number is not None else 0
    return max(0, count or 0)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value and "\x00" not in value else None


def parse_albums(result: Any) -> list[FolderEntry]:
    """Folders from a ``get_albums`` result: every ``list[*].files[*]``, all groups flattened.

    The first entry wins when a name appears twice; entries without a usable name are skipped.

    Examples
    --------
    >>> parse_albums({"path": "MyWorks", "list": [
    ...     {"group_name": "DeepSky", "files": [{"name": "M 81", "count": 1}, "junk"]},
    ...     {"group_name": "SolarSystem", "files": [{"name": "Lunar", "count": "2"}]}]})
    [FolderEntry(name='M 81', count=1), FolderEntry(name='Lunar', count=2)]
    """
    groups = result.get("list") if isinstance(result, Mapping) else None
    if not isinstance(groups, list):
        return []
    seen: dict[str, FolderEntry] = {}
    for group in groups:
        files = group.get("files") if isinstance(group, Mapping) else None
        for entry in files if isinstance(files, list) else ():
            if not isinstance(entry, Mapping):
                continue
            name = _name(entry.get("name"))
            if name is None or "/" in name or name in seen:
                continue
            seen[name] = FolderEntry(name, max(0, as_int(entry.get("count"), 0) or 0))
    return list(seen.values())


def parse_page_count(result: Any) -> int | None:
    """The page count from ``get_img_file_page_number``; ``None`` when it is not a number.

    Examples
    --------
    >>> [parse_page_count(v) for v in (3, "3", 0, -1, None, {"page": 2})]
    [3, 3, 0, 0, None, 2]
    """
    if isinstance(result, Mapping):
        # Not seen on a device; read the obvious wrappers rather than give up on the listing.
        for key in ("page", "pages", "page_num", "count"):
            if key in result:
                return parse_page_count(result[key])
        return None
    count = as_int(result)
    if count is not None and count > _MAX_PAGES:  # believed, the listing would never end
        raise SeestarError(f"The Seestar sent an impossible page count: {_shown(result)}")
    return None if count is None else max(0, count)


def _page_items(result: Any) -> list[Any] | None:
    if isinstance(result, Mapping):
        result = result.get("list", result.get("files"))
    return result if isinstance(result, list) else None


def page_length(result: Any) -> int | None:
    """How many entries a ``get_img_file_page_name`` page holds; ``None`` when it holds no list.

    Every entry counts, folders and unreadable ones included: each takes a place on the page,
    and the count is what tells a full page from a short one.

    Examples
    --------
    >>> [page_length(v) for v in ([{"name": "a.fit"}, {"is_dir": True}, 7], [], {"list": [1]})]
    [3, 0, 1]
    >>> page_length("busy") is None
    True
    """
    items = _page_items(result)
    return None if items is None else len(items)


def parse_page(result: Any) -> list[FileEntry]:
    """Files from one ``get_img_file_page_name`` page (folders skipped, ``size_k`` to bytes).

    Examples
    --------
    >>> parse_page([{"name": "a.fit", "size_k": 4050, "is_dir": False},
    ...             {"name": "sub", "is_dir": True}, {"size_k": 1}])
    [FileEntry(name='a.fit', size=4147200)]
    """
    items = _page_items(result)
    entries = []
    for item in items if items is not None else ():
        if not isinstance(item, Mapping) or item.get("is_dir") is True:
            continue
        name = _name(item.get("name"))
        if name is None or "/" in name:
            continue
        size_k = _measure(item.get("size_k"), f"size_k for {name!r}", _MAX_SIZE_K, 0.0) or 0.0
        entries.append(FileEntry(name, max(0, round(size_k * 1024))))
    return entries


def _fields_of(result: Any) -> Mapping[str, Any] | None:
    if isinstance(result, list) and len(result) == 1:
        result = result[0]  # pi_set_time sends [{...}]; a reply may mirror that
    if isinstance(result, Mapping):
        inner = result.get("time")
        return inner if isinstance(inner, Mapping) else result
    return None


def parse_device_time(result: Any) -> DeviceTime:
    """The device clock from a ``pi_get_time`` result, read as the fields ``pi_set_time`` sends.

    ``{"year", "mon", "day", "hour", "min", "sec", "time_zone"}``; the shape of the reply is not
    published, so a one-element list and a ``"time"`` wrapper are accepted, and each half
    (wall clock, zone) is kept only when it is complete and valid.

    Examples
    --------
    >>> parse_device_time({"year": 2026, "mon": 2, "day": 27, "hour": 21, "min": 15,
    ...                    "sec": 3, "time_zone": "Europe/Vienna"})
    DeviceTime(local=datetime.datetime(2026, 2, 27, 21, 15, 3), zone='Europe/Vienna')
    >>> parse_device_time("garbage")
    DeviceTime(local=None, zone=None)
    """
    fields = _fields_of(result)
    if fields is None:
        return DeviceTime()
    parts = [as_int(fields.get(key)) for key in ("year", "mon", "day", "hour", "min")]
    second = _as_float(fields.get("sec"))
    local = None
    if all(part is not None for part in parts) and second is not None:
        year, month, day, hour, minute = (int(p) for p in parts if p is not None)
        try:
            local = datetime(year, month, day, hour, minute, int(min(max(second, 0.0), 59.0)))
        except (ValueError, OverflowError):
            local = None
    zone = fields.get("time_zone", fields.get("timezone"))
    zone = zone.strip() if isinstance(zone, str) else None
    return DeviceTime(local=local, zone=zone or None)


def parse_app_state(result: Any) -> BatchStackStatus | None:
    """The ``BatchStack`` entry of an ``iscope_get_app_state`` result; ``None`` when absent."""
    if not isinstance(result, Mapping):
        return None
    return parse_batch_stack(result.get("BatchStack"))


def parse_app_states(result: Any) -> dict[str, str]:
    """Each entry of an ``iscope_get_app_state`` result → its ``state`` text.

    Entries without a text ``state`` are left out (stages nest, §4.2: only the top level is
    read).

    Examples
    --------
    >>> parse_app_states({"View": {"state": "working", "stage": "Stack"}, "Odd": 3})
    {'View': 'working'}
    """
    if not isinstance(result, Mapping):
        return {}
    return {
        str(name): entry["state"]
        for name, entry in result.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("state"), str)
    }


def _folder(path: Any) -> str | None:
    if not isinstance(path, str):
        return None
    path = path.strip().strip("/")
    return as_folder_path(path) if path else None


def _output(entry: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    output = entry.get("output_file")
    if not isinstance(output, Mapping):
        return None, ()
    files = output.get("files")
    names = []
    for item in files if isinstance(files, list) else ():
        name = _name(item.get("name")) if isinstance(item, Mapping) else _name(item)
        if name is not None:
            names.append(name.rsplit("/", 1)[-1])  # a full path would name the same file
    return _folder(output.get("path")), tuple(names)


def parse_batch_stack(entry: Any) -> BatchStackStatus | None:
    """A :class:`BatchStackStatus` from a ``BatchStack`` app-state entry or event body.

    Examples
    --------
    >>> status = parse_batch_stack({"state": "fail", "error": "no image", "code": 267})
    >>> status.state, status.error, status.code
    (<BatchStackState.FAIL: 'fail'>, 'no image', 267)
    >>> odd = parse_batch_stack({"state": "paused"})
    >>> odd.state, odd.state_text, odd.terminal
    (<BatchStackState.UNKNOWN: 'unknown'>, 'paused', False)
    >>> parse_batch_stack(None) is None
    True
    """
    if not isinstance(entry, Mapping):
        return None
    text = entry.get("state")
    text = text if isinstance(text, str) else ""
    state = BatchStackState.parse(text)
    folder, names = _output(entry)
    error = entry.get("error")
    code = as_int(entry.get("code"), 0) or 0
    if not isinstance(error, str) or not error or (code == 0 and error == "no error"):
        error = None  # events of healthy stages say "no error" with code 0
    return BatchStackStatus(
        state=state,
        percent=min(
            100.0, max(0.0, _measure(entry.get("percent"), "percent", _MAX_PERCENT, 0.0) or 0.0)
        ),
        stacked_img=_count(entry.get("stacked_img"), "stacked_img"),
        total_img=_count(entry.get("total_img"), "total_img"),
        remaining_sec=_measure(entry.get("remaining_sec"), "remaining_sec", _MAX_SECONDS, None),
        output_folder=folder,
        output_files=names,
        error=error,
        code=code,
        device_state=text if state is BatchStackState.UNKNOWN else None,
    )
