"""The configuration file, the environment and ``crowdsky config`` (through ``main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import crowdsky
from crowdsky.app.config import merge_settings
from crowdsky.cli import main
from crowdsky.errors import ConfigError

CONFIG = """
default_scope = "backyard"

[telescopes.backyard]
host = "192.168.1.83"
key = "~/seestar_key.pem"
tz = "Europe/Vienna"

[telescopes.travel]
host = "seestar.local"
share = "/Volumes/EMMC Images"
smb_port = 1445

[server]
url = "http://127.0.0.1:8080"
username = "me"
"""


@pytest.fixture(autouse=True)
def _forget_seestar() -> object:
    yield
    crowdsky.disconnect()


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("CROWDSKY_CONFIG", str(path))
    for name in ("SEESTAR_HOST", "CROWDSKY_URL", "CROWDSKY_USERNAME", "CROWDSKY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return path


def _config(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["config", "--json", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    return report


def _value(report: dict[str, object], name: str) -> tuple[object, object]:
    settings = report["settings"]
    assert isinstance(settings, dict)
    return settings[name]["value"], settings[name]["source"]


def test_config_shows_the_file_and_the_default_scope(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _config(capsys)
    assert report["path"] == str(config_file)
    assert report["scope"] == "backyard"
    assert report["scopes"] == ["backyard", "travel"]
    assert _value(report, "host") == ("192.168.1.83", "file")
    assert _value(report, "username") == ("me", "file")
    assert _value(report, "port") == (4700, "default")


def test_scope_selects_a_telescope(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _config(capsys, "--scope", "travel")
    assert _value(report, "host") == ("seestar.local", "file")
    assert _value(report, "smb_port") == (1445, "file")
    assert _value(report, "key") == (None, "default")


def test_environment_beats_the_file(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEESTAR_HOST", "10.0.0.7")
    monkeypatch.setenv("CROWDSKY_SCOPE", "travel")
    report = _config(capsys)
    assert report["scope"] == "travel"
    assert _value(report, "host") == ("10.0.0.7", "environment")


def test_command_line_beats_environment_beats_file_beats_default() -> None:
    file = {"telescopes": {"t": {"host": "file-host", "port": 1}}, "run": {"min_exptime": 60}}
    env = {"CROWDSKY_HOST": "env-host", "CROWDSKY_PORT": "2"}
    settings = merge_settings({"host": "cli-host"}, env, file, scope="t")
    assert (settings["host"], settings.values["host"].source) == ("cli-host", "command line")
    assert (settings["port"], settings.values["port"].source) == (2, "environment")
    assert (settings["min_exptime"], settings.values["min_exptime"].source) == (60.0, "file")
    assert (settings["block_minutes"], settings.values["block_minutes"].source) == (15, "default")


def test_the_file_setting_reaches_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[run]\nblock_minutes = 7\n", encoding="utf-8")
    monkeypatch.setenv("CROWDSKY_CONFIG", str(path))
    assert main(["plan", "IC 434", "--simulator"]) == 2
    assert "--block-minutes 7" in capsys.readouterr().err  # in command-line terms
    assert main(["plan", "IC 434", "--simulator", "--block-minutes", "15"]) == 0


def test_the_password_is_masked_never_printed(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDSKY_PASSWORD", "s3cret-Pa55")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "s3cret-Pa55" not in out
    assert "********" in out
    assert str(config_file) in out
    report = _config(capsys)
    assert "s3cret-Pa55" not in json.dumps(report)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server\nurl = 1", "is not valid TOML"),
        ('[server]\npassword = "x"\n', "holds a password"),
        ("[telescopes.a]\nhost = 5\n", "host = 5 should be a str"),
        ('[telescopes.a]\nhots = "x"\n', "unknown key 'hots'"),
        ('default_scope = "nowhere"\n', "No telescope named 'nowhere'"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CROWDSKY_CONFIG", str(path))
    assert main(["targets", "--simulator"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_a_bad_environment_value_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CROWDSKY_PORT", "forty-seven")
    assert main(["targets", "--simulator"]) == 2
    assert "$CROWDSKY_PORT='forty-seven'" in capsys.readouterr().err


def test_no_file_is_fine_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    assert "(not there yet)" in capsys.readouterr().out


def test_unknown_scope_on_the_command_line() -> None:
    with pytest.raises(ConfigError, match="configured: none"):
        merge_settings({}, {}, {}, scope="backyard")
