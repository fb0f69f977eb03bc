"""The simulator's method table: one function per JSON-RPC method, mapped onto a FakeSeestar.

A handler takes the call context and the request and returns the ``result`` of the reply; it
raises :class:`~crowdsky.errors.SeestarRpcError` for an error reply (``error`` + ``code``, no
``result``). Whether a reply is sent at all (authentication), when, and how is the server's
business (:mod:`~crowdsky.adapters.simulator.rpc_server`).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.jsonrpc import ABSENT, Request
from crowdsky.adapters.jsonrpc.marker import MarkerForm, carries_marker, form_of, unmark
from crowdsky.adapters.simulator.auth import verify_signature
from crowdsky.adapters.simulator.options import SimulatorOptions
from crowdsky.adapters.simulator.traffic import other_stages
from crowdsky.app.ports import FileEntry
from crowdsky.domain.device_paths import ROOT_FOLDER, listed_folder
from crowdsky.errors import CrowdskyError, SeestarRpcError, StorageError

__all__ = [
    "HANDSHAKE_METHODS",
    "METHODS",
    "PAGE_SIZE",
    "Call",
    "Handler",
    "Session",
    "albums",
    "device_state",
    "dispatch",
    "ignored",
]

#: Entries per page of ``get_img_file_page_name`` (protocol reference §3.3).
PAGE_SIZE = 20
#: Methods answered on a connection that has not authenticated (§2.2).
HANDSHAKE_METHODS = frozenset({"get_verify_str", "verify_client", "pi_is_verified"})
#: Folders the app files under ``SolarSystem`` rather than ``DeepSky``.
_SOLAR = frozenset({"Lunar", "Sun", "Solar", "Moon", "Jupiter", "Saturn", "Mars", "Venus"})
_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})[-_](\d{2})(\d{2})(\d{2})")
_VERIFY_PARAMS: tuple[object, ...] = (None, "verify", "", [])


@attrs.define
class Session:
    """What the device remembers about one connection."""

    verified: bool = False
    challenge: str | None = None
    listing: list[dict[str, Any]] | None = None


@attrs.frozen
class Call:
    """Everything a handler may use: the device, the options and the caller's session."""

    device: FakeSeestar
    options: SimulatorOptions
    session: Session


Handler = Callable[[Call, Request], object]


def _fail(method: str, code: int, error: str) -> SeestarRpcError:
    return SeestarRpcError(method, code, error)


def _not_found(method: str) -> SeestarRpcError:
    return _fail(method, 103, "method not found")


def _object_params(request: Request) -> Mapping[str, Any]:
    params = request.params
    # The app wraps some objects in a one-element list (pi_set_time [{...}]).
    if isinstance(params, list) and len(params) == 1 and isinstance(params[0], dict):
        params = params[0]
    if not isinstance(params, dict):
        raise _fail(request.method, 107, "expected object param")
    return params


# --- the verify marker (firmware 5.82-7.17, reference §1.3) ------------------------------------


def ignored(options: SimulatorOptions, request: Request) -> bool:
    """True when the firmware leaves ``request`` unanswered: no verify marker where one is due."""
    return options.needs_marker and not carries_marker(request.params)


def _unmarked(call: Call, request: Request) -> Request:
    """``request`` without its marker; 107/109 when the marker is in a form the method refuses.

    The form each method accepts comes from the one table of
    :mod:`crowdsky.adapters.jsonrpc.marker`: an object where the method wants a list is 109
    "unexpected param" (``set_setting``), a list where it wants an object is 107 "expected
    object param" (``set_sequence_setting``).
    """
    if not call.options.needs_marker:
        return request
    sent, params = unmark(request.params)
    wanted = form_of(request.method, params)
    if sent is MarkerForm.OBJECT and wanted is not MarkerForm.OBJECT:
        raise _fail(request.method, 109, "unexpected param")
    if sent is not MarkerForm.OBJECT and wanted is MarkerForm.OBJECT:
        raise _fail(request.method, 107, "expected object param")
    has_params = params is not ABSENT
    return Request(
        request.id, request.method, params if has_params else None, has_params, request.raw
    )


# --- connection and authentication -----------------------------------------------------------


def test_connection(call: Call, request: Request) -> object:
    """``"server connected!"``."""
    return "server connected!"


def get_verify_str(call: Call, request: Request) -> object:
    """A fresh challenge ``{"str": ...}``; 103 on firmware before 7.18."""
    if not call.options.has_handshake:
        raise _not_found(request.method)
    if request.params not in _VERIFY_PARAMS:
        raise _fail(request.method, 109, "unexpected param")
    call.session.challenge = secrets.token_hex(16)
    return {"str": call.session.challenge}


def verify_client(call: Call, request: Request) -> object:
    """Check ``{"sign", "data"}`` against the last challenge with the configured public key."""
    if not call.options.has_handshake:
        raise _not_found(request.method)
    params = _object_params(request)
    sign, data = params.get("sign"), params.get("data")
    key = call.options.auth_public_key
    good = (
        isinstance(sign, str)
        and isinstance(data, str)
        and call.session.challenge is not None
        and data == call.session.challenge
        and (key is None or verify_signature(key, data, sign))
    )
    if not good:
        raise _fail(request.method, call.options.verify_fail_code, call.options.verify_fail_error)
    call.session.verified = True
    return 0


def pi_is_verified(call: Call, request: Request) -> object:
    """``true`` once verified, or when the profile does not require it."""
    return call.session.verified or not call.options.auth_required


def device_state(device: FakeSeestar, options: SimulatorOptions, verified: bool) -> dict[str, Any]:
    """A ``get_device_state`` result in the real shape (values plausible, not recorded).

    ``device`` names the firmware (``firmware_ver_int``, ``firmware_ver_string``), the model
    and the serial; the other sections are what the app reads for its status pages.
    """
    major, minor = options.version
    serial = device.telescope.rpartition("_")[2]
    return {
        "device": {
            "name": device.telescope,
            "firmware_ver_int": options.ver_int,
            "firmware_ver_string": f"{major}.{minor:02d}",
            "is_verified": verified,
            "sn": serial,
            "cpuId": f"0000{serial}",
            "product_model": device.instrument,
            "user_product_model": device.instrument,
            "focal_len": 250.0,
            "fnumber": 5.0,
            "can_star_mode_sel_cam": False,
        },
        "setting": {
            "temp_unit": "C",
            "beep_volume": "backyard",
            "lang": "en",
            "center_xy": [540, 960],
            "stack_lenhance": False,
            "heater_enable": False,
            "focal_pos": 1580,
            "factory_focal_pos": 1580,
            "exp_ms": {"stack_l": 10000, "continuous": 500},
            "auto_power_off": True,
            "stack_dither": {"pix": 50, "interval": 5, "enable": True},
            "auto_3ppa_calib": True,
            "frame_calib": True,
            "stack": {"dbe": False, "star_correction": True, "cont_capt": False},
            "wide_cam": False,
        },
        "location_lon_lat": [16.37, 48.21],
        "camera": {"chip_size": [1080, 1920], "pixel_size_um": 2.9, "debayer_pattern": "GR"},
        "focuser": {"state": "idle", "max_step": 2600, "step": 1580},
        "ap": {"ssid": device.telescope, "is_5g": True},
        "storage": {
            "is_typec_connected": False,
            "connected_storage": ["emmc"],
            "storage_volume": [{"name": "emmc", "state": "mounted", "totalMB": 51854}],
            "cur_storage": "emmc",
        },
        "balance_sensor": {"code": 0, "data": {"x": -0.06, "y": 0.015, "z": 1.0, "angle": 3.5}},
        "compass_sensor": {"code": 0, "data": {"x": 21.5, "y": -3.2, "z": -40.1, "direction": 187}},
        "mount": {"move_type": "none", "close": True, "tracking": False, "equ_mode": False},
        "pi_status": {
            "is_overtemp": False,
            "temp": 44.5,
            "charger_status": "Discharging",
            "battery_capacity": 88,
            "charge_online": False,
            "battery_temp": 27,
        },
    }


def get_device_state(call: Call, request: Request) -> object:
    """The device's state: model, serial and firmware (``device.firmware_ver_int``) and more."""
    verified = call.session.verified or not call.options.auth_required
    return device_state(call.device, call.options, verified)


# --- files -----------------------------------------------------------------------------------


def albums(device: FakeSeestar) -> dict[str, Any]:
    """The ``get_albums`` result (§3.2): counts are album entries, ``thn`` relative to MyWorks."""
    groups: dict[str, list[dict[str, Any]]] = {"SolarSystem": [], "DeepSky": []}
    for folder, files in device.list_albums():
        thumbs = [f.name for f in files if f.name.endswith("_thn.jpg")]
        entry = {
            "name": folder.name,
            "thn": f"{folder.name}/{thumbs[-1]}" if thumbs else "",
            "count": folder.count,
            "type": 0,
        }
        groups["SolarSystem" if folder.name in _SOLAR else "DeepSky"].append(entry)
    return {
        "path": ROOT_FOLDER,
        "list": [{"group_name": g, "files": files} for g, files in groups.items() if files],
    }


def get_albums(call: Call, request: Request) -> object:
    """Folders under ``MyWorks`` grouped as the app shows them."""
    return albums(call.device)


def _date_of(name: str) -> str:
    match = _STAMP.search(name)
    if match is None:
        return ""
    y, mo, d, h, mi, s = match.groups()
    return f"{y}-{mo}-{d} {h}:{mi}:{s}"


def _file_entry(entry: FileEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "date": _date_of(entry.name),
        "size_k": entry.size // 1024,
        "is_dir": False,
        "file_cnt": 0,
        "avi_duration_sec": None,
    }


def _folder_entries(device: FakeSeestar) -> list[dict[str, Any]]:
    return [
        {
            "name": folder,
            "date": "",
            "size_k": 0,
            "is_dir": True,
            "file_cnt": len(device.list_files(folder)),
            "avi_duration_sec": None,
        }
        for folder in device.storage.folders()
    ]


def _listing(device: FakeSeestar, directory: str) -> list[dict[str, Any]] | None:
    """The entries of ``MyWorks`` or ``MyWorks/<folder>``; ``None`` when there is no such folder."""
    try:
        folder = listed_folder(directory)
    except StorageError:
        return None
    if folder is None:
        return _folder_entries(device)
    if folder not in device.storage.folders():
        return None
    return [_file_entry(f) for f in device.list_files(folder)]


def get_img_file_page_number(call: Call, request: Request) -> object:
    """Page count of ``params.dir`` (``MyWorks/<folder>``); sets the connection's context."""
    params = _object_params(request)
    directory = params.get("dir")
    if not isinstance(directory, str):
        raise _fail(request.method, 109, "unexpected param")
    entries = _listing(call.device, directory)
    if entries is None:
        call.session.listing = []
        return call.options.missing_folder_pages
    if params.get("skip_avi") is True:
        entries = [e for e in entries if not e["name"].lower().endswith(".avi")]
    call.session.listing = entries
    return math.ceil(len(entries) / PAGE_SIZE)


def get_img_file_page_name(call: Call, request: Request) -> object:
    """One page (0-based) of the listing chosen by ``get_img_file_page_number``."""
    page = _object_params(request).get("page")
    if not isinstance(page, int) or isinstance(page, bool):
        raise _fail(request.method, 109, "unexpected param")
    listing = call.session.listing or []
    return listing[page * PAGE_SIZE : (page + 1) * PAGE_SIZE] if page >= 0 else []


def get_disk_volume(call: Call, request: Request) -> object:
    """A plausible 64 GB eMMC, its free space shrinking with the files stored."""
    used_mb = sum(
        f.size for folder in call.device.storage.folders() for f in call.device.list_files(folder)
    ) // (1 << 20)
    return {"totalMB": 51854, "freeMB": max(0, 51854 - 15305 - used_mb)}


# --- clock -----------------------------------------------------------------------------------


def pi_get_time(call: Call, request: Request) -> object:
    """The device's local clock; ``time_zone`` only when the device reports its zone."""
    now = call.device.device_time()
    local = now.local or call.device.local_now()
    result: dict[str, Any] = {
        "year": local.year,
        "mon": local.month,
        "day": local.day,
        "hour": local.hour,
        "min": local.minute,
        "sec": local.second,
    }
    if now.zone is not None:
        result["time_zone"] = now.zone
    return result


def pi_set_time(call: Call, request: Request) -> object:
    """Set the clock from ``[{"year", "mon", "day", "hour", "min", "sec", "time_zone"}]``."""
    params = _object_params(request)
    try:
        y, mo, d, h, mi, s = (int(params[k]) for k in ("year", "mon", "day", "hour", "min", "sec"))
        local = datetime(y, mo, d, h, mi, s)
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(request.method, 109, "unexpected param") from exc
    zone = params.get("time_zone")
    call.device.set_device_time(local, zone if isinstance(zone, str) else call.device.zone)
    return 0


# --- batch stacking --------------------------------------------------------------------------


def clear_batch_stack(call: Call, request: Request) -> object:
    """Forget the last batch-stack state; 103 on the ``"old"`` profile."""
    if not call.options.has_clear_batch_stack:
        raise _not_found(request.method)
    call.device.clear_batch_stack()
    return 0


def clear_app_state(call: Call, request: Request) -> object:
    """``{"name": "BatchStack"}`` clears the batch stack (the legacy way); others are no-ops."""
    if _object_params(request).get("name") == "BatchStack":
        call.device.clear_batch_stack()
    return 0


def set_batch_stack_setting(call: Call, request: Request) -> object:
    """Select ``{"path", "files": [{"name"}]}``; unresolvable names are dropped (code 0)."""
    params = _object_params(request)
    path, files = params.get("path"), params.get("files")
    if not isinstance(path, str) or not isinstance(files, list):
        raise _fail(request.method, 109, "unexpected param")
    names = [f["name"] for f in files if isinstance(f, dict) and isinstance(f.get("name"), str)]
    call.device.configure_batch_stack(path, names)
    return 0


def get_batch_stack_setting(call: Call, request: Request) -> object:
    """The selection, each file enriched with ``date``, ``thn`` and ``type``."""
    setting = call.device.batch_stack_setting()
    files = []
    for entry in setting["files"]:
        name = str(entry["name"])
        thn = name.rsplit(".", 1)[0] + "_thn.jpg"
        files.append({"name": name, "date": _date_of(name), "thn": thn, "type": 0})
    return {"path": setting["path"], "files": files}


def start_batch_stack(call: Call, request: Request) -> object:
    """Start; the device's refusal (259 while working) becomes the error reply."""
    call.device.start_batch_stack()
    return 0


def stop_batch_stack(call: Call, request: Request) -> object:
    """Cancel a working stack."""
    call.device.stop_batch_stack()
    return 0


def iscope_get_app_state(call: Call, request: Request) -> object:
    """Every stage's entry; ``BatchStack`` is absent before the first stack and after a clear.

    With ``app_state_stages`` the reply also holds the other stages a real device reports
    (:func:`~crowdsky.adapters.simulator.traffic.other_stages`). The device's
    :attr:`~crowdsky.adapters.device_model.faults.Faults.imaging` stages (another client's live
    view, say) show with their state, so pre-flight over the network sees a busy telescope.
    """
    state = other_stages() if call.options.app_state_stages else {}
    for stage, running in dict(call.device.faults.imaging).items():
        state[stage] = {**state.get(stage, {}), "state": running}
    entry = call.device.batch_stack_app_state()
    if entry is not None:
        state["BatchStack"] = entry
    return state


METHODS: Mapping[str, Handler] = {
    "test_connection": test_connection,
    "get_verify_str": get_verify_str,
    "verify_client": verify_client,
    "pi_is_verified": pi_is_verified,
    "get_device_state": get_device_state,
    "get_albums": get_albums,
    "get_img_file_page_number": get_img_file_page_number,
    "get_img_file_page_name": get_img_file_page_name,
    "get_disk_volume": get_disk_volume,
    "pi_get_time": pi_get_time,
    "pi_set_time": pi_set_time,
    "clear_batch_stack": clear_batch_stack,
    "clear_app_state": clear_app_state,
    "set_batch_stack_setting": set_batch_stack_setting,
    "get_batch_stack_setting": get_batch_stack_setting,
    "start_batch_stack": start_batch_stack,
    "stop_batch_stack": stop_batch_stack,
    "iscope_get_app_state": iscope_get_app_state,
}


def dispatch(call: Call, request: Request) -> object:
    """Run the handler of ``request.method``; :class:`SeestarRpcError` for an error reply.

    On firmware 5.82-7.17 the verify marker is checked and removed first (107/109 for the
    wrong form); unknown methods are 103 "method not found"; a device-side failure that is not
    an RPC error (a storage problem, a bad zone) is 207 "fail to operate".
    """
    handler = METHODS.get(request.method)
    try:
        request = _unmarked(call, request)
        if handler is None:
            raise _not_found(request.method)
        return handler(call, request)
    except SeestarRpcError as exc:
        raise _fail(request.method, exc.code, exc.message) from exc
    except CrowdskyError as exc:
        raise _fail(request.method, 207, "fail to operate") from exc
