from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from crowdsky.adapters.jsonrpc import (
    ABSENT,
    Reply,
    RsaAuthenticator,
    default_key_path,
    find_key_path,
    load_private_key,
    sign_challenge,
)
from crowdsky.adapters.simulator.auth import verify_signature
from crowdsky.errors import SeestarAuthError, SeestarConnectionError


def pem_body(pem: bytes) -> str:
    """A line from the middle of a PEM: must never appear in a message."""
    return pem.decode().splitlines()[3]


def pkcs1(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class FakeDevice:
    """An in-process RpcCaller with scripted replies (no sockets)."""

    def __init__(self, replies: dict[str, Reply | Exception]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, Any]] = []

    def call_reply(
        self, method: str, params: object = ABSENT, *, timeout: float | None = None
    ) -> Reply:
        self.calls.append((method, params))
        answer = self.replies[method]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(method: str, result: object) -> Reply:
    return Reply(1, method, 0, result, None, {})


def err(method: str, code: int, text: str) -> Reply:
    return Reply(1, method, code, None, text, {})


# -- keys and signatures --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["pkcs8", "pkcs1"])
def test_sign_then_verify(form: str, tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keypair
    path = tmp_path / "key.pem"
    path.write_bytes(private_pem if form == "pkcs8" else pkcs1(private_pem))
    sign = sign_challenge(load_private_key(path), "Zm9vYmFy-ε")
    assert "\n" not in sign
    assert len(base64.b64decode(sign, validate=True)) == 256  # 2048-bit RSA
    assert verify_signature(public_pem, "Zm9vYmFy-ε", sign)
    assert not verify_signature(public_pem, "another challenge", sign)


def test_verify_rejects_other_key_and_bad_base64(
    tmp_path: Path, keypair: tuple[bytes, bytes], other_keypair: tuple[bytes, bytes]
) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(keypair[0])
    sign = sign_challenge(load_private_key(path), "c")
    assert not verify_signature(other_keypair[1], "c", sign)
    assert not verify_signature(keypair[1], "c", "not base64!!")
    assert not verify_signature(b"not a pem", "c", sign)


def test_garbled_key_message_names_path_not_content(
    tmp_path: Path, keypair: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    private_pem = keypair[0]
    lines = private_pem.decode().splitlines()
    path = tmp_path / "garbled.pem"
    path.write_text("\n".join(lines[:5] + lines[7:]))  # two lines missing
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SeestarAuthError, match="not a PEM private key") as caught:
        load_private_key(path)
    text = str(caught.value) + repr(caught.value) + caplog.text
    assert str(path) in str(caught.value)
    assert pem_body(private_pem) not in text
    assert lines[5] not in text


def test_encrypted_key_is_explained(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    key = serialization.load_pem_private_key(keypair[0], password=None)
    path = tmp_path / "enc.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(SeestarAuthError, match="password-protected"):
        load_private_key(path)


def test_missing_and_unreadable_key(tmp_path: Path) -> None:
    with pytest.raises(SeestarAuthError, match="does not exist"):
        load_private_key(tmp_path / "absent.pem")
    with pytest.raises(SeestarAuthError, match="cannot be read"):
        load_private_key(tmp_path)  # a directory


def test_key_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    default = tmp_path / "cfg" / "crowdsky" / "seestar_key.pem"
    assert default_key_path() == default
    assert find_key_path(env={}) is None  # default absent
    default.parent.mkdir(parents=True)
    default.write_text("x")
    assert find_key_path(env={}) == default
    assert find_key_path(env={"SEESTAR_KEY_PATH": "/e.pem"}) == Path("/e.pem")
    assert find_key_path("/x.pem", env={"SEESTAR_KEY_PATH": "/e.pem"}) == Path("/x.pem")


def test_authenticator_repr_shows_only_the_path(
    key_file: Path, keypair: tuple[bytes, bytes]
) -> None:
    auth = RsaAuthenticator(key_file)
    auth.key()
    assert repr(auth) == f"RsaAuthenticator(key_path={str(key_file)!r})"
    assert pem_body(keypair[0]) not in repr(auth)


# -- the handshake against a fake device ----------------------------------------------------------


def test_handshake_sends_challenge_and_signature(
    key_file: Path, keypair: tuple[bytes, bytes]
) -> None:
    device = FakeDevice(
        {
            "get_verify_str": ok("get_verify_str", {"str": "abc123"}),
            "verify_client": ok("verify_client", 0),
            "pi_is_verified": ok("pi_is_verified", True),
        }
    )
    assert RsaAuthenticator(key_file).authenticate(device) is True
    [(m1, p1), (m2, p2), (m3, p3)] = device.calls
    assert (m1, p1) == ("get_verify_str", ABSENT)
    assert m2 == "verify_client"
    assert p2["data"] == "abc123"
    assert verify_signature(keypair[1], "abc123", p2["sign"])
    assert (m3, p3) == ("pi_is_verified", ABSENT)


def test_103_means_no_authentication(tmp_path: Path) -> None:
    device = FakeDevice({"get_verify_str": err("get_verify_str", 103, "method not found")})
    assert RsaAuthenticator(tmp_path / "none.pem").authenticate(device) is False
    assert len(device.calls) == 1


def test_empty_challenge_means_no_authentication(tmp_path: Path) -> None:
    device = FakeDevice({"get_verify_str": ok("get_verify_str", {"str": ""})})
    assert RsaAuthenticator(tmp_path / "none.pem").authenticate(device) is False


def test_no_key_anywhere_continues_unverified_when_the_device_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Firmware 7.18-7.31 offers the handshake without insisting: the probe is answered.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    device = FakeDevice(
        {
            "get_verify_str": ok("get_verify_str", {"str": "c"}),
            "test_connection": ok("test_connection", "server connected!"),
        }
    )
    assert RsaAuthenticator(env={}).authenticate(device) is False
    assert [method for method, _ in device.calls] == ["get_verify_str", "test_connection"]
    assert "SEESTAR_KEY_PATH" in caplog.text


def test_no_key_and_a_silent_device_is_a_missing_key_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Firmware 7.32+ ignores every command of an unverified socket: say so, not "busy".
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    silence = SeestarConnectionError("did not answer 'test_connection' within 3 s")
    device = FakeDevice(
        {"get_verify_str": ok("get_verify_str", {"str": "c"}), "test_connection": silence}
    )
    with pytest.raises(SeestarAuthError, match="no key was given") as caught:
        RsaAuthenticator(env={}).authenticate(device)
    assert "SEESTAR_KEY_PATH" in str(caught.value)
    assert "busy" not in str(caught.value)


def test_a_named_key_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    device = FakeDevice({"get_verify_str": ok("get_verify_str", {"str": "c"})})
    with pytest.raises(SeestarAuthError):
        RsaAuthenticator(tmp_path / "missing.pem").authenticate(device)


def test_rejected_signature(key_file: Path) -> None:
    device = FakeDevice(
        {
            "get_verify_str": ok("get_verify_str", {"str": "c"}),
            "verify_client": err("verify_client", 207, "fail to operate"),
        }
    )
    with pytest.raises(SeestarAuthError, match=r"signature rejected.*207"):
        RsaAuthenticator(key_file).authenticate(device)


@pytest.mark.parametrize(
    "answer",
    [
        ok("pi_is_verified", {"is_verified": True}),
        ok("pi_is_verified", False),
        err("pi_is_verified", 103, "method not found"),
        SeestarConnectionError("no answer"),
    ],
)
def test_pi_is_verified_is_informational(key_file: Path, answer: Reply | Exception) -> None:
    device = FakeDevice(
        {
            "get_verify_str": ok("get_verify_str", "bare-challenge"),
            "verify_client": ok("verify_client", 0),
            "pi_is_verified": answer,
        }
    )
    assert RsaAuthenticator(key_file).authenticate(device) is True
