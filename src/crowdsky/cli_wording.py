"""What the command line says, in its own terms: options and commands, never Python names.

The library's messages speak to Python users (``key_path=``, ``list_targets()``); the command
line rewrites them (:func:`cli_wording`), names the option that fixes each pre-flight problem
(:data:`PREFLIGHT_FIXES`) and says, after Ctrl-C, what finished (:func:`interrupted_line`).
"""

from __future__ import annotations

import re

__all__ = [
    "CLI_WORDING",
    "PREFLIGHT_FIXES",
    "CommandRun",
    "cli_wording",
    "first_sentence",
    "interrupted_line",
]


class CommandRun:
    """What one command has done so far, for the line printed when it is cut short."""

    def __init__(self) -> None:
        self.telescope = False  # a telescope was opened
        self.night = False  # `crowdsky run`: telescopes stacking while stacks upload
        self.blocks_started = 0
        self.blocks_done = 0
        self.uploads = ""  # what the uploads got done: UploadsInterrupted.summary()

    def summary(self) -> str:
        """``2 block(s) stacked and renamed; the block in progress was not`` or ``""``."""
        if not self.blocks_started:
            return ""
        pending = self.blocks_started - self.blocks_done
        rest = "; the block in progress was not" if pending else ""
        return f"{self.blocks_done} block(s) stacked and renamed{rest}"


def interrupted_line(run: CommandRun) -> str:
    """The line printed after Ctrl-C: what finished, and the telescope only if one was used."""
    done = run.summary()
    parts = ["interrupted"]
    if done:
        parts.append(done)
    if run.uploads:
        parts.append(run.uploads)
    if run.night:
        parts.append("any batch stack running was stopped and cleared")
    elif run.telescope and run.blocks_started:
        parts.append("the Seestar's batch stack was stopped and cleared")
    elif run.telescope:
        parts.append("nothing on the Seestar was left half done")
    return "; ".join(parts) + "."


#: How to fix each pre-flight problem, in command-line terms: (what is wrong, what to do), by the
#: :class:`~crowdsky.domain.preflight.Problem`'s value (not the enum, so that the command line
#: starts without the domain and attrs).
PREFLIGHT_FIXES: dict[str, tuple[str, str]] = {
    "control unreachable": (
        "the Seestar does not answer",
        "check --host and --port, and that it is on and on this computer's network",
    ),
    "key": (
        "the Seestar needs its key",
        "pass --key FILE or set SEESTAR_KEY_PATH to the PEM file with the Seestar app's key",
    ),
    "files unreachable": (
        "the Seestar's file server does not answer",
        "check --http-port (80 on a Seestar)",
    ),
    "rename unavailable": (
        "files on the Seestar cannot be renamed",
        "mount its 'EMMC Images' share and pass --share DIR, or check --smb-port (445) and "
        "that this computer allows anonymous SMB",
    ),
}

#: Library wording (Python names) → command-line wording, for messages shown by the CLI.
CLI_WORDING: tuple[tuple[str, str], ...] = (
    ("Pass key_path= or set", "Pass --key FILE or set"),
    ("pass key_path= or set", "pass --key FILE or set"),
    ("Call list_targets() to see the exact names", "Run 'crowdsky targets' to see the exact names"),
    (
        "mount the 'EMMC Images' share and use MountedShareFileOps.",
        "mount the 'EMMC Images' share and pass its folder with --share DIR.",
    ),
    (
        "pass allow_insecure_http=True (on the command line: --insecure-http) if you really "
        "mean it",
        "pass --insecure-http if you really mean it",
    ),
    (
        "crowdsky.set_credentials('username', 'password') or the environment variables",
        "the environment variables",
    ),
    ("try again, or raise the timeout.", "try again."),
    ("(the Seestar's control port is 4700)", "(check --port: the Seestar's control port is 4700)"),
)

#: Keyword arguments named in library messages → the option that sets them, and its value.
_KEYWORD_OPTIONS = {
    "block_minutes": ("--block-minutes", "MINUTES"),
    "min_exptime": ("--min-exptime", "SECONDS"),
    "local_dir": ("--local-dir", "DIR"),
    "output": ("--dest", "DIR"),
    "tz": ("--tz", "ZONE"),
}


def cli_wording(message: str) -> str:
    """``message`` with the library's Python names replaced by options and commands.

    Examples
    --------
    >>> cli_wording("block_minutes=7 does not divide a day")
    '--block-minutes 7 does not divide a day'
    """
    for python, cli in CLI_WORDING:
        message = message.replace(python, cli)
    for keyword, (option, value) in _KEYWORD_OPTIONS.items():
        message = re.sub(rf"\b{keyword}=(?=[^\s.,;])", f"{option} ", message)
        message = re.sub(rf"\b{keyword}=", f"{option} {value}", message)
        if "_" in keyword:
            message = re.sub(rf"\b{keyword}\b", option, message)
    return message


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, in command-line wording."""
    text = cli_wording(text)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]
