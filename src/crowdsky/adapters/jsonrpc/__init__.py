"""The Seestar's JSON-RPC layer: a sans-I/O codec, a persistent connection, authentication.

* :mod:`~crowdsky.adapters.jsonrpc.codec` — frames in and out, no sockets (client and device
  side, so the simulator speaks the same format).
* :mod:`~crowdsky.adapters.jsonrpc.connection` — :class:`JsonRpcConnection`: one TCP socket,
  fresh ids, events, heartbeat, reconnect once.
* :mod:`~crowdsky.adapters.jsonrpc.auth` — the firmware 7.18+ RSA handshake.
"""

from __future__ import annotations

from crowdsky.adapters.jsonrpc.auth import (
    KEY_ENV_VAR,
    RpcCaller,
    RsaAuthenticator,
    default_key_path,
    find_key_path,
    load_private_key,
    sign_challenge,
)
from crowdsky.adapters.jsonrpc.codec import (
    ABSENT,
    DEFAULT_MAX_FRAME,
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
    parse_device_frame,
)
from crowdsky.adapters.jsonrpc.connection import (
    DEFAULT_PORT,
    Authenticator,
    EventCallback,
    JsonRpcConnection,
)

__all__ = [
    "ABSENT",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_PORT",
    "KEY_ENV_VAR",
    "Authenticator",
    "Decoder",
    "Event",
    "EventCallback",
    "JsonRpcConnection",
    "Problem",
    "Reply",
    "Request",
    "RequestDecoder",
    "RpcCaller",
    "RsaAuthenticator",
    "default_key_path",
    "encode_call",
    "encode_error",
    "encode_event",
    "encode_reply",
    "find_key_path",
    "format_timestamp",
    "load_private_key",
    "parse_device_frame",
    "sign_challenge",
]
