from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.jsonrpc import Event, JsonRpcConnection, Request, RsaAuthenticator
from crowdsky.errors import SeestarAuthError, SeestarConnectionError, SeestarRpcError

try:
    from .scripted_server import ScriptedServer, ServerConn
except ImportError:
    from scripted_server import ScriptedServer, ServerConn  # type: ignore[no-redef]

MakeServer = Callable[..., ScriptedServer]
MakeConn = Callable[..., JsonRpcConnection]


def test_call_returns_result_and_sends_params(make_server: MakeServer, make_conn: MakeConn) -> None:
    server = make_server()
    conn = make_conn(server)
    assert conn.call("get_x", {"a": [1, "ε"]}) == {"method": "get_x", "params": {"a": [1, "ε"]}}
    assert conn.call("test_connection") == "server connected!"
    [(_, first), (_, second)] = server.requests
    assert first.has_params
    assert not second.has_params
    assert first.id != second.id


def test_error_reply_raises_rpc_error(make_server: MakeServer, make_conn: MakeConn) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        conn.error(request, 259, "stack is already running")

    conn = make_conn(make_server(handler))
    with pytest.raises(SeestarRpcError) as caught:
        conn.call("iscope_start_stack")
    assert (caught.value.method, caught.value.code) == ("iscope_start_stack", 259)
    assert caught.value.message == "stack is already running"
    reply = conn.call_reply("iscope_start_stack")
    assert not reply.ok
    assert reply.error == "stack is already running"


def test_events_before_and_between_reply_frames(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        # Side-effect event first, then an event and half the reply in one write, then the rest.
        conn.event("View", state="cancel")
        reply_frame = b'{"jsonrpc":"2.0","Timestamp":"1.0","method":"iscope_stop_view",'
        conn.send_raw(conn.event_bytes("PiStatus", temp=44.5) + reply_frame)
        time.sleep(0.01)
        conn.send_raw(b'"result":0,"code":0,"id":' + str(request.id).encode() + b"}\r\n")

    seen: list[Event] = []
    conn = make_conn(make_server(handler), on_event=seen.append)
    assert conn.call("iscope_stop_view") == 0
    assert [e.name for e in seen] == ["View", "PiStatus"]
    # The events arrived before the reply; waiting afterwards still finds them.
    view = conn.wait_event(lambda e: e.name == "View", timeout=1)
    assert view is not None
    assert view.get("state") == "cancel"
    assert conn.wait_event(timeout=0) is not None  # the PiStatus
    assert conn.wait_event(timeout=0) is None
    assert conn.events_received == 2


def test_late_reply_for_an_old_id_is_not_taken_by_the_next_call(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        if request.method == "slow":
            conn.server.state["slow"] = request
            conn.event("PiStatus", temp=40.0)  # alive, just not answering
        elif request.method == "next":
            conn.reply(conn.server.state["slow"], "stale answer to slow")
            conn.reply(request, "fresh")
        else:
            conn.reply(request, "pong")

    server = make_server(handler)
    conn = make_conn(server)
    assert conn.call("ping") == "pong"
    with pytest.raises(SeestarConnectionError, match="did not answer 'slow'"):
        conn.call("slow", timeout=0.2)
    assert conn.call("next") == "fresh"
    assert conn.late_replies == 1
    assert server.connections == 1


def test_silent_socket_after_timeout_is_replaced(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        if request.method != "blackhole":
            conn.reply(request, conn.index)

    server = make_server(handler)
    conn = make_conn(server)
    assert conn.generation == 0
    assert conn.call("ping") == 1
    assert conn.generation == 1
    with pytest.raises(SeestarConnectionError, match="did not answer"):
        conn.call("blackhole", timeout=0.2)
    assert conn.generation == 1  # retired, not replaced yet
    assert conn.call("ping") == 2  # a half-open socket is not reused
    assert conn.reconnects == 1
    assert conn.generation == 2


def test_drop_during_call_reconnects_reauthenticates_and_retries_once(
    make_server: MakeServer,
    make_conn: MakeConn,
    keypair: tuple[bytes, bytes],
    key_file: Path,
) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        if conn.index == 1:
            conn.drop()
        else:
            conn.reply(request, 42)

    server = make_server(handler, public_pem=keypair[1], require_auth=True)
    conn = make_conn(server, authenticator=RsaAuthenticator(key_file))
    assert conn.call("get_x") == 42
    assert server.connections == 2
    assert server.verified == 2  # authentication is per socket
    assert server.count("get_x") == 2
    assert conn.reconnects == 1
    assert conn.generation == 2  # per-socket device state is gone
    assert conn.verified


def test_drop_without_retry_raises(make_server: MakeServer, make_conn: MakeConn) -> None:
    server = make_server(lambda conn, request: conn.drop())
    conn = make_conn(server)
    with pytest.raises(SeestarConnectionError, match="retry=False") as caught:
        conn.call("start_batch_stack", retry=False)
    assert caught.value.__cause__ is not None
    assert server.count("start_batch_stack") == 1


def test_second_drop_gives_up(make_server: MakeServer, make_conn: MakeConn) -> None:
    server = make_server(lambda conn, request: conn.drop())
    conn = make_conn(server)
    with pytest.raises(SeestarConnectionError, match="twice"):
        conn.call("get_x")
    assert server.count("get_x") == 2


def test_device_closing_an_idle_socket_is_transparent(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    server = make_server(idle_timeout=0.3)
    conn = make_conn(server, heartbeat_interval=0)
    conn.call("ping")
    assert server.wait_for(lambda: server.idle_drops == 1)
    assert conn.call("ping") == {"method": "ping", "params": None}
    assert server.connections == 2


def test_heartbeat_keeps_an_idle_connection_open(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    server = make_server(idle_timeout=0.5)
    conn = make_conn(server, heartbeat_interval=0.1)
    conn.call("ping")
    # Stay idle for well over the device's drop time (about 12 heartbeats).
    assert server.wait_for(lambda: server.count("test_connection") >= 12)
    assert conn.call("ping") == {"method": "ping", "params": None}
    assert server.idle_drops == 0
    assert server.connections == 1
    assert conn.late_replies == 0  # heartbeat replies are not "late"


def test_unauthenticated_silence_is_reported_as_missing_key(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    server = make_server(require_auth=True, greeting=(("PiStatus", {"temp": 41.0}),))
    conn = make_conn(server, timeout=0.3)
    with pytest.raises(SeestarAuthError) as caught:
        conn.call("get_albums")
    message = str(caught.value)
    assert "key_path=" in message
    assert "SEESTAR_KEY_PATH" in message
    assert server.ignored == 1


def test_silence_without_events_mentions_the_key_as_a_possibility(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    server = make_server(require_auth=True)  # no events either
    conn = make_conn(server, timeout=0.2)
    with pytest.raises(SeestarConnectionError, match="SEESTAR_KEY_PATH") as caught:
        conn.call("get_albums")
    assert not isinstance(caught.value, SeestarAuthError)


def test_signature_verified(
    make_server: MakeServer, make_conn: MakeConn, keypair: tuple[bytes, bytes], key_file: Path
) -> None:
    server = make_server(public_pem=keypair[1], require_auth=True, verified_shape="obj")
    conn = make_conn(server, authenticator=RsaAuthenticator(key_file))
    conn.connect()
    assert conn.verified
    assert conn.call("get_albums") == {"method": "get_albums", "params": None}
    methods = [r.method for _, r in server.requests]
    assert methods == ["get_verify_str", "verify_client", "pi_is_verified", "get_albums"]


def test_bare_string_challenge_is_accepted(
    make_server: MakeServer, make_conn: MakeConn, keypair: tuple[bytes, bytes], key_file: Path
) -> None:
    server = make_server(public_pem=keypair[1], require_auth=True, challenge_shape="bare")
    conn = make_conn(server, authenticator=RsaAuthenticator(key_file))
    assert conn.call("test_connection") == "server connected!"
    assert server.verified == 1


def test_signature_rejected(
    make_server: MakeServer,
    make_conn: MakeConn,
    other_keypair: tuple[bytes, bytes],
    key_file: Path,
) -> None:
    server = make_server(public_pem=other_keypair[1], require_auth=True)
    conn = make_conn(server, authenticator=RsaAuthenticator(key_file))
    with pytest.raises(SeestarAuthError, match="signature rejected"):
        conn.call("get_albums")
    assert not conn.connected
    assert server.count("get_albums") == 0


def test_old_firmware_needs_no_key(
    make_server: MakeServer, make_conn: MakeConn, tmp_path: Path
) -> None:
    server = make_server(old_firmware=True)
    conn = make_conn(server, authenticator=RsaAuthenticator(tmp_path / "no-such-key.pem"))
    assert conn.call("get_albums") == {"method": "get_albums", "params": None}
    assert not conn.verified


def test_missing_key_on_new_firmware(
    make_server: MakeServer, make_conn: MakeConn, tmp_path: Path
) -> None:
    server = make_server(public_pem=b"unused", require_auth=True)
    conn = make_conn(server, authenticator=RsaAuthenticator(tmp_path / "no-such-key.pem"))
    with pytest.raises(SeestarAuthError, match="does not exist"):
        conn.connect()


def test_refused_connection_names_the_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        JsonRpcConnection("127.0.0.1", port, connect_timeout=1) as conn,
        pytest.raises(SeestarConnectionError, match=rf"127\.0\.0\.1:{port}.*refused") as caught,
    ):
        conn.call("test_connection")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_concurrent_calls_get_their_own_replies(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    conn = make_conn(make_server())
    results: dict[int, Any] = {}

    def worker(n: int) -> None:
        results[n] = conn.call("echo", [n])["params"]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [n] for n in range(16)}


def test_garbage_frame_is_skipped(make_server: MakeServer, make_conn: MakeConn) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        conn.send_raw(b"\xff{not json}\r\n")
        conn.reply(request, "fine")

    conn = make_conn(make_server(handler))
    assert conn.call("x") == "fine"
    assert conn.problems == 1


def test_failing_listener_does_not_stop_the_reader(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    def handler(conn: ServerConn, request: Request) -> None:
        conn.event("PiStatus", temp=1.0)
        conn.reply(request, "ok")

    def bad_listener(event: Event) -> None:
        raise RuntimeError("listener bug")

    conn = make_conn(make_server(handler), on_event=bad_listener)
    assert conn.call("a") == "ok"
    assert conn.call("b") == "ok"
    assert len(conn.drain_events()) == 2


def test_close_stops_threads_wakes_waiters_and_refuses_calls(
    make_server: MakeServer, make_conn: MakeConn
) -> None:
    conn = make_conn(make_server(), heartbeat_interval=0.05)
    conn.call("ping")
    waited: list[Event | None] = []
    waiter = threading.Thread(target=lambda: waited.append(conn.wait_event()))
    waiter.start()
    conn.close()
    waiter.join()
    assert waited == [None]
    assert not [t for t in threading.enumerate() if t.name.endswith(conn.address)]
    with pytest.raises(SeestarConnectionError, match="closed"):
        conn.call("ping")
    conn.close()  # idempotent
