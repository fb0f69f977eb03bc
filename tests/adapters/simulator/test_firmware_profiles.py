"""Firmware profiles as recorded traffic shows them: the verify marker and ``get_device_state``.

Silence is checked without timing: replies are FIFO per connection, so once the reply to a later,
marked request has arrived, an earlier request without a reply was ignored for good.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crowdsky.adapters.simulator import FIRMWARE_PROFILES, SimulatorServer

from .conftest import RawClient

Sim = Callable[..., SimulatorServer]
Connect = Callable[[SimulatorServer], RawClient]

WINDOW = ["6.70", "7.06"]
VERSION = {
    "7.75": 2775, "7.32": 2732, "7.18": 2718, "7.06": 2706, "6.70": 2670, "2.x": 2225, "old": 2427,
}  # fmt: skip


@pytest.mark.parametrize("firmware", WINDOW)
def test_a_request_without_the_marker_gets_no_reply(
    firmware: str, make_sim: Sim, connect: Connect
) -> None:
    client = connect(make_sim(firmware=firmware))
    unmarked = [
        client.send("scope_get_equ_coord"),
        client.send("get_albums"),
        client.send("get_device_state"),
        client.send("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"}),
        client.send("get_verify_str"),
    ]
    marked = client.send("test_connection", ["verify"])
    assert client.reply_to(marked).result == "server connected!"
    assert not {r.id for r in client.replies} & set(unmarked)


@pytest.mark.parametrize("firmware", WINDOW)
@pytest.mark.parametrize(
    ("method", "params", "check"),
    [
        ("get_albums", ["verify"], lambda r: r.ok and r.result["path"] == "MyWorks"),
        ("get_device_state", ["verify"], lambda r: r.ok and "device" in r.result),
        ("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub", "verify": True},
         lambda r: r.result == 3),
        ("pi_get_time", ["verify"], lambda r: r.ok and "year" in r.result),
        ("clear_app_state", {"name": "BatchStack", "verify": True}, lambda r: r.result == 0),
        ("get_verify_str", ["verify"], lambda r: r.code == 103),
        ("no_such_method", ["verify"], lambda r: r.code == 103),
    ],
)  # fmt: skip
def test_the_marker_in_the_right_form_is_answered(
    firmware: str, method: str, params: Any, check: Callable[[Any], bool], make_sim: Sim,
    connect: Connect,
) -> None:  # fmt: skip
    reply = connect(make_sim(firmware=firmware)).call(method, params)
    assert check(reply), reply


@pytest.mark.parametrize("firmware", WINDOW)
@pytest.mark.parametrize(
    ("method", "params", "code", "error"),
    [
        # Recorded on S50 6.70 and S30 7.06 (reference §1.3).
        ("set_setting", {"lang": "en", "verify": True}, 109, "unexpected param"),
        ("set_sequence_setting", [[{"group_name": "M44"}], "verify"], 107, "expected object param"),
        # The same rule for what crowdsky sends: an object method refuses the list form.
        ("get_img_file_page_name", ["verify"], 107, "expected object param"),
        ("get_img_file_page_name", [{"page": 0}, "verify"], 107, "expected object param"),
    ],
)
def test_the_marker_in_the_wrong_form_is_refused(
    firmware: str, method: str, params: Any, code: int, error: str, make_sim: Sim,
    connect: Connect,
) -> None:  # fmt: skip
    reply = connect(make_sim(firmware=firmware)).call(method, params)
    assert (reply.code, reply.error, reply.result) == (code, error, None)


@pytest.mark.parametrize("firmware", ["2.x", "old", "7.18", "7.75"])
def test_outside_the_window_unmarked_requests_are_answered(
    firmware: str, make_sim: Sim, connect: Connect
) -> None:
    client = connect(make_sim(firmware=firmware))
    assert client.call("get_albums").ok
    assert client.call("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"}).result == 3


@pytest.mark.parametrize("firmware", FIRMWARE_PROFILES)
def test_get_device_state_names_model_serial_and_firmware(
    firmware: str, make_sim: Sim, connect: Connect
) -> None:
    client = connect(make_sim(firmware=firmware))
    params = ["verify"] if firmware in WINDOW else None
    reply = client.call("get_device_state", params)
    device = reply.result["device"]
    assert device["firmware_ver_int"] == VERSION[firmware]
    major, minor = divmod(VERSION[firmware] - 2000, 100)
    assert device["firmware_ver_string"] == f"{major}.{minor:02d}"
    assert device["product_model"] == "Seestar S50"
    assert device["sn"]
    assert {"setting", "storage", "pi_status"} <= set(reply.result)
