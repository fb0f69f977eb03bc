"""Every ```python block of README.md and docs/*.md, and every safe shell command, runs as written.

The blocks of one file run in order in one namespace, in an empty folder, against the simulator
and loopback servers (the test starts one and points ``CROWDSKY_URL`` at it, so no block can
reach the public server by accident). A block preceded by ``<!-- skip-test: why -->`` is not run;
such markers must stay rare. Shell lines ``crowdsky ... --simulator`` in any code block run
through ``main``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

import crowdsky
from crowdsky import session
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?P<marker><!-- skip-test: [^>]+-->\n)?```python\n(?P<code>.*?)```", re.S)
SHELL = re.compile(r"^(?:\s{4}|\$ )\s*(crowdsky [^\n#]*--simulator[^\n#]*)", re.M)


def _blocks(path: Path) -> list[tuple[str, bool]]:
    text = path.read_text(encoding="utf-8")
    return [(m["code"], m["marker"] is not None) for m in FENCE.finditer(text)]


def _shell_commands() -> list[str]:
    commands: list[str] = []
    for path in DOCS:
        for match in SHELL.finditer(path.read_text(encoding="utf-8")):
            commands += [c.strip() for c in match[1].split(";") if "--simulator" in c]
    return commands


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with LoopbackCrowdskyServer(tmp_path / "test-server", users={"tester": "pw"}) as loop:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CROWDSKY_URL", loop.url)
        monkeypatch.setenv("CROWDSKY_USERNAME", "tester")
        monkeypatch.setenv("CROWDSKY_PASSWORD", "pw")
        session.server_settings().reset()
        yield tmp_path
        session.server_settings().reset()
        crowdsky.disconnect()


def test_the_documents_have_python_blocks() -> None:
    counts = {p.name: len(_blocks(p)) for p in DOCS}
    assert counts["README.md"] >= 3
    assert counts["server.md"] >= 5


def test_skip_markers_are_rare() -> None:
    blocks = [b for p in DOCS for b in _blocks(p)]
    skipped = sum(1 for _, skip in blocks if skip)
    assert skipped <= 3
    assert skipped * 4 <= len(blocks)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_run_as_written(path: Path, sandbox: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"doc:{path.name}"}
    for index, (code, skip) in enumerate(_blocks(path)):
        if skip:
            continue
        compiled = compile(code, f"{path.name} block {index + 1}", "exec")
        exec(compiled, namespace)
    local = namespace.get("local")
    if isinstance(local, LoopbackCrowdskyServer):
        local.stop()


def test_there_are_shell_commands_to_run() -> None:
    assert len(_shell_commands()) >= 4


@pytest.mark.parametrize("command", _shell_commands())
def test_simulator_commands_run_as_written(command: str, sandbox: Path) -> None:
    argv = shlex.split(command)
    assert argv[0] == "crowdsky"
    assert main(argv[1:]) == 0
