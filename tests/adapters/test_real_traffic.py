"""The client among traffic shaped like a real device's: many kinds of events, other app stages.

Real devices push about twenty kinds of events, some with ``code``/``error`` and some with a
``result`` (protocol reference §1.5), and their ``iscope_get_app_state`` replies hold the entries
of other stages beside ``BatchStack``, without ``route`` (§4.2). Anything without an ``id`` is an
event, never a reply; a block must still stack and be renamed while such a stream goes on.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.jsonrpc import (
    Decoder,
    Event,
    JsonRpcConnection,
    Reply,
    RsaAuthenticator,
    encode_event,
)
from crowdsky.adapters.seestar.network import NetworkSeestar
from crowdsky.adapters.seestar.replies import parse_app_state
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.traffic import EventMix, other_stages
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions

FIRST = datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC)
NAME = "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"


def test_app_state_finds_batch_stack_among_the_other_stages() -> None:
    working = {"state": "working", "percent": 40.0, "stacked_img": 2, "total_img": 5}
    assert parse_app_state(other_stages()) is None  # no batch stack: absent, whatever else runs
    status = parse_app_state({**other_stages(), "BatchStack": working})
    assert status is not None
    assert (status.state, status.stacked_img, status.total_img) == ("working", 2, 5)
    failed = {"state": "fail", "lapse_ms": 12, "error": "no image", "code": 267}
    status = parse_app_state({"BatchStack": failed, **other_stages()})
    assert status is not None
    assert (status.state, status.code, status.error) == ("fail", 267, "no image")


def test_every_event_of_a_long_real_shaped_stream_decodes_as_an_event() -> None:
    mix = EventMix(7, 2706, "7.06")
    stream = b"".join(encode_event(*mix.next(), timestamp=4515.0 + n) for n in range(3000))
    decoder = Decoder()
    for start in range(0, len(stream), 1000):  # cut anywhere, as the device's writes are
        decoder.receive_data(stream[start : start + 1000])
    messages = list(decoder)
    assert len(messages) == 3000
    assert all(isinstance(m, Event) for m in messages)
    events = [m for m in messages if isinstance(m, Event)]
    with_result = [e for e in events if "result" in e.fields]
    with_error = [e for e in events if "error" in e.fields and e.get("code")]
    assert with_result
    assert with_error
    assert not any(isinstance(m, Reply) for m in messages)
    assert len(Counter(e.name for e in events)) >= 15


def _block(device: FakeSeestar) -> None:
    """33 frames 27 s apart from 20:15:05 UTC: block 20260227.81 of IC 434."""
    for i in range(33):
        add_sub(device, "IC 434", 10.0, "LP", FIRST + i * timedelta(seconds=27), 85.25, -2.46)


@pytest.mark.parametrize("variety", [True, False], ids=["real-events", "pistatus-only"])
def test_a_block_stacks_and_is_renamed_amid_a_long_interleaved_event_stream(
    tmp_path: Path, variety: bool
) -> None:
    private, public = generate_test_keypair()
    key = tmp_path / "key.pem"
    key.write_bytes(private)
    root = tmp_path / "emmc"
    device = FakeSeestar(
        clock=SystemClock(),
        storage=DirectoryStorage(root),
        seconds_per_frame=0.01,
        setup_seconds=0.3,
    )
    _block(device)
    options = SimulatorOptions(
        auth_public_key=public,
        event_variety=variety,
        events_before_reply=30,  # between every request and its reply
        pistatus_interval=0.01,  # and a steady stream besides
        batch_poll_interval=0.02,
    )
    seen: list[Event] = []
    with SimulatorServer(device, root, options=options) as sim:
        rpc = JsonRpcConnection(
            sim.host,
            sim.rpc_port,
            timeout=5.0,
            authenticator=RsaAuthenticator(key),
            on_event=seen.append,
        )
        with (
            rpc,
            NetworkSeestar(
                sim.host, http_port=sim.http_port, connection=rpc, mounted_share=root
            ) as seestar,
        ):
            progress = CollectingProgress()
            app = Crowdsky(
                seestar,
                SystemClock(),
                progress,
                options=StackOptions(poll_min=0.01, poll_max=0.05),
            )
            result = app.stack_blocks("IC 434")
    assert (result["blocks_stacked"], result["blocks_failed"]) == (1, 0), progress.lines
    assert sorted(p.name for p in (root / "MyWorks" / "IC 434").glob("*.fit")) == [NAME]
    assert len(seen) >= 300
    kinds = Counter(e.name for e in seen)
    assert kinds["BatchStack"] >= 1
    if variety:
        assert {"View", "Stack", "PlateSolve", "FocuserMove", "DarkLibrary"} <= set(kinds)
        assert any("result" in e.fields for e in seen)
        assert any(e.get("code") not in (None, 0) for e in seen)
