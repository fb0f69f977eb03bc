"""The command line where a real owner meets it: state, pre-flight checks, errors in its terms."""

from __future__ import annotations

import ast
import http.server
import io
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdsky.cli import main
from crowdsky.errors import SeestarConnectionError


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


# -- item 8: --simulator keeps its state ----------------------------------------------------------


def test_the_simulator_remembers_what_was_stacked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC 434", "--simulator"]) == 0
    assert _out(capsys).endswith("3 unstacked block(s) for IC 434\n")
    assert main(["stack", "IC 434", "--simulator"]) == 0
    assert "Stacked: 3 Failed: 0 Skipped: 0" in _out(capsys)
    assert main(["plan", "IC 434", "--simulator"]) == 0
    assert _out(capsys).endswith("0 unstacked block(s) for IC 434\n")
    assert main(["stack", "IC 434", "--simulator"]) == 0  # visibly idempotent
    assert _out(capsys).endswith("Stacked: 0 Failed: 0 Skipped: 0\n")


def test_simulator_reset_starts_over(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "IC 434", "--simulator"]) == 0
    capsys.readouterr()
    assert main(["plan", "IC 434", "--simulator", "--simulator-reset"]) == 0
    assert _out(capsys).endswith("3 unstacked block(s) for IC 434\n")


def test_the_state_lives_in_the_cache_folder_made_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "not" / "yet" / "there"
    monkeypatch.setenv("CROWDSKY_CACHE_DIR", str(cache))
    assert main(["stack", "IC 434", "--simulator"]) == 0
    names = os.listdir(cache / "simulator" / "MyWorks" / "IC 434")
    assert "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit" in names
    assert not (cache / "simulator" / "MyWorks" / "IC 434_sub").exists()  # raw subs stay in memory


def test_simulator_reset_without_simulator_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["targets", "--simulator-reset"]) != 0
    assert "--simulator" in capsys.readouterr().err


# -- item 5: errors in command-line terms, no tracebacks ------------------------------------------


def test_an_unknown_target_points_at_the_targets_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "IC434", "--simulator"]) == 1
    err = capsys.readouterr().err
    assert "crowdsky targets" in err
    assert "list_targets()" not in err


def test_plain_http_to_a_remote_server_names_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["stacks", "--url", "http://crowdsky.example"]) == 2
    err = capsys.readouterr().err
    assert "--insecure-http" in err
    assert "allow_insecure_http" not in err


def test_missing_credentials_name_the_environment_not_python(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CROWDSKY_USERNAME", raising=False)
    monkeypatch.delenv("CROWDSKY_PASSWORD", raising=False)
    assert main(["stacks", "--url", "http://127.0.0.1:9"]) == 2  # configuration
    err = capsys.readouterr().err
    assert "CROWDSKY_USERNAME" in err
    assert "set_credentials" not in err


def test_a_block_minutes_error_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "IC 434", "--simulator", "--block-minutes", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crowdsky: --block-minutes 7 does not split a day")


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["targets", "--simulator"]) == 1
    assert capsys.readouterr().err == ""


def test_a_missing_module_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "crowdsky.adapters.simulator", None)
    assert main(["simulate", "--port", "0", "--http-port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crowdsky: a package crowdsky needs is missing")
    assert "pip install" in err
    assert len(err.splitlines()) == 1


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_serve_on_a_taken_port_names_the_option(
    taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", str(taken_port)]) == 2
    err = capsys.readouterr().err
    assert f"port {taken_port} on 127.0.0.1 is in use: choose another with --port PORT" in err


def test_simulate_beside_serve_names_the_http_port_option(
    taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--port", "0", "--http-port", str(taken_port)]) == 2
    assert "with --http-port PORT" in capsys.readouterr().err


def test_an_uncreatable_dest_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["download", "20260227.81_HP102265", "--dest", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"crowdsky: --dest {blocker / 'sub'}: cannot create that folder")
    assert len(err.splitlines()) == 1


def test_a_local_dir_that_does_not_exist_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upload", "--local-dir", str(tmp_path / "nowhere")]) == 2
    assert "--local-dir" in capsys.readouterr().err


def test_tz_is_refused_where_it_has_no_effect(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["targets", "--simulator", "--tz", "Europe/Vienna"])
    assert exited.value.code == 2
    assert "--tz" in capsys.readouterr().err
    assert main(["plan", "IC 434", "--simulator", "--tz", "Europe/Vienna"]) == 0


def test_purging_a_target_that_does_not_exist_is_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["purge", "IC434", "--simulator", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "IC434" in err
    assert "crowdsky targets" in err


class _CtrlCOnSecondBlock(io.StringIO):
    """A terminal where the user presses Ctrl-C as the second block starts stacking."""

    def write(self, text: str) -> int:
        if text.startswith("Stacking ") and "Stacking " in self.getvalue():
            raise KeyboardInterrupt
        return super().write(text)


def test_ctrl_c_says_on_its_own_line_what_finished(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _CtrlCOnSecondBlock())
    assert main(["stack", "IC 434", "--simulator"]) == 130
    err = capsys.readouterr().err
    assert err == (
        "\ncrowdsky: interrupted; 1 block(s) stacked and renamed; the block in progress was "
        "not; the Seestar's batch stack was stopped and cleared.\n"
    )


def test_ctrl_c_away_from_a_telescope_does_not_mention_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    from crowdsky import bootstrap

    monkeypatch.setattr(bootstrap, "upload_stacks", interrupt)
    assert main(["upload", "--local-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err == "\ncrowdsky: interrupted.\n"


def test_a_port_that_is_not_json_rpc_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        port = server.server_address[1]
        assert main(["targets", "--host", "127.0.0.1", "--port", str(port)]) == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    err = capsys.readouterr().err
    assert "not JSON-RPC" in err
    assert "--port" in err
    assert len(err.splitlines()) == 1


class _Silent(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_every_library_phrase_the_cli_rewords_is_still_in_the_library() -> None:
    # A reworded library message would silently bring the Python name back to the terminal.
    from crowdsky import cli_wording

    texts = []
    for path in Path(cli_wording.__file__).parent.rglob("*.py"):
        if path.name in ("cli.py", "cli_wording.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    for python, _ in cli_wording.CLI_WORDING:
        assert any(python in text for text in texts), python


class _VanishesAfterFirstBlock:
    """The demo Seestar, out of Wi-Fi range from the second block on."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self._configured = 0
        self.calls_after = 0

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: object, **kwargs: object) -> object:
            if name == "configure_batch_stack":
                self._configured += 1
            if self._configured > 1:
                self.calls_after += 1
                raise SeestarConnectionError("The Seestar at 10.0.0.1:4700 did not answer.")
            return attribute(*args, **kwargs)

        return call


def test_a_telescope_that_vanishes_mid_run_is_reported_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crowdsky import bootstrap

    made: list[_VanishesAfterFirstBlock] = []
    real = bootstrap.cached_simulator_seestar

    def vanishing(**options: object) -> object:
        made.append(_VanishesAfterFirstBlock(real(**options)))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(bootstrap, "cached_simulator_seestar", vanishing)
    assert main(["stack", "--simulator"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "crowdsky: The Seestar at 10.0.0.1:4700 did not answer. Stopped: 1 block(s) stacked "
        "and renamed; the block in progress was not.\n"
    )
    assert made[0].calls_after <= 4  # not one attempt per remaining block


def test_a_ctrl_c_after_the_command_finished_prints_no_traceback() -> None:
    # Found by the soak: a SIGINT while Python shut down after a finished command printed a
    # KeyboardInterrupt traceback. The program's entry point ignores SIGINT once main returned.
    import subprocess

    program = (
        "import os, signal, sys\n"
        "from crowdsky.cli import entry_point\n"
        "status = entry_point(['targets', '--simulator'])\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert "KeyboardInterrupt" not in done.stderr
