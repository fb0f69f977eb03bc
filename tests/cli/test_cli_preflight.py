"""Pre-flight and a missing key, through ``main([...])`` against the network simulator."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.jsonrpc import JsonRpcConnection, RsaAuthenticator
from crowdsky.adapters.simulator.main import run_simulator
from crowdsky.cli import main

#: Two complete 15-minute blocks of IC 434 (2026-02-27 20:15 and 20:30 UTC), 25 subs each.
FIRST_SUB = datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC)


def _small_night(root: Path, targets: tuple[str, ...] = ("IC 434", "M 42")) -> None:
    device = FakeSeestar(storage=DirectoryStorage(root))
    for target in targets:
        for i in range(50):
            add_sub(device, target, 10.0, "LP", FIRST_SUB + i * timedelta(seconds=36), 85.25, -2.46)


@contextlib.contextmanager
def _serve(tmp_path: Path, **options: object) -> Iterator[tuple[list[str], Path]]:
    """The simulator in a thread (auth on) over a small night; yield its suggested arguments."""
    root = tmp_path / "emmc"
    _small_night(root)
    out = io.StringIO()
    stop = threading.Event()
    kwargs: dict[str, object] = {
        "root": root,
        "rpc_port": 0,
        "http_port": 0,
        "auth_key_out": tmp_path / "key.pem",
        "seconds_per_frame": 0.0,
        "setup_seconds": 0.0,
        "pistatus_interval": None,
        "out": out,
        "stop": stop,
        **options,
    }
    thread = threading.Thread(target=run_simulator, kwargs=kwargs)
    thread.start()
    try:
        for _ in range(600):
            if "Try:" in out.getvalue():
                break
            time.sleep(0.05)
        suggestion = re.search(r"crowdsky stack (.*)$", out.getvalue(), re.M)
        assert suggestion, out.getvalue()
        yield shlex.split(suggestion[1]), root
    finally:
        stop.set()
        thread.join()


def _without(args: list[str], option: str) -> list[str]:
    at = args.index(option)
    return args[:at] + args[at + 2 :]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def _batch_outputs(root: Path) -> list[str]:
    return sorted(
        p.name for p in (root / "MyWorks").rglob("*") if p.name.startswith(("DSO_", "CrowdSky_"))
    )


def test_an_unreachable_smb_share_stops_before_any_block_is_stacked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _serve(tmp_path) as (args, root):
        no_share = [*_without(args, "--share"), "--smb-port", str(_free_port())]
        assert main(["stack", *no_share]) == 2
        captured = capsys.readouterr()
        assert _batch_outputs(root) == []  # before: one DSO_Stacked_* per target
        assert "Stacked" not in captured.out
        lines = captured.err.splitlines()
        assert len(lines) == 1
        assert "--share DIR" in lines[0]
        assert "--smb-port" in lines[0]
        assert "MountedShareFileOps" not in lines[0]


def test_the_same_run_with_the_share_stacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _serve(tmp_path) as (args, root):
        assert main(["stack", *args]) == 0
        assert "Stacked: 4 Failed: 0 Skipped: 0 across 2 targets" in capsys.readouterr().out
        assert len([n for n in _batch_outputs(root) if n.endswith(".fit")]) == 4


@pytest.mark.parametrize("firmware", ["7.75", "7.32"])
def test_a_missing_key_is_named_with_the_option_that_gives_it(
    firmware: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SEESTAR_KEY_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no default key either
    with _serve(tmp_path, firmware=firmware) as (args, _):
        assert main(["targets", *_without(args, "--key")]) == 2
    err = capsys.readouterr().err
    assert "no key was given" in err
    assert "--key FILE" in err
    assert "SEESTAR_KEY_PATH" in err
    assert "busy" not in err
    assert "key_path=" not in err
    assert len(err.splitlines()) == 1


@contextlib.contextmanager
def _stack_elsewhere(args: list[str]) -> Iterator[None]:
    """Another client's batch stack on the simulator, running until the block ends."""
    port = int(args[args.index("--port") + 1])
    key = args[args.index("--key") + 1]
    with JsonRpcConnection("127.0.0.1", port, authenticator=RsaAuthenticator(key)) as other:
        other.call(
            "set_batch_stack_setting",
            {
                "path": "MyWorks/M 42_sub",
                "files": [{"name": "MyWorks/M 42_sub/" + n} for n in _sub_names(args)],
            },
        )
        other.call("start_batch_stack")
        try:
            yield
        finally:
            other.call("stop_batch_stack")


def _sub_names(args: list[str]) -> list[str]:
    share = Path(args[args.index("--share") + 1])
    return sorted(p.name for p in (share / "MyWorks" / "M 42_sub").glob("*.fit"))


def test_a_busy_telescope_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _serve(tmp_path, seconds_per_frame=3600.0) as (args, root), _stack_elsewhere(args):
        assert main(["stack", *args]) == 1
        err = capsys.readouterr().err
        assert "busy (BatchStack running)" in err
        assert "--wait SECONDS" in err
        assert main(["stack", *args, "--wait", "0.2"]) == 1
        assert "after waiting 0.2 s" in capsys.readouterr().err
        assert _batch_outputs(root) == []


def test_every_configuration_problem_has_a_fix_in_command_line_terms() -> None:
    # The fixes are keyed by the problem's value (the command line starts without the domain).
    from crowdsky.cli_wording import PREFLIGHT_FIXES
    from crowdsky.domain.preflight import Problem

    assert set(PREFLIGHT_FIXES) == {p.value for p in Problem if p.is_configuration}
