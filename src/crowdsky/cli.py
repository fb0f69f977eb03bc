"""The ``crowdsky`` command line: argument parsing and rendering only.

Every subcommand builds what it needs through :mod:`crowdsky.bootstrap` (a Seestar: ``--simulator``
for the built-in one, ``--host`` for a real telescope; a server client), calls one application
function, prints its result and closes what it opened. It never touches the module-level session
that ``import crowdsky`` users work with. Work on a telescope (``stack``, ``purge``, ``upload``
from a Seestar) starts with a pre-flight check (:mod:`crowdsky.app.preflight`).

A :class:`~crowdsky.errors.CrowdskyError` becomes a one-line message in command-line terms
(:data:`_CLI_WORDING` replaces the library's Python names with options) and exit status 1, or 2
for usage and configuration (a bad option value, a missing key, a link pre-flight found down);
Ctrl-C exits with 130 after the device was left clean and says what finished.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdsky.domain.preflight import Link, Problem
from crowdsky.errors import (
    CrowdskyError,
    CrowdskyWarning,
    PlanError,
    SeestarAuthError,
    SeestarConnectionError,
)

if TYPE_CHECKING:
    from crowdsky.adapters.collab import HttpCollabServer
    from crowdsky.app.ports import BatchStackStatus, Progress, Seestar
    from crowdsky.app.service import Crowdsky

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


class _Run:
    """What one command has done so far, for the line printed when it is cut short."""

    def __init__(self) -> None:
        self.telescope = False  # a telescope was opened
        self.blocks_started = 0
        self.blocks_done = 0

    def summary(self) -> str:
        """``2 block(s) stacked and renamed; the block in progress was not.`` or ``""``."""
        if not self.blocks_started:
            return ""
        pending = self.blocks_started - self.blocks_done
        rest = "; the block in progress was not" if pending else ""
        return f"{self.blocks_done} block(s) stacked and renamed{rest}"


class _CountingProgress:
    """Progress that also counts blocks begun and renamed, for :class:`_Run`."""

    def __init__(self, inner: Progress, run: _Run) -> None:
        from crowdsky.domain.report import renamed_line

        self._inner = inner
        self._run = run
        self._renamed = renamed_line("")

    def line(self, text: str) -> None:
        if text.startswith("Stacking "):
            self._run.blocks_started += 1
        elif text.startswith(self._renamed):
            self._run.blocks_done += 1
        self._inner.line(text)

    def stack_progress(self, status: BatchStackStatus) -> None:
        self._inner.stack_progress(status)


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("telescope")
    group.add_argument(
        "--simulator",
        action="store_true",
        help="use the built-in simulated Seestar with a demo night (no telescope needed); it "
        "keeps its state between commands in $CROWDSKY_CACHE_DIR/simulator (default: the "
        "user cache folder, e.g. ~/.cache/crowdsky/simulator)",
    )
    group.add_argument(
        "--simulator-reset",
        action="store_true",
        help="with --simulator: start over from the demo night",
    )
    group.add_argument(
        "--host",
        default=os.environ.get("SEESTAR_HOST"),
        help="address of a real Seestar (default: $SEESTAR_HOST), e.g. 192.168.1.83",
    )
    group.add_argument(
        "--key", dest="key_path", help="PEM key for firmware 7.18+ (default: $SEESTAR_KEY_PATH)"
    )
    group.add_argument(
        "--share",
        dest="mounted_share",
        help="directory where the OS mounted the Seestar's 'EMMC Images' share (instead of SMB)",
    )
    group.add_argument("--port", type=int, default=4700, help="JSON-RPC port (default 4700)")
    group.add_argument("--http-port", type=int, default=80, help="file server port (default 80)")
    group.add_argument("--smb-port", type=int, default=445, help="SMB port (default 445)")


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    # Only planning uses the zone; elsewhere --tz would be accepted and silently ignored.
    parser.add_argument(
        "--tz", help="the telescope's IANA time zone (plans blocks), if it reports a wrong one"
    )
    parser.add_argument("--block-minutes", type=int, default=15, help="block length (default 15)")
    parser.add_argument(
        "--min-exptime",
        type=float,
        default=240.0,
        help="skip blocks with less total exposure in seconds (default 240)",
    )


@contextlib.contextmanager
def _seestar(args: argparse.Namespace) -> Iterator[Seestar]:
    """The telescope the options name, closed (batch stack left clean) when done."""
    from crowdsky import bootstrap

    if args.simulator_reset and not args.simulator:
        raise CrowdskyError("--simulator-reset goes with --simulator.")
    if args.simulator:
        seestar: Seestar = bootstrap.cached_simulator_seestar(reset=args.simulator_reset)
    elif not args.host:
        raise CrowdskyError(
            "No telescope chosen: pass --host <address> (or set SEESTAR_HOST), or --simulator "
            "to try crowdsky on the built-in simulator."
        )
    else:
        seestar = bootstrap.network_seestar(
            args.host,
            key_path=args.key_path,
            mounted_share=args.mounted_share,
            port=args.port,
            http_port=args.http_port,
            smb_port=args.smb_port,
        )
    args.run.telescope = True
    try:
        yield seestar
    finally:
        close = getattr(seestar, "close", None)
        if callable(close):
            close()


def _service(args: argparse.Namespace, seestar: Seestar) -> Crowdsky:
    from crowdsky import bootstrap

    progress = _CountingProgress(bootstrap.print_progress(), args.run)
    return bootstrap.crowdsky_service(seestar, tz=getattr(args, "tz", None), progress=progress)


def _cmd_targets(args: argparse.Namespace) -> int:
    with _seestar(args) as seestar:
        targets = _service(args, seestar).list_targets()
    for t in targets:
        print(f"{t['target']:25s} raw={t['raw_files']:>5d} stacked={t['stacked_files']:>3d}")
    return 0


def _cmd_time(args: argparse.Namespace) -> int:
    with _seestar(args) as seestar:
        report = _service(args, seestar).clock_report()
    device = report["device_time"]
    zone = report["device_zone"] or "(no zone reported)"
    shown = f"{device:%Y-%m-%d %H:%M:%S} {zone}" if device else "(no time reported)"
    print(f"Seestar:  {shown}")
    print(f"Computer: {report['host_time']:%Y-%m-%d %H:%M:%S} {report['host_zone']}")
    if report["drift_s"] is not None:
        print(f"Device clock minus computer clock: {report['drift_s']:+.0f} s")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    with _seestar(args) as seestar:
        blocks = _service(args, seestar).find_unstacked_blocks(
            args.target, block_minutes=args.block_minutes, min_exptime=args.min_exptime
        )
    for b in blocks:
        print(
            f"  {b['block_start']:%Y-%m-%d %H:%M}-{b['block_end']:%H:%M}  {b['chunk_key']:>15s}  "
            f"{b['frame_count']:>3d} frames {b['exposure']} {b['filter']}"
        )
    print(f"{len(blocks)} unstacked block(s) for {args.target}")
    return 0


#: How to fix each pre-flight problem, in command-line terms.
_PREFLIGHT_FIXES = {
    Problem.CONTROL_UNREACHABLE: (
        "the Seestar does not answer",
        "check --host and --port, and that it is on and on this computer's network",
    ),
    Problem.KEY: (
        "the Seestar needs its key",
        "pass --key FILE or set SEESTAR_KEY_PATH to the PEM file with the Seestar app's key",
    ),
    Problem.FILES_UNREACHABLE: (
        "the Seestar's file server does not answer",
        "check --http-port (80 on a Seestar)",
    ),
    Problem.RENAME_UNAVAILABLE: (
        "files on the Seestar cannot be renamed",
        "mount its 'EMMC Images' share and pass --share DIR, or check --smb-port (445) and "
        "that this computer allows anonymous SMB",
    ),
}


class _NotReady(Exception):
    """Pre-flight found problems; already printed. ``status`` is the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _preflight(
    args: argparse.Namespace,
    seestar: Seestar,
    service: Crowdsky,
    *,
    links: frozenset[Link] = frozenset(Link),
    check_state: bool = False,
) -> None:
    """Check the links (and, for stacking, that the telescope is idle) before any work.

    Prints one line per problem and raises :class:`_NotReady`: exit status 2 for configuration,
    1 for a busy telescope that was left alone.
    """
    from crowdsky.app.preflight import preflight

    findings = preflight(
        seestar,
        links=links,
        check_state=check_state,
        clock=service.clock,
        progress=service.progress,
        wait=getattr(args, "wait", 0.0) or 0.0,
    )
    for finding in findings:
        if finding.problem is Problem.BUSY:
            waited = f" after waiting {args.wait:g} s" if getattr(args, "wait", 0) else ""
            print(
                f"crowdsky: the Seestar is busy ({finding.detail} running){waited}; skipped so "
                "as not to disturb it. Run again when it is idle, or wait with --wait SECONDS.",
                file=sys.stderr,
            )
        else:
            what, fix = _PREFLIGHT_FIXES[finding.problem]
            print(f"crowdsky: {what}: {fix}. ({_first_sentence(finding.detail)})", file=sys.stderr)
    if findings:
        raise _NotReady(2 if any(f.problem.is_configuration for f in findings) else 1)


def _first_sentence(text: str) -> str:
    text = _cli_wording(text)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _cmd_stack(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "block_minutes": args.block_minutes,
        "min_exptime": args.min_exptime,
        "dry_run": args.dry_run,
    }
    with _seestar(args) as seestar:
        service = _service(args, seestar)
        _preflight(args, seestar, service, check_state=not args.dry_run)
        if args.target:
            result = service.stack_blocks(args.target, **options)
        else:
            result = service.stack_all(**options)
    if args.target:
        print(
            f"Stacked: {result['blocks_stacked']} Failed: {result['blocks_failed']} "
            f"Skipped: {result['blocks_skipped']}"
        )
        return 1 if result["blocks_failed"] else 0
    print(
        f"Stacked: {result['total_blocks_stacked']} Failed: {result['total_blocks_failed']} "
        f"Skipped: {result['total_blocks_skipped']} across {result['targets_processed']} targets"
    )
    return 1 if result["total_blocks_failed"] or result["targets_failed"] else 0


def _cmd_purge(args: argparse.Namespace) -> int:
    if not (args.yes or args.dry_run):
        raise CrowdskyError(
            "purge deletes CrowdSky_* stacks from the Seestar; add --yes to confirm, or "
            "--dry-run to see what would go."
        )
    with _seestar(args) as seestar:
        service = _service(args, seestar)
        _preflight(args, seestar, service, links=frozenset({Link.CONTROL, Link.RENAME}))
        result = service.purge_crowdsky_stacks(args.target, dry_run=args.dry_run)
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {len(result['files_deleted'])} file(s); {len(result['files_failed'])} failed")
    return 1 if result["files_failed"] else 0


class _UsageError(CrowdskyError):
    """Wrong input on the command line (exit status 2)."""


def _check_port_free(host: str, port: int, option: str) -> None:
    """:class:`_UsageError` naming ``option`` when ``port`` is taken on ``host``."""
    import socket

    if port == 0:
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = "in use" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else exc.strerror
        raise _UsageError(
            f"port {port} on {host} is {reason or 'not available'}: choose another with "
            f"{option} PORT."
        ) from None


def _dest_folder(path: Path, option: str = "--dest") -> Path:
    """``path`` as a folder that exists (made if missing); :class:`_UsageError` if it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"{option} {path}: cannot create that folder ({exc.strerror}).") from None
    if not os.access(path, os.W_OK):
        raise _UsageError(f"{option} {path}: that folder is not writable.")
    return path


def _cmd_simulate(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    for port, option in ((args.port, "--port"), (args.http_port, "--http-port")):
        _check_port_free(args.bind, port, option)
    bootstrap.run_simulator(
        root=args.root,
        host=args.bind,
        rpc_port=args.port,
        http_port=args.http_port,
        auth_key_out=args.key_out,
        firmware=args.firmware,
        seconds_per_frame=args.seconds_per_frame,
        zone=args.zone,
    )
    return 0


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CrowdSky server")
    group.add_argument("--url", help="server URL (default: $CROWDSKY_URL or the public server)")
    group.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow the password over plain http:// to a host that is not this computer",
    )


def _server(args: argparse.Namespace) -> HttpCollabServer:
    # Credentials come from $CROWDSKY_USERNAME / $CROWDSKY_PASSWORD: never from argv, where
    # other users of the machine could read them.
    from crowdsky import bootstrap

    return bootstrap.collab_server(args.url, allow_insecure_http=args.insecure_http)


def _cmd_upload(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    if args.local_dir is not None and not args.local_dir.is_dir():
        raise _UsageError(f"--local-dir {args.local_dir}: no such folder.")
    if args.local_dir is None:
        _dest_folder(args.dest)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(_server(args))
        seestar = stack.enter_context(_seestar(args)) if args.local_dir is None else None
        if seestar is not None:  # downloads only: the control link and the file server
            service = _service(args, seestar)
            _preflight(args, seestar, service, links=frozenset({Link.CONTROL, Link.FILES}))
        result = bootstrap.upload_stacks(
            server,
            seestar=seestar,
            target=args.target or None,
            dest=args.dest,
            local_dir=args.local_dir,
            dry_run=args.dry_run,
            skip_existing=not args.force,
        )
    for failure in result["failed"]:
        print(f"  failed: {failure}", file=sys.stderr)
    print(
        f"Uploaded: {result['files_uploaded']} Skipped: {result['files_skipped']} "
        f"Failed: {result['files_failed']}"
    )
    return 1 if result["files_failed"] else 0


def _cmd_stacks(args: argparse.Namespace) -> int:
    with _server(args) as server:
        records = server.list_stacks(args.object)
    for record in records:
        print(f"{record.chunk_key}  {record.object_name or ''}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    _dest_folder(args.dest)
    with _server(args) as server:
        for key in args.keys:
            print(server.download_stack(key, args.dest))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    users = [tuple(u.split(":", 1)) for u in args.user] or [("username", "password")]
    if any(len(u) != 2 for u in users):
        raise CrowdskyError("--user takes NAME:PASSWORD")
    _check_port_free(args.bind, args.port, "--port")
    bootstrap.serve_loopback(args.bind, args.port, args.storage, [(u[0], u[1]) for u in users])
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 24 * 3600:
        raise argparse.ArgumentTypeError("give between 0 and 86400 seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdsky",
        description="Clock-aligned time-block stacking on ZWO Seestar telescopes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("targets", help="list targets with raw sub-frames")
    _add_device_options(p)
    p.set_defaults(handler=_cmd_targets)

    p = sub.add_parser("time", help="show the Seestar's date, time and zone beside this computer's")
    _add_device_options(p)
    p.set_defaults(handler=_cmd_time)

    p = sub.add_parser("plan", help="show the unstacked blocks of a target")
    p.add_argument("target")
    _add_device_options(p)
    _add_plan_options(p)
    p.set_defaults(handler=_cmd_plan)

    p = sub.add_parser("stack", help="batch-stack unstacked blocks (one target, or all)")
    p.add_argument("target", nargs="?", help="target name; all targets when omitted")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="if the Seestar is imaging, wait up to this long for it to finish (default: skip)",
    )
    _add_device_options(p)
    _add_plan_options(p)
    p.set_defaults(handler=_cmd_stack)

    p = sub.add_parser("purge", help="delete CrowdSky_* stacks (never raw sub-frames)")
    p.add_argument("target", nargs="?", help="target name; all targets when omitted")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    _add_device_options(p)
    p.set_defaults(handler=_cmd_purge)

    p = sub.add_parser("simulate", help="serve a simulated Seestar (JSON-RPC + HTTP) on loopback")
    p.add_argument("--root", type=Path, help="storage directory (default: a temporary one)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=4700, help="JSON-RPC port (default 4700)")
    p.add_argument("--http-port", type=int, default=8080, help="HTTP port (default 8080)")
    p.add_argument(
        "--key-out", type=Path, help="require authentication; write a fresh test key here"
    )
    p.add_argument("--firmware", default="7.75", help="7.75, 7.32, 7.18, 7.06 or old")
    p.add_argument("--seconds-per-frame", type=float, default=0.5, help="stacking speed")
    p.add_argument("--zone", default="Europe/Vienna", help="the device's IANA zone")
    p.set_defaults(handler=_cmd_simulate)

    p = sub.add_parser("upload", help="upload CrowdSky stacks not on the server yet")
    p.add_argument("target", nargs="*", help="targets on the Seestar (default: all)")
    p.add_argument("--local-dir", type=Path, help="upload from this folder, no Seestar needed")
    p.add_argument("--dest", type=Path, default=Path("."), help="where stacks are downloaded")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--force", action="store_true", help="upload even what looks uploaded")
    _add_device_options(p)
    _add_server_options(p)
    p.set_defaults(handler=_cmd_upload)

    p = sub.add_parser("stacks", help="list your stacks on the CrowdSky server")
    p.add_argument("--object", help="only this object")
    _add_server_options(p)
    p.set_defaults(handler=_cmd_stacks)

    p = sub.add_parser("download", help="download stacks from the server by chunk key")
    p.add_argument("keys", nargs="+", help="chunk keys such as 20260227.81_HP102265")
    p.add_argument("--dest", type=Path, default=Path("."))
    _add_server_options(p)
    p.set_defaults(handler=_cmd_download)

    p = sub.add_parser("serve", help="run a local CrowdSky server for trying things out")
    p.add_argument("--bind", default="127.0.0.1", help="address (default loopback)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--storage", type=Path, default=Path("crowdsky-server-data"))
    p.add_argument("--user", action="append", default=[], help="NAME:PASSWORD (repeatable)")
    p.set_defaults(handler=_cmd_serve)
    return parser


#: Library wording (Python names) → command-line wording, for messages shown by the CLI.
_CLI_WORDING: tuple[tuple[str, str], ...] = (
    ("Pass key_path= or set", "Pass --key FILE or set"),
    ("pass key_path= or set", "pass --key FILE or set"),
    ("Call list_targets() to see the exact names", "Run 'crowdsky targets' to see the exact names"),
    (
        "mount the 'EMMC Images' share and use MountedShareFileOps.",
        "mount the 'EMMC Images' share and pass its folder with --share DIR.",
    ),
    (
        "pass allow_insecure_http=True if you really mean it",
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
    "tz": ("--tz", "ZONE"),
}


def _cli_wording(message: str) -> str:
    """``message`` with the library's Python names replaced by options and commands."""
    for python, cli in _CLI_WORDING:
        message = message.replace(python, cli)
    for keyword, (option, value) in _KEYWORD_OPTIONS.items():
        message = re.sub(rf"\b{keyword}=(?=[^\s.,;])", f"{option} ", message)
        message = re.sub(rf"\b{keyword}=", f"{option} {value}", message)
        if "_" in keyword:
            message = re.sub(rf"\b{keyword}\b", option, message)
    return message


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _interrupted(run: _Run) -> str:
    """The line printed after Ctrl-C: what finished, and the telescope only if one was used."""
    done = run.summary()
    parts = ["interrupted"]
    if done:
        parts.append(done)
    if run.telescope and run.blocks_started:
        parts.append("the Seestar's batch stack was stopped and cleared")
    elif run.telescope:
        parts.append("nothing on the Seestar was left half done")
    return "; ".join(parts) + "."


def _silence_stdout() -> None:
    # Python flushes stdout at exit; with the reader gone that would raise again.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _quiet_library_logging() -> None:
    """Keep the library's log records off the terminal; the CLI prints its own one-liners."""
    import logging

    library = logging.getLogger("crowdsky")
    if not library.handlers and not logging.getLogger().handlers:
        library.addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.
    """
    args = _parser().parse_args(argv)
    args.run = _Run()
    handler: Handler = args.handler
    _quiet_library_logging()
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", CrowdskyWarning)
            return handler(args)
    except _NotReady as not_ready:
        return not_ready.status
    except SeestarConnectionError as exc:
        done = args.run.summary()
        stopped = f" Stopped: {done}." if done else ""
        print(f"crowdsky: {_cli_wording(str(exc))}{stopped}", file=sys.stderr)
        return 1
    except CrowdskyError as exc:
        print(f"crowdsky: {_cli_wording(str(exc))}", file=sys.stderr)
        return 2 if isinstance(exc, (PlanError, SeestarAuthError, _UsageError)) else 1
    except KeyboardInterrupt:
        print(f"\ncrowdsky: {_interrupted(args.run)}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()  # `crowdsky ... | head`: the reader left; nothing more to say
        return 1
    except ImportError as exc:
        print(
            f"crowdsky: a package crowdsky needs is missing ({exc}); reinstall it with "
            "pip install --force-reinstall crowdsky",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
