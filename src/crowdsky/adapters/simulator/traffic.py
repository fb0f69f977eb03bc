"""Device chatter shaped like recorded Seestar traffic: events of many kinds and app-state stages.

Real devices push about twenty kinds of events while they work (protocol reference §1.5): status
(``PiStatus`` with one of several field sets, ``DiskSpace``), the stages of live viewing (``View``,
``Stack``, ``Exposure``, ``ContinuousExposure``, ``Annotate``), the mount and the focuser
(``ScopeTrack``, ``FocuserMove``, ``AutoFocus``), ``PlateSolve``, ``DarkLibrary``, settings,
sensors, clients and the firmware version. Some carry ``code`` and ``error`` (a failed stage),
some a ``result`` (a solve or an annotation): they are events all the same, with no ``id``.

:class:`EventMix` draws such events, seeded; :func:`other_stages` gives the app-state entries of
the stages other than ``BatchStack`` that a real ``iscope_get_app_state`` reply holds (each the
last event body of its stage without ``Event``/``Timestamp``, and without ``route``). Values are
plausible, field names are the recorded ones; what is Inferred is marked in the reference.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

__all__ = ["EventMix", "TrafficEvent", "other_stages"]

#: An event as the simulator sends it: its name and its fields (no ``Event``/``Timestamp``).
TrafficEvent = tuple[str, dict[str, Any]]

_TARGET = "IC 434"
_RADEC = [5.6833, -2.46]  # JSON-RPC coordinates: RA in hours


def _pistatus(rng: random.Random, state: dict[str, Any]) -> TrafficEvent:
    """``PiStatus`` carries only what changed: one of the field sets seen on devices."""
    state["temp"] = round(min(60.0, max(30.0, state["temp"] + rng.uniform(-0.6, 0.6))), 1)
    state["battery"] = max(5, state["battery"] - rng.choice((0, 0, 1)))
    field_sets: list[dict[str, Any]] = [
        {"temp": state["temp"]},
        {"battery_capacity": state["battery"]},
        {"battery_temp": round(state["temp"] - 12.0, 1), "battery_temp_type": "normal"},
        {"charger_status": "Discharging", "charge_online": False},
        {
            "temp": state["temp"],
            "charger_status": "Discharging",
            "charge_online": False,
            "battery_capacity": state["battery"],
            "battery_temp": round(state["temp"] - 12.0, 1),
            "battery_temp_type": "normal",
            "battery_overtemp": False,
        },
    ]
    return "PiStatus", rng.choice(field_sets)


def _view(rng: random.Random) -> TrafficEvent:
    return "View", {
        "state": rng.choice(("working", "cancel")),
        "lapse_ms": rng.randrange(0, 900_000),
        "mode": "star",
        "cam_id": 0,
        "target_ra_dec": list(_RADEC),
        "target_name": _TARGET,
        "lp_filter": True,
        "gain": 80,
        "route": [],
    }


def _stack(rng: random.Random) -> TrafficEvent:
    stacked = rng.randrange(1, 200)
    if rng.random() < 0.5:
        return "Stack", {
            "state": "frame_complete",
            "frame_type": "light",
            "stacked_frame": stacked,
            "dropped_frame": rng.randrange(0, 4),
            "total_frame": stacked + 1,
            "error": "no error",
            "lapse_ms": rng.randrange(1300, 5200),
            "code": 0,
        }
    if rng.random() < 0.5:
        return "Stack", {
            "state": "working",
            "lapse_ms": rng.randrange(0, 900_000),
            "frame_errcode": 0,
            "stacked_frame": stacked,
            "dropped_frame": 0,
            "can_annotate": True,
            "route": ["View"],
        }
    return "Stack", {"state": "fail", "error": "stack error, too few stars", "code": 263}


def _exposure(rng: random.Random) -> TrafficEvent:
    if rng.random() < 0.5:
        return "Exposure", {"page": "stack", "state": "fail", "error": "interrupt", "code": 514}
    return "Exposure", {"page": "stack", "state": "start", "exp_ms": 10000.0, "route": ["View"]}


def _continuous_exposure(rng: random.Random) -> TrafficEvent:
    return "ContinuousExposure", {"state": "cancel", "lapse_ms": rng.randrange(0, 5000)}


def _focuser_move(rng: random.Random) -> TrafficEvent:
    state = rng.choice(("working", "complete"))
    return "FocuserMove", {"state": state, "lapse_ms": rng.randrange(0, 3000), "position": 1580}


def _auto_focus(rng: random.Random) -> TrafficEvent:
    return "AutoFocus", {"state": "fail", "error": "no star is detected", "code": 279}


def _plate_solve(rng: random.Random) -> TrafficEvent:
    if rng.random() < 0.3:
        return "PlateSolve", {"state": "fail", "error": "solve failed", "code": 251}
    return "PlateSolve", {
        "page": "preview",
        "state": "complete",
        "lapse_ms": rng.randrange(1000, 9000),
        "result": {
            "ra_dec": [round(_RADEC[0] + rng.uniform(-0.01, 0.01), 6), _RADEC[1]],
            "fov": [0.7095, 1.2605],
            "focal_len": 252.0,
            "angle": round(rng.uniform(-180.0, 180.0), 2),
            "image_id": rng.randrange(1, 500),
            "star_number": rng.randrange(100, 900),
            "duration_ms": rng.randrange(1000, 9000),
        },
    }


def _annotate(rng: random.Random) -> TrafficEvent:
    return "Annotate", {
        "page": "stack",
        "state": "complete",
        "lapse_ms": rng.randrange(100, 2000),
        "result": {
            "image_size": [1080, 1920],
            "annotations": [
                {
                    "type": "ic",
                    "names": [_TARGET, "Horsehead Nebula"],
                    "pixelx": round(rng.uniform(0, 1080), 1),
                    "pixely": round(rng.uniform(0, 1920), 1),
                    "radius": 92.3,
                }
            ],
            "image_id": rng.randrange(1, 500),
        },
    }


def _dark_library(rng: random.Random) -> TrafficEvent:
    if rng.random() < 0.5:
        return "DarkLibrary", {"state": "working", "percent": round(rng.uniform(0, 99), 1)}
    return "DarkLibrary", {"state": "complete", "lapse_ms": rng.randrange(20_000, 90_000)}


def _scope_track(rng: random.Random) -> TrafficEvent:
    if rng.random() < 0.2:
        return "ScopeTrack", {"state": "fail", "error": "below horizon", "code": 270}
    return "ScopeTrack", {"state": "on", "tracking": True, "manual": False, "route": []}


def _disk_space(rng: random.Random) -> TrafficEvent:
    return "DiskSpace", {"used_percent": rng.randrange(20, 60)}


def _setting(rng: random.Random) -> TrafficEvent:
    stack = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "dbe_enable": False}
    return "Setting", {"wide_cam": False, "stack": stack}


def _balance_sensor(rng: random.Random) -> TrafficEvent:
    data = {
        "x": round(rng.uniform(-0.1, 0.1), 6),
        "y": round(rng.uniform(-0.1, 0.1), 6),
        "z": round(rng.uniform(0.99, 1.01), 6),
        "angle": round(rng.uniform(0.0, 5.0), 6),
    }
    return "BalanceSensor", {"code": 0, "data": data}


def _client(rng: random.Random) -> TrafficEvent:
    return "Client", {"connected": ["192.168.1.23"], "master_index": 0, "is_master": True}


def _alert(rng: random.Random) -> TrafficEvent:
    return "Alert", {"state": "fail", "error": "star trails", "code": 530}


_KINDS: tuple[Callable[[random.Random], TrafficEvent], ...] = (
    _view,
    _stack,
    _exposure,
    _continuous_exposure,
    _focuser_move,
    _auto_focus,
    _plate_solve,
    _annotate,
    _dark_library,
    _scope_track,
    _disk_space,
    _setting,
    _balance_sensor,
    _client,
    _alert,
)


class EventMix:
    """A seeded source of events like a working device's: about half ``PiStatus``.

    Parameters
    ----------
    seed : int or str
        Seed of every choice.
    firmware_ver_int : int
        Reported by the occasional ``Version`` event (``2000 + 100 * major + minor``).
    firmware_ver_string : str
        Likewise.

    Examples
    --------
    >>> mix = EventMix(1, 2775, "7.75")
    >>> names = {mix.next()[0] for _ in range(400)}
    >>> {"PiStatus", "View", "PlateSolve", "FocuserMove", "DarkLibrary", "Version"} <= names
    True
    >>> all(name != "BatchStack" for name in names)  # the device model pushes those itself
    True
    """

    def __init__(self, seed: int | str, firmware_ver_int: int, firmware_ver_string: str) -> None:
        self._rng = random.Random(seed)
        self._status: dict[str, Any] = {"temp": 44.5, "battery": 88}
        self._version = {
            "name": "ASI AIR imager",
            "svr_ver_string": "1.0",
            "svr_ver_int": 29,
            "firmware_ver_int": firmware_ver_int,
            "firmware_ver_string": firmware_ver_string,
            "is_verified": True,
        }

    def pistatus(self) -> TrafficEvent:
        """The next ``PiStatus`` event."""
        return _pistatus(self._rng, self._status)

    def next(self) -> TrafficEvent:
        """The next event of any kind."""
        roll = self._rng.random()
        if roll < 0.5:
            return self.pistatus()
        if roll < 0.52:
            return "Version", dict(self._version)
        return self._rng.choice(_KINDS)(self._rng)


_OTHER_STAGES: dict[str, dict[str, Any]] = {
    "View": {
        "state": "cancel",
        "lapse_ms": 1_843_210,
        "mode": "star",
        "cam_id": 0,
        "target_ra_dec": list(_RADEC),
        "target_name": _TARGET,
        "lp_filter": True,
        "gain": 80,
        "stage": "Stack",
        "Stack": {
            "state": "cancel",
            "lapse_ms": 1_790_004,
            "frame_errcode": 0,
            "stacked_frame": 158,
            "dropped_frame": 3,
            "can_annotate": True,
        },
    },
    "FocuserMove": {"state": "complete", "lapse_ms": 2372, "position": 1580},
    "DarkLibrary": {"state": "complete", "lapse_ms": 48_210, "percent": 100.0},
    "PlateSolve": {
        "state": "complete",
        "lapse_ms": 4201,
        "result": {
            "ra_dec": list(_RADEC),
            "fov": [0.7095, 1.2605],
            "focal_len": 252.0,
            "angle": -170.12,
            "image_id": 4,
            "star_number": 512,
            "duration_ms": 4201,
        },
    },
}


def other_stages() -> dict[str, dict[str, Any]]:
    """The app-state entries of stages other than ``BatchStack`` (a fresh copy each time).

    Examples
    --------
    >>> sorted(other_stages())
    ['DarkLibrary', 'FocuserMove', 'PlateSolve', 'View']
    >>> any("route" in entry for entry in other_stages().values())
    False
    """
    return copy.deepcopy(_OTHER_STAGES)
