from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdsky.adapters.jsonrpc import (
    ABSENT,
    Decoder,
    Event,
    Problem,
    Reply,
    Request,
    RequestDecoder,
    encode_call,
    encode_error,
    encode_event,
    encode_reply,
    format_timestamp,
)

# -- golden frames from the protocol reference (§1.4, §1.5) ---------------------------------------

REAL_REPLY = (
    b'{"jsonrpc":"2.0","Timestamp":"4387.986091920","method":"test_connection",'
    b'"result":"server connected!","code":0,"id":100010}\r\n'
)
REAL_ERROR = (
    b'{"jsonrpc":"2.0","Timestamp":"5152.779085846","method":"iscope_start_stack",'
    b'"error":"stack is already running","code":259,"id":100037}\r\n'
)
REAL_EVENT = b'{"Event":"PiStatus","Timestamp":"4515.241781720","temp":44.5}\r\n'
GREEK_EVENT = (
    b'{"Event":"View","Timestamp":"5137.340778002","state":"working",'
    b'"target_name":"\\u03b5 Cnc","target_ra_dec":[8.691287,19.514885],"route":[]}\r\n'
)


def decode_all(*chunks: bytes, max_frame: int | None = None) -> list[Any]:
    decoder = Decoder() if max_frame is None else Decoder(max_frame)
    out: list[Any] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        out.extend(decoder)
    return out


def test_real_success_reply() -> None:
    [reply] = decode_all(REAL_REPLY)
    assert isinstance(reply, Reply)
    assert reply.ok
    assert (reply.id, reply.method, reply.code) == (100010, "test_connection", 0)
    assert reply.result == "server connected!"
    assert reply.error is None
    assert reply.timestamp == "4387.986091920"


def test_real_error_reply_has_no_result_key() -> None:
    [reply] = decode_all(REAL_ERROR)
    assert not reply.ok
    assert (reply.code, reply.error, reply.result) == (259, "stack is already running", None)
    assert "result" not in reply.raw


def test_events_carry_fields_without_event_and_timestamp_keys() -> None:
    [event] = decode_all(REAL_EVENT)
    assert event == Event("PiStatus", {"temp": 44.5}, "4515.241781720")
    assert event.get("temp") == 44.5
    assert event.get("battery_capacity") is None


def test_non_ascii_escapes_are_decoded() -> None:
    [event] = decode_all(GREEK_EVENT)
    assert event.get("target_name") == "ε Cnc"


def test_several_frames_in_one_chunk_and_one_frame_over_many_chunks() -> None:
    stream = REAL_EVENT + REAL_REPLY + REAL_ERROR
    assert [type(m) for m in decode_all(stream)] == [Event, Reply, Reply]
    one_byte_chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_all(*one_byte_chunks) == decode_all(stream)


def test_nothing_comes_out_before_the_line_ends() -> None:
    decoder = Decoder()
    decoder.receive_data(REAL_REPLY[:-1])  # CR arrived, LF not yet
    assert decoder.next_message() is None
    decoder.receive_data(b"\n")
    assert isinstance(decoder.next_message(), Reply)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"jsonrpc":"2.0"}', "neither a reply"),
        (b'{"x": "\xff\xfe"}', "malformed JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
    ],
)
def test_malformed_lines_are_reported_and_skipped(line: bytes, reason: str) -> None:
    out = decode_all(REAL_EVENT + line + b"\r\n" + REAL_REPLY)
    assert [type(m) for m in out] == [Event, Problem, Reply]
    assert out[1].reason.startswith(reason)
    assert len(out[1].line_excerpt) <= 80


def test_blank_lines_are_ignored() -> None:
    assert [type(m) for m in decode_all(b"\r\n  \r\n" + REAL_REPLY + b"\r\n")] == [Reply]


def test_oversized_frame_is_skipped_without_buffering_it_all() -> None:
    huge = b'{"Event":"Annotate","blob":"' + b"x" * 5000 + b'"}\r\n'
    chunks = [REAL_EVENT, *(huge[i : i + 700] for i in range(0, len(huge), 700)), REAL_REPLY]
    out = decode_all(*chunks, max_frame=1000)
    assert [type(m) for m in out] == [Event, Problem, Reply]
    assert "oversized" in out[1].reason


def test_frame_just_at_the_limit_passes() -> None:
    frame = REAL_EVENT.removesuffix(b"\r\n")
    out = decode_all(frame[:10], frame[10:] + b"\r", b"\n", max_frame=len(frame))
    assert [type(m) for m in out] == [Event]
    assert "oversized" in decode_all(REAL_EVENT, max_frame=len(frame) - 1)[0].reason


def test_lf_only_line_ends_are_tolerated() -> None:
    assert [type(m) for m in decode_all(REAL_REPLY.replace(b"\r\n", b"\n"))] == [Reply]


def test_reply_without_code_but_with_error_is_not_ok() -> None:
    [reply] = decode_all(b'{"id": 3, "error": "odd"}\r\n')
    assert not reply.ok
    assert reply.method == ""


# -- encoders ---------------------------------------------------------------------------------


def test_encode_call_omits_absent_params_but_sends_null() -> None:
    assert json.loads(encode_call(1, "get_albums")) == {"id": 1, "method": "get_albums"}
    assert json.loads(encode_call(2, "m", None)) == {"id": 2, "method": "m", "params": None}
    assert json.loads(encode_call(3, "m", ["gain", 80]))["params"] == ["gain", 80]
    assert encode_call(4, "m", ABSENT).endswith(b'"m"}\r\n')


def test_encode_call_escapes_non_ascii() -> None:
    frame = encode_call(5, "iscope_start_view", {"target_name": "ε Cnc"})
    assert b"\\u03b5 Cnc" in frame
    assert frame.count(b"\r\n") == 1


def test_device_shapes_match_real_frames_byte_for_byte() -> None:
    reply = encode_reply(100010, "test_connection", "server connected!", timestamp="4387.986091920")
    error = encode_error(
        100037, "iscope_start_stack", 259, "stack is already running", timestamp="5152.779085846"
    )
    event = encode_event("PiStatus", {"temp": 44.5}, timestamp="4515.241781720")
    assert (reply, error, event) == (REAL_REPLY, REAL_ERROR, REAL_EVENT)


def test_timestamps_have_nine_decimals() -> None:
    assert format_timestamp(5137.26636074) == "5137.266360740"
    assert json.loads(encode_event("X", {}, timestamp=1.5))["Timestamp"] == "1.500000000"


def test_request_decoder_keeps_any_id_and_knows_whether_params_were_sent() -> None:
    decoder = RequestDecoder()
    decoder.receive_data(
        encode_call(1, "get_verify_str")
        + b'{"id": "abc", "method": "m", "params": null}\r\n'
        + b'{"id": [1], "verify": true, "method": "m", "params": ["verify"]}\r\n'
        + b'{"id": 4}\r\n'
    )
    first, second, third, fourth = list(decoder)
    assert first == Request(1, "get_verify_str", None, False, {})
    assert (second.id, second.params, second.has_params) == ("abc", None, True)
    assert third.id == [1]
    assert third.raw["verify"] is True
    assert isinstance(fourth, Problem)


# -- property: any byte split of any stream yields every message once, in order ----------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
methods = st.text(min_size=1, max_size=20)
timestamps = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def device_messages(draw: st.DrawFn) -> tuple[bytes, Reply | Event]:
    kind = draw(st.sampled_from(["reply", "error", "event"]))
    ts = format_timestamp(draw(timestamps))
    if kind == "event":
        fields = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
        fields = {k: v for k, v in fields.items() if k not in ("Event", "Timestamp")}
        name = draw(st.text(min_size=1, max_size=12))
        return encode_event(name, fields, timestamp=ts), Event(name, fields, ts)
    request_id = draw(st.integers(min_value=0, max_value=2**40))
    method = draw(methods)
    if kind == "reply":
        result = draw(json_values)
        frame = encode_reply(request_id, method, result, timestamp=ts)
        return frame, Reply(request_id, method, 0, result, None, {}, ts)
    code = draw(st.integers(min_value=1, max_value=600))
    text = draw(st.text(max_size=20))
    frame = encode_error(request_id, method, code, text, timestamp=ts)
    return frame, Reply(request_id, method, code, None, text, {}, ts)


@settings(deadline=None)
@given(
    messages=st.lists(device_messages(), max_size=12),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
    garbage_at=st.none() | st.integers(min_value=0),
)
def test_any_split_yields_every_message_once_in_order(
    messages: list[tuple[bytes, Reply | Event]], cuts: list[int], garbage_at: int | None
) -> None:
    frames = [frame for frame, _ in messages]
    if garbage_at is not None:
        frames.insert(garbage_at % (len(frames) + 1), b"}{ garbage \xff\r\n")
    stream = b"".join(frames)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    out = decode_all(*chunks)
    good = [m for m in out if not isinstance(m, Problem)]
    assert good == [expected for _, expected in messages]
    assert len(out) - len(good) == (garbage_at is not None)


@st.composite
def lines_with_garbage(draw: st.DrawFn) -> tuple[bytes, list[type | Reply | Event], int]:
    """Valid frames and garbage lines mixed; garbage starts with '#', never valid JSON."""
    stream = b""
    expected: list[type | Reply | Event] = []
    max_frame = draw(st.integers(min_value=1, max_value=300))
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        if draw(st.booleans()):
            frame, message = draw(device_messages())
            stream += frame
            expected.append(message if len(frame) - 2 <= max_frame else Problem)
        else:
            junk = b"#" + draw(st.binary(max_size=400)).replace(b"\n", b"")
            stream += junk + b"\r\n"
            expected.append(Problem)
    return stream, expected, max_frame


@settings(deadline=None)
@given(case=lines_with_garbage(), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_garbage_and_oversized_lines_never_desynchronise(
    case: tuple[bytes, list[type | Reply | Event], int], cuts: list[int]
) -> None:
    stream, expected, max_frame = case
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    out = decode_all(*chunks, max_frame=max_frame)
    assert [Problem if isinstance(m, Problem) else m for m in out] == expected


@given(
    request_id=st.integers(min_value=0, max_value=2**53),
    method=methods,
    params=st.just(ABSENT) | json_values,
)
def test_calls_round_trip_through_the_device_side_decoder(
    request_id: int, method: str, params: object
) -> None:
    decoder = RequestDecoder()
    decoder.receive_data(encode_call(request_id, method, params))
    [request] = list(decoder)
    assert isinstance(request, Request)
    assert (request.id, request.method) == (request_id, method)
    assert request.has_params == (params is not ABSENT)
    assert request.params == (None if params is ABSENT else params)


def test_public_names_and_doctests() -> None:
    import doctest

    from crowdsky.adapters import jsonrpc
    from crowdsky.adapters.jsonrpc import codec

    assert sorted(jsonrpc.__all__) == sorted(set(jsonrpc.__all__))
    assert all(hasattr(jsonrpc, name) for name in jsonrpc.__all__)
    assert doctest.testmod(codec).failed == 0


def test_non_json_numbers_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="JSON"):
        encode_call(1, "scope_goto", [float("nan"), 0.0])
