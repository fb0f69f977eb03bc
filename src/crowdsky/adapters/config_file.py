"""The configuration file and the password's outside sources (environment, system keyring).

The file is TOML, at ``$CROWDSKY_CONFIG`` or ``config.toml`` in the platform's configuration
directory (``platformdirs``: ``~/.config/crowdsky/`` on Linux, ``~/Library/Application
Support/crowdsky/`` on macOS, ``%LOCALAPPDATA%/crowdsky/`` on Windows). crowdsky only reads
it; it never writes a password anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crowdsky.errors import ConfigError

__all__ = ["config_path", "keyring_password", "read_config_file"]

KEYRING_SERVICE = "crowdsky"


def config_path(environment: Mapping[str, str] | None = None) -> Path:
    """Where the configuration file is (it need not exist)."""
    env = os.environ if environment is None else environment
    chosen = env.get("CROWDSKY_CONFIG")
    if chosen:
        return Path(chosen).expanduser()
    import platformdirs

    return platformdirs.user_config_path("crowdsky", appauthor=False) / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed file; an empty mapping when there is none.

    Raises
    ------
    ConfigError
        When the file exists but cannot be read or is not valid TOML (one line naming the file
        and the place).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read the configuration file {path}: {exc.strerror}.") from None
    import tomllib  # only when there is a file: most commands run without one

    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The configuration file {path} is not valid TOML: {exc}.") from None


def keyring_password(username: str) -> str | None:
    """The password stored for ``username`` in the system keyring, if ``keyring`` is installed.

    Store one with ``keyring set crowdsky <username>``. No keyring backend means none is
    stored; a backend that fails is a :class:`ConfigError`, never taken for an empty password.
    """
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]
        from keyring.errors import NoKeyringError  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        secret = keyring.get_password(KEYRING_SERVICE, username)
    except NoKeyringError:
        return None
    except Exception as exc:  # keyring backends raise anything
        raise ConfigError(
            f"Could not read the password from the system keyring: {type(exc).__name__}."
        ) from None
    return secret if isinstance(secret, str) and secret else None
