"""JSON-RPC bytes from the device (and, in the simulator, from a client) and the handshake.

Whatever arrives, the decoders give replies, events, requests or :class:`Problem` values, and
everything they give can be answered: a decoded id or value always encodes again.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crowdsky.adapters.jsonrpc import (
    Decoder,
    Problem,
    Reply,
    Request,
    RequestDecoder,
    RsaAuthenticator,
    encode_event,
    encode_reply,
    load_private_key,
    sign_challenge,
)
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.errors import CrowdskyError, SeestarAuthError

FUZZ = settings(max_examples=80)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
frames = st.dictionaries(
    st.sampled_from(["id", "method", "result", "code", "error", "Event", "Timestamp", "params"]),
    json_values,
    max_size=6,
).map(lambda frame: json.dumps(frame).encode() + b"\r\n")
nasty = st.sampled_from(
    [
        b'{"id":1e999,"method":"x","result":0}\r\n',
        b'{"id":1,"method":"x","result":-1E400}\r\n',
        b'{"id":NaN,"method":"x"}\r\n',
        b'{"Event":"PiStatus","temp":Infinity}\r\n',
        b'{"id":1,"method":"x","result":' + b"[" * 900 + b"]" * 900 + b"}\r\n",
        b'{"id":1,"method":"x","params":' + b"[" * 5_000 + b"}\r\n",
        b'{"id":1,"method":"x","result":' + b"9" * 5000 + b"}\r\n",
    ]
)
streams = st.lists(st.one_of(frames, nasty, st.binary(max_size=60)), max_size=6).map(b"".join)


def _decode(decoder: Decoder | RequestDecoder, data: bytes, cut: int) -> list[Any]:
    decoder.receive_data(data[:cut])
    decoder.receive_data(data[cut:])
    return list(decoder)


def _reencode(message: object) -> None:
    """What the other side does with a message: echo its id and values in a frame."""
    if isinstance(message, Reply):
        encode_reply(message.id, message.method, message.result, timestamp=0.0)
    elif isinstance(message, Request):
        encode_reply(message.id, message.method, message.params, timestamp=0.0)
    elif not isinstance(message, Problem):
        encode_event(message.name, message.fields, timestamp=0.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "line", [b'{"id":1e999,"result":0}', b'{"id":1,"method":"x","result":1e999}']
)
def test_a_number_json_cannot_hold_is_a_problem(line: bytes) -> None:
    for decoder in (Decoder(), RequestDecoder()):
        decoder.receive_data(line + b"\r\n")
        [message] = list(decoder)
        assert isinstance(message, Problem)


def test_deep_nesting_is_a_problem_not_a_recursion() -> None:
    line = b'{"id":1,"method":"x","result":' + b"[" * 900 + b"]" * 900 + b"}\r\n"
    for decoder in (Decoder(), RequestDecoder()):
        decoder.receive_data(line)
        [message] = list(decoder)
        assert isinstance(message, Problem)
        assert "nested" in message.reason


def test_ordinary_nesting_still_decodes() -> None:
    decoder = Decoder()
    decoder.receive_data(b'{"id":1,"result":' + b"[" * 20 + b"]" * 20 + b"}\r\n")
    [message] = list(decoder)
    assert isinstance(message, Reply)


@FUZZ
@given(streams, st.integers(min_value=0, max_value=200))
def test_the_client_decoder_gives_messages_that_can_be_echoed(data: bytes, cut: int) -> None:
    for message in _decode(Decoder(), data, cut):
        _reencode(message)


@FUZZ
@given(streams, st.integers(min_value=0, max_value=200))
def test_the_device_decoder_gives_requests_that_can_be_answered(data: bytes, cut: int) -> None:
    for message in _decode(RequestDecoder(), data, cut):
        _reencode(message)


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> Any:
    private, _ = generate_test_keypair(1024)
    path = tmp_path_factory.mktemp("key") / "key.pem"
    path.write_bytes(private)
    return path


def test_a_challenge_that_is_no_text_is_an_auth_error(key_path: Any) -> None:
    with pytest.raises(SeestarAuthError, match="challenge"):
        sign_challenge(load_private_key(key_path), "\ud800")


class _Device:
    def __init__(self, challenge: object) -> None:
        self.challenge = challenge

    def call_reply(
        self, method: str, params: object = None, *, timeout: float | None = None
    ) -> Reply:
        result: object = {"str": self.challenge} if method == "get_verify_str" else 0
        return Reply(id=1, method=method, code=0, result=result, error=None, raw={})


@settings(max_examples=40)
@given(st.one_of(st.text(max_size=40), json_values))
@example("\ud800")
def test_the_handshake_takes_any_challenge(key_path: Any, challenge: object) -> None:
    with contextlib.suppress(CrowdskyError):
        RsaAuthenticator(key_path).authenticate(_Device(challenge))
