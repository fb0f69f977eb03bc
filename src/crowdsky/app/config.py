"""The command line's settings: one pure merge of command line, environment, file and defaults.

Precedence, highest first: the command line, the environment, the configuration file (the
telescope chosen with ``--scope``/``CROWDSKY_SCOPE``/``default_scope``, and ``[server]``), the
defaults. Reading the file and the environment is the shell's job
(:func:`crowdsky.bootstrap.load_settings`); this module only decides.

The file (TOML)::

    default_scope = "backyard"

    [telescopes.backyard]
    host = "192.168.1.83"
    key = "~/seestar_key.pem"
    share = "/Volumes/EMMC Images"
    tz = "Europe/Vienna"

    [server]
    url = "https://crowdsky.univie.ac.at"
    username = "me"

The password is never part of the settings: it comes from ``CROWDSKY_PASSWORD``, the system
keyring or a prompt, and a file that holds one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from crowdsky.errors import ConfigError

__all__ = [
    "ENVIRONMENT",
    "OPTIONS",
    "Setting",
    "Settings",
    "merge_settings",
]


@attrs.frozen
class Option:
    """One setting: its name, type, default, where it lives in the file, its variables."""

    name: str
    kind: type
    default: Any
    section: str  # "telescope" or "server" or "run"
    env: tuple[str, ...]


OPTIONS: tuple[Option, ...] = (
    Option("host", str, None, "telescope", ("CROWDSKY_HOST", "SEESTAR_HOST")),
    Option("key", str, None, "telescope", ("CROWDSKY_KEY", "SEESTAR_KEY_PATH")),
    Option("share", str, None, "telescope", ("CROWDSKY_SHARE",)),
    Option("tz", str, None, "telescope", ("CROWDSKY_TZ",)),
    Option("port", int, 4700, "telescope", ("CROWDSKY_PORT",)),
    Option("http_port", int, 80, "telescope", ("CROWDSKY_HTTP_PORT",)),
    Option("smb_port", int, 445, "telescope", ("CROWDSKY_SMB_PORT",)),
    Option("block_minutes", int, 15, "run", ("CROWDSKY_BLOCK_MINUTES",)),
    Option("min_exptime", float, 240.0, "run", ("CROWDSKY_MIN_EXPTIME",)),
    Option("url", str, None, "server", ("CROWDSKY_URL",)),
    Option("username", str, None, "server", ("CROWDSKY_USERNAME",)),
)

#: Every environment variable the settings read, with the option it sets.
ENVIRONMENT: dict[str, str] = {
    "CROWDSKY_CONFIG": "path of the configuration file",
    "CROWDSKY_SCOPE": "the configured telescope to use",
    "CROWDSKY_PASSWORD": "the server password (never stored by crowdsky)",
    **{var: o.name for o in OPTIONS for var in o.env},
}

_TOP_KEYS = frozenset({"default_scope", "telescopes", "server", "run"})
_PASSWORD_KEYS = frozenset({"password", "passwd", "secret"})


@attrs.frozen
class Setting:
    """A value and where it came from: ``command line``, ``environment``, ``file``, ``default``."""

    value: Any
    source: str


@attrs.frozen
class Settings:
    """The settings in effect for one command."""

    values: Mapping[str, Setting]
    scope: str | None
    scopes: tuple[str, ...]
    path: Path | None = None

    def __getitem__(self, name: str) -> Any:
        return self.values[name].value

    def as_dict(self) -> dict[str, Any]:
        """``settings`` (name → ``{"value", "source"}``), ``scope``, ``scopes`` and ``path``."""
        return {
            "path": None if self.path is None else str(self.path),
            "scope": self.scope,
            "scopes": list(self.scopes),
            "settings": {n: {"value": s.value, "source": s.source} for n, s in self.values.items()},
        }


def merge_settings(
    command_line: Mapping[str, Any],
    environment: Mapping[str, str],
    file: Mapping[str, Any],
    *,
    scope: str | None = None,
    path: Path | None = None,
) -> Settings:
    """The settings in effect.

    Parameters
    ----------
    command_line : mapping
        Option name → value given on the command line (``None`` = not given).
    environment : mapping
        The process environment.
    file : mapping
        The parsed configuration file (empty when there is none).
    scope : str, optional
        ``--scope``: the configured telescope to use; else ``CROWDSKY_SCOPE``; else the file's
        ``default_scope``; else none.
    path : Path, optional
        Where the file is (reported by ``crowdsky config``).

    Raises
    ------
    ConfigError
        For an unknown scope, a value of the wrong type, an unknown key or a password in the
        file.
    """
    _check_file(file)
    telescopes = _table(file, "telescopes")
    chosen = scope or environment.get("CROWDSKY_SCOPE") or file.get("default_scope")
    if chosen is not None and chosen not in telescopes:
        known = ", ".join(sorted(telescopes)) or "none"
        raise ConfigError(
            f"No telescope named {chosen!r} in the configuration file (configured: {known})."
        )
    sections = {
        "telescope": _table(telescopes, chosen) if chosen else {},
        "server": _table(file, "server"),
        "run": _table(file, "run"),
    }
    # Every table is checked, the telescopes not chosen too: a mistake shows at once.
    for name in telescopes:
        _check_section("telescope", name, _table(telescopes, name))
    for section in ("server", "run"):
        _check_section(section, None, sections[section])
    values = {o.name: _resolve(o, command_line, environment, sections[o.section]) for o in OPTIONS}
    return Settings(values=values, scope=chosen, scopes=tuple(sorted(telescopes)), path=path)


def _resolve(
    option: Option,
    command_line: Mapping[str, Any],
    environment: Mapping[str, str],
    table: Mapping[str, Any],
) -> Setting:
    given = command_line.get(option.name)
    if given is not None:
        return Setting(given, "command line")
    for var in option.env:
        text = environment.get(var)
        if text:
            return Setting(_convert(option, text, var), "environment")
    if option.name in table:
        return Setting(_checked(option, table[option.name]), "file")
    return Setting(option.default, "default")


def _convert(option: Option, text: str, var: str) -> Any:
    try:
        return option.kind(text)
    except ValueError:
        raise ConfigError(
            f"${var}={text!r} is not a valid {option.name} ({option.kind.__name__})."
        ) from None


def _checked(option: Option, value: Any) -> Any:
    if option.kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, option.kind) or isinstance(value, bool):
        raise ConfigError(
            f"Configuration file: {option.name} = {value!r} should be a {option.kind.__name__}."
        )
    return value


def _table(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    table = parent.get(key, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"Configuration file: [{key}] should be a table.")
    return table


def _check_file(file: Mapping[str, Any]) -> None:
    unknown = sorted(set(file) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"Configuration file: unknown key {unknown[0]!r}.")


def _check_section(section: str, scope: str | None, table: Mapping[str, Any]) -> None:
    where = f"[telescopes.{scope}]" if section == "telescope" else f"[{section}]"
    if _PASSWORD_KEYS & set(table):
        raise ConfigError(
            f"Configuration file: {where} holds a password; remove it and use "
            "$CROWDSKY_PASSWORD, the system keyring, or the prompt instead."
        )
    options = {o.name: o for o in OPTIONS if o.section == section}
    unknown = sorted(set(table) - set(options))
    if unknown:
        raise ConfigError(f"Configuration file: unknown key {unknown[0]!r} in {where}.")
    for key, value in table.items():
        _checked(options[key], value)
