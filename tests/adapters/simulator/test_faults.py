"""Transport faults of the simulator: idle drop, random drops, max clients, latency, framing."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer

from .conftest import RawClient

Sim = Callable[..., SimulatorServer]
Connect = Callable[[SimulatorServer], RawClient]


def test_idle_connections_are_dropped(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim(idle_drop_seconds=0.1))
    assert client.call("test_connection").ok
    client.read_until_closed()  # returns only when the simulator hangs up


def test_traffic_keeps_a_connection_alive(make_sim: Sim, connect: Connect) -> None:
    # Twenty calls in a row: each one resets the idle timer, so none fails.
    client = connect(make_sim(idle_drop_seconds=2.0))
    assert all(client.call("test_connection").ok for _ in range(20))


def test_drop_probability_one_closes_instead_of_replying(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim(drop_probability=1.0))
    with pytest.raises(ConnectionError):
        client.call("test_connection")


def test_faults_switched_at_runtime_reach_an_open_connection(
    make_sim: Sim, connect: Connect
) -> None:

    sim = make_sim()
    client = connect(sim)
    assert client.call("test_connection").ok
    sim.options = attrs.evolve(sim.options, drop_probability=1.0)
    with pytest.raises(ConnectionError):
        client.call("test_connection")
    sim.options = attrs.evolve(sim.options, drop_probability=0.0)
    assert connect(sim).call("test_connection").ok


def test_max_clients_closes_extra_connections(make_sim: Sim, connect: Connect) -> None:
    sim = make_sim(max_clients=1)
    first = connect(sim)
    assert first.call("test_connection").ok
    extra = connect(sim)
    extra.read_until_closed()
    assert first.call("test_connection").ok


def test_latency_keeps_replies_in_order(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim(latency=(0.0, 0.01)))
    ids = [client.send("test_connection") for _ in range(10)]
    while len(client.replies) < len(ids):
        client._pump()
    assert [reply.id for reply in client.replies] == ids


def test_wire_delay_keeps_replies_and_events_in_order(make_sim: Sim, connect: Connect) -> None:
    # Frames wait on the wire; with coalescing on, one not yet due goes in a later write.
    sim = make_sim(wire_delay=0.02, coalesce_and_split=True, pistatus_interval=0.001)
    client = connect(sim)
    ids = [client.send("test_connection") for _ in range(10)]
    ids += [client.send("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"})]
    ids += [client.send("get_img_file_page_name", {"page": 0})]
    while len(client.replies) < len(ids):
        client._pump()
    assert [reply.id for reply in client.replies] == ids
    assert len(client.replies[-1].result) == 20
    assert client.problems == []
    assert client.events


def test_coalesced_and_split_frames_decode(make_sim: Sim, connect: Connect) -> None:
    sim = make_sim(coalesce_and_split=True, pistatus_interval=0.001)
    client = connect(sim)
    ids = [client.send("get_albums") for _ in range(30)]
    ids += [client.send("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"})]
    ids += [client.send("get_img_file_page_name", {"page": 0})]
    replies = [client.reply_to(i) for i in ids]
    assert all(reply.ok for reply in replies)
    assert len(replies[-1].result) == 20
    assert client.problems == []
    assert client.events


@pytest.mark.parametrize(
    "bad",
    [
        {"latency": (0.2, 0.1)},
        {"drop_probability": 1.5},
        {"firmware": "8.x"},
        {"wire_delay": -0.1},
    ],
)
def test_options_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"latency|drop_probability|firmware|wire_delay"):
        SimulatorOptions(**bad)  # type: ignore[arg-type]


def test_silent_methods_are_never_answered(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim(silent_methods={"get_verify_str"}))
    ignored = client.send("get_verify_str")
    assert client.call("test_connection").ok  # FIFO: the earlier call was skipped
    assert all(reply.id != ignored for reply in client.replies)


def test_half_open_connections_stop_answering_but_stream_events(
    make_sim: Sim, connect: Connect
) -> None:
    sim = make_sim(half_open_after=2, pistatus_interval=0.01)
    client = connect(sim)
    assert client.call("test_connection").ok
    assert client.call("test_connection").ok
    unanswered = client.send("test_connection")
    client.events.clear()
    client.wait_event("PiStatus")  # still connected and streaming
    assert all(reply.id != unanswered for reply in client.replies)
    # A new connection is answered again.
    assert connect(sim).call("test_connection").ok


def test_a_chosen_page_request_drops_the_link_and_the_next_socket_has_no_context(
    make_sim: Sim, connect: Connect
) -> None:
    # The small device holds 45 files: three pages. The second page request is never answered.
    sim = make_sim(drop_page_requests={2})
    client = connect(sim)
    assert client.call("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"}).result == 3
    assert len(client.call("get_img_file_page_name", {"page": 0}).result) == 20
    with pytest.raises(ConnectionError):
        client.call("get_img_file_page_name", {"page": 1})
    fresh = connect(sim)
    assert fresh.call("get_img_file_page_name", {"page": 1}).result == []  # context was per link
    assert fresh.call("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"}).result == 3
    assert len(fresh.call("get_img_file_page_name", {"page": 1}).result) == 20
