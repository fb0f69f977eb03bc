"""The simulator's handshake and firmware profiles (protocol reference §2 and §7 item 10).

Silence is checked without timing: replies are FIFO per connection, so when the reply to a
later handshake call arrives, an earlier unanswered call has been ignored for good.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from crowdsky.adapters.jsonrpc import sign_challenge
from crowdsky.adapters.simulator import SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair

from .conftest import RawClient

Sim = Callable[..., SimulatorServer]
Connect = Callable[[SimulatorServer], RawClient]


def _key(private_pem: bytes) -> RSAPrivateKey:
    key = load_pem_private_key(private_pem, password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


def _handshake(client: RawClient, private_pem: bytes) -> int:
    challenge = client.call("get_verify_str", "verify").result["str"]
    sign = sign_challenge(_key(private_pem), challenge)
    return client.call("verify_client", {"sign": sign, "data": challenge}).code


def _ignored(client: RawClient, method: str) -> bool:
    """Send ``method``, then a handshake call; True if only the latter was answered."""
    ignored = client.send(method)
    client.reply_to(client.send("pi_is_verified"))
    return all(reply.id != ignored for reply in client.replies)


def test_unverified_connections_get_no_replies_but_events(
    make_sim: Sim, connect: Connect, keypair: tuple[bytes, bytes]
) -> None:
    sim = make_sim(auth_public_key=keypair[1], firmware="7.32", pistatus_interval=0.02)
    client = connect(sim)
    assert _ignored(client, "test_connection")
    assert _ignored(client, "get_albums")
    assert client.call("pi_is_verified").result is False
    assert client.wait_event("PiStatus").name == "PiStatus"


def test_a_good_signature_unlocks_the_connection_only(
    make_sim: Sim, connect: Connect, keypair: tuple[bytes, bytes]
) -> None:
    sim = make_sim(auth_public_key=keypair[1], firmware="7.75")
    client = connect(sim)
    assert _handshake(client, keypair[0]) == 0
    assert client.call("pi_is_verified").result is True
    assert client.call("test_connection").result == "server connected!"
    # Per connection: a new socket starts unverified (a reconnect forgets).
    other = connect(sim)
    assert _ignored(other, "test_connection")


def test_a_bad_signature_is_an_error_and_stays_locked(
    make_sim: Sim, connect: Connect, keypair: tuple[bytes, bytes]
) -> None:
    sim = make_sim(auth_public_key=keypair[1], verify_fail_code=208)
    client = connect(sim)
    wrong_private, _ = generate_test_keypair(1024)
    reply = client.call("verify_client", {"sign": "bm9wZQ==", "data": "no challenge yet"})
    assert (reply.code, reply.error) == (208, "fail to verify")
    assert _handshake(client, wrong_private) == 208
    assert _ignored(client, "test_connection")


@pytest.mark.parametrize("params", [None, "verify", "", []])
def test_get_verify_str_accepts_every_known_params_form(
    make_sim: Sim, connect: Connect, params: object
) -> None:
    client = connect(make_sim())
    reply = client.call("get_verify_str", params)  # None: no params key at all
    assert isinstance(reply.result["str"], str)
    assert reply.result["str"]


def test_fw_7_18_answers_unverified_connections(
    make_sim: Sim, connect: Connect, keypair: tuple[bytes, bytes]
) -> None:
    client = connect(make_sim(auth_public_key=keypair[1], firmware="7.18"))
    assert client.call("test_connection").ok
    assert _handshake(client, keypair[0]) == 0


@pytest.mark.parametrize("firmware", ["7.06", "6.70"])
def test_fw_in_the_marker_window_has_no_handshake(
    firmware: str, make_sim: Sim, connect: Connect
) -> None:
    client = connect(make_sim(firmware=firmware))
    assert client.call("get_verify_str", "verify").code == 103
    assert client.call("clear_batch_stack", ["verify"]).ok


def test_old_profile_needs_clear_app_state(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim(firmware="old"))
    assert client.call("get_verify_str").code == 103
    reply = client.call("clear_batch_stack")
    assert (reply.code, reply.error) == (103, "method not found")
    assert client.call("clear_app_state", {"name": "BatchStack"}).result == 0
