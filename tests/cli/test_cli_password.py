"""The server password from the system keyring, from a prompt on a terminal, and never shown.

The keyring is the real ``keyring`` package with an in-memory backend installed through its own
API (``keyring.set_keyring``); the prompt is answered on a real pseudo-terminal that a child
``crowdsky`` process has as its controlling terminal, where ``getpass`` reads it.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

import crowdsky
from crowdsky import session
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.cli import main

SECRET = "k3yr1ng-Pa55"
SRC = Path(crowdsky.__file__).resolve().parents[1]


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that keeps its passwords in a dict (and can be told to fail)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}
        self.broken = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.broken:
            raise RuntimeError("the keyring daemon is gone")
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackCrowdskyServer]:
    monkeypatch.setenv("CROWDSKY_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("CROWDSKY_USERNAME", "ada")
    for name in ("CROWDSKY_PASSWORD", "CROWDSKY_URL"):
        monkeypatch.delenv(name, raising=False)
    session.server_settings().reset()
    with LoopbackCrowdskyServer(tmp_path / "server", users={"ada": SECRET}) as running:
        yield running
    session.server_settings().reset()


def test_the_password_comes_from_the_keyring_and_is_never_shown(
    server: LoopbackCrowdskyServer,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    memory_keyring.set_password("crowdsky", "ada", SECRET)
    assert main(["stacks", "--url", server.url, "-vv"]) == 0
    shown = capsys.readouterr()
    assert SECRET not in shown.out + shown.err
    assert "my_stacks.php -> HTTP 200" in shown.err  # -vv logging was on
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "(in the system keyring)" in out
    assert SECRET not in out
    assert main(["config", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["password"] == "in the system keyring"


def test_a_failing_keyring_is_an_error_not_an_empty_password(
    server: LoopbackCrowdskyServer,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    memory_keyring.broken = True
    assert main(["stacks", "--url", server.url]) == 2
    assert "Could not read the password from the system keyring" in capsys.readouterr().err


def test_off_a_terminal_nothing_is_asked_and_the_error_says_where_to_put_it(
    server: LoopbackCrowdskyServer,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Piped:
        def isatty(self) -> bool:
            return False

        def readline(self) -> str:
            raise AssertionError("nothing may be read from a pipe for the password")

    monkeypatch.setattr(sys, "stdin", Piped())
    assert main(["stacks", "--url", server.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crowdsky: No CrowdSky password for ada")
    assert "$CROWDSKY_PASSWORD" in err
    assert "keyring set crowdsky ada" in err
    assert "configuration file never holds it" in err


def _read_until(fd: int, text: bytes, seen: bytearray, deadline: float) -> None:
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} on the terminal; it showed {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"the terminal closed; it showed {bytes(seen)!r}"
            seen += chunk


def _rest(fd: int) -> bytes:
    """What the terminal still holds once the child has ended."""
    rest = bytearray()
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # closed on the child's side: all was read
            break
        if not chunk:
            break
        rest += chunk
    return bytes(rest)


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """``crowdsky argv`` in a child whose controlling terminal is a new pseudo-terminal."""
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "crowdsky.cli", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,  # no controlling terminal until it opens the pty: getpass does
    )
    os.close(slave)
    return child, master


def test_on_a_terminal_the_password_is_asked_and_not_echoed(
    server: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CROWDSKY_", "PYTEST_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(SRC), *sys.path[1:]]),
        CROWDSKY_USERNAME="ada",
        CROWDSKY_CONFIG=str(tmp_path / "no-config.toml"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",  # nothing stored: ask
    )
    child, master = _on_a_terminal(["stacks", "--url", server.url], env)
    seen = bytearray()
    try:
        deadline = time.monotonic() + 60
        _read_until(master, b"CrowdSky password for ada: ", seen, deadline)
        os.write(master, SECRET.encode() + b"\n")
        status = child.wait(timeout=60)
        seen += _rest(master)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    assert status == 0, bytes(seen)
    assert SECRET.encode() not in seen  # not echoed, not printed
    assert b"\r\n" in seen.split(b"CrowdSky password for ada: ", 1)[1]  # the run went on
