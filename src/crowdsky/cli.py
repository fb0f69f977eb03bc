"""The ``crowdsky`` command line: argument parsing and rendering only.

Every subcommand builds what it needs through :mod:`crowdsky.bootstrap` (a Seestar: ``--simulator``
for the built-in one, ``--host`` for a real telescope; a server client), calls one application
function, prints its result and closes what it opened. It never touches the module-level session
that ``import crowdsky`` users work with. Settings come from the command line, the environment,
the configuration file and the defaults, in that order (:mod:`crowdsky.app.config`). Work on a
telescope (``stack``, ``purge``, ``upload`` from a Seestar, and each telescope of ``run``)
starts with a pre-flight check (:mod:`crowdsky.app.preflight`). Messages are in command-line terms
(:mod:`crowdsky.cli_wording` replaces the library's Python names with options).

Exit status: 0 success; 1 something failed (a block, a target, a file, the device or server);
2 a usage or configuration problem (argparse's own errors, a
:class:`~crowdsky.errors.ConfigError`, a :class:`~crowdsky.errors.PlanError` from the arguments,
no telescope chosen, a missing key, a link pre-flight found down; but for ``run`` such a
telescope is one that failed, status 1, as the others go on); 130 after Ctrl-C, with the
device left clean and a line saying what finished. ``--json`` prints one JSON
document on standard output and nothing else there.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdsky.cli_wording import (
    PREFLIGHT_FIXES,
    CommandRun,
    cli_wording,
    first_sentence,
    interrupted_line,
)
from crowdsky.errors import (
    ConfigError,
    CrowdskyError,
    CrowdskyWarning,
    NoSeestarError,
    PlanError,
    SeestarAuthError,
    SeestarConnectionError,
    UploadsInterrupted,
)

if TYPE_CHECKING:
    from crowdsky.adapters.collab import HttpCollabServer
    from crowdsky.app.config import Settings
    from crowdsky.app.ports import Progress, Seestar
    from crowdsky.app.service import Crowdsky
    from crowdsky.domain.preflight import Link

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _add_wait_option(parser: argparse.ArgumentParser) -> None:
    """``--wait SECONDS``: how long a busy telescope is waited for (``stack``, ``run``)."""
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="if the Seestar is imaging, wait up to this long for it to finish (default: skip)",
    )


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
        "--scope", help="a telescope named in the configuration file (default: $CROWDSKY_SCOPE)"
    )
    group.add_argument(
        "--host",
        help="address of a real Seestar ($CROWDSKY_HOST, $SEESTAR_HOST), e.g. 192.168.1.83",
    )
    group.add_argument(
        "--key", dest="key", help="PEM key for firmware 7.18+ ($CROWDSKY_KEY, $SEESTAR_KEY_PATH)"
    )
    group.add_argument(
        "--share",
        help="directory where the OS mounted the Seestar's 'EMMC Images' share (instead of SMB)",
    )
    group.add_argument("--port", type=int, help="JSON-RPC port (default 4700)")
    group.add_argument("--http-port", type=int, help="file server port (default 80)")
    group.add_argument("--smb-port", type=int, help="SMB port (default 445)")


def _add_local_options(parser: argparse.ArgumentParser) -> None:
    """``--local-dir`` (sub-frames copied to this computer) and ``--dest`` (where stacks go)."""
    group = parser.add_argument_group("sub-frames on this computer")
    group.add_argument(
        "--local-dir",
        dest="archive",
        type=Path,
        metavar="DIR",
        help="work on sub-frames copied from the Seestar to this folder (MyWorks, a <target>_sub "
        "folder or any folder of Light_*.fit) and stack them on this computer; stacking needs "
        'pip install "crowdsky[stack]"',
    )
    group.add_argument(
        "--dest",
        type=Path,
        metavar="OUT",
        help="with --local-dir: where stacks are written, OUT/<target>/ "
        f"(default DIR/{_LOCAL_OUTPUT_NAME})",
    )


#: The default output folder inside --local-dir (see crowdsky.bootstrap.LOCAL_OUTPUT_NAME).
_LOCAL_OUTPUT_NAME = "CrowdSky"


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    # Only planning uses the zone; elsewhere --tz would be accepted and silently ignored.
    parser.add_argument(
        "--tz", help="the telescope's IANA time zone (plans blocks), if it reports a wrong one"
    )
    parser.add_argument("--block-minutes", type=int, help="block length (default 15)")
    parser.add_argument(
        "--min-exptime",
        type=float,
        help="skip blocks with less total exposure in seconds (default 240)",
    )


_SETTING_OPTIONS = (
    "host",
    "key",
    "share",
    "tz",
    "port",
    "http_port",
    "smb_port",
    "block_minutes",
    "min_exptime",
    "url",
)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings in effect for this command (cached on ``args``)."""
    cached: Settings | None = getattr(args, "_settings", None)
    if cached is None:
        from crowdsky import bootstrap

        given = {name: getattr(args, name, None) for name in _SETTING_OPTIONS}
        cached = bootstrap.load_settings(given, scope=getattr(args, "scope", None))
        args._settings = cached
    return cached


def _progress(args: argparse.Namespace) -> Progress:
    from crowdsky import bootstrap
    from crowdsky.cli_progress import CountingProgress

    inner = bootstrap.console_progress(to_stderr=args.json, quiet=args.quiet)
    return CountingProgress(inner, args.run)


def _emit_json(payload: Any) -> None:
    print(json.dumps(_jsonable(payload), indent=2, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO 8601, paths as strings, attrs values as dicts."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(type(value), "__attrs_attrs__"):  # attrs.has(), without importing attrs first
        import attrs

        fields = attrs.asdict(value, recurse=False)
        fields.pop("raw", None)
        return _jsonable(fields)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


@contextlib.contextmanager
def _seestar(args: argparse.Namespace) -> Iterator[Seestar]:
    """The telescope the options name, closed (batch stack left clean) when done."""
    from crowdsky import bootstrap

    settings = _settings(args)
    if args.simulator_reset and not args.simulator:
        raise ConfigError("--simulator-reset goes with --simulator.")
    archive = _local_archive(args)
    if archive is not None:
        seestar: Seestar = archive
    elif args.simulator:
        seestar = bootstrap.cached_simulator_seestar(reset=args.simulator_reset)
    elif not settings["host"]:
        raise ConfigError(
            "No telescope chosen: pass --host <address> (or set CROWDSKY_HOST, or name one with "
            "--scope from the configuration file), or --simulator to try crowdsky on the "
            "built-in simulator."
        )
    else:
        seestar = bootstrap.network_seestar(
            settings["host"],
            key_path=settings["key"],
            mounted_share=settings["share"],
            port=settings["port"],
            http_port=settings["http_port"],
            smb_port=settings["smb_port"],
        )
    args.run.telescope = archive is None  # no Seestar to leave clean after a Ctrl-C
    try:
        yield seestar
    finally:
        close = getattr(seestar, "close", None)
        if callable(close):
            close()


def _local_archive(args: argparse.Namespace) -> Seestar | None:
    """The local archive ``--local-dir`` names (``None`` without it); refused with a telescope.

    A folder that does not exist or holds no ``Light_*.fit`` is a usage error (exit 2).
    """
    from crowdsky import bootstrap

    if not hasattr(args, "archive"):
        return None  # a command without --local-dir DIR (upload's --local-dir is another thing)
    archive: Path | None = args.archive
    dest: Path | None = args.dest
    if archive is None:
        if dest is not None:
            raise ConfigError("--dest goes with --local-dir (where the stacks of DIR go).")
        return None
    if args.simulator or args.host:
        raise ConfigError(
            "--local-dir works on sub-frames on this computer; leave out --simulator and --host."
        )
    if not archive.is_dir():
        raise ConfigError(
            f"--local-dir {archive}: no such folder. Give the folder you copied the Seestar's "
            "sub-frames to (its MyWorks folder, a <target>_sub folder, or any folder of "
            "Light_*.fit)."
        )
    return bootstrap.local_archive_seestar(archive, dest)


@contextlib.contextmanager
def _service(args: argparse.Namespace) -> Iterator[Crowdsky]:
    """The workflow on the chosen telescope, with this command's progress; both closed after."""
    from crowdsky import bootstrap

    with _seestar(args) as seestar, _closing(_progress(args)) as progress:
        yield bootstrap.crowdsky_service(seestar, tz=_settings(args)["tz"], progress=progress)


@contextlib.contextmanager
def _closing(progress: Progress) -> Iterator[Progress]:
    try:
        yield progress
    finally:
        close = getattr(progress, "close", None)
        if callable(close):
            close()


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args)
    return {"block_minutes": settings["block_minutes"], "min_exptime": settings["min_exptime"]}


def _cmd_targets(args: argparse.Namespace) -> int:
    with _service(args) as service:
        targets = service.list_targets()
    if args.json:
        _emit_json(targets)
        return 0
    for t in targets:
        print(f"{t['target']:25s} raw={t['raw_files']:>5d} stacked={t['stacked_files']:>3d}")
    return 0


def _cmd_time(args: argparse.Namespace) -> int:
    with _service(args) as service:
        report = service.clock_report()
    if args.json:
        _emit_json(_time_json(report))
        return 0
    device = report["device_time"]
    zone = report["device_zone"] or "(no zone reported)"
    shown = f"{device:%Y-%m-%d %H:%M:%S} {zone}" if device else "(no time reported)"
    print(f"Seestar:  {shown}")
    print(f"Computer: {report['host_time']:%Y-%m-%d %H:%M:%S} {report['host_zone']}")
    if report["drift_s"] is not None:
        print(f"Device clock minus computer clock: {report['drift_s']:+.0f} s")
    if report.get("device_model"):
        print(f"Model:    {report['device_model']}")
    if report.get("firmware"):
        number = f" ({report['firmware_int']})" if report.get("firmware_int") else ""
        print(f"Firmware: {report['firmware']}{number}")
    return 0


def _time_json(report: dict[str, Any]) -> dict[str, Any]:
    """The clock report with the device's wall clock given its offset when its zone is known."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    device, zone = report["device_time"], report["device_zone"]
    if isinstance(device, datetime) and device.tzinfo is None and zone:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            device = device.replace(tzinfo=ZoneInfo(zone))
    return {**report, "device_time": device}


def _cmd_plan(args: argparse.Namespace) -> int:
    with _service(args) as service:
        blocks = service.find_unstacked_blocks(args.target, **_run_options(args))
    if args.json:
        _emit_json(blocks)
        return 0
    for b in blocks:
        print(
            f"  {b['block_start']:%Y-%m-%d %H:%M}-{b['block_end']:%H:%M}  {b['chunk_key']:>15s}  "
            f"{b['frame_count']:>3d} frames {b['exposure']} {b['filter']}"
        )
    print(f"{len(blocks)} unstacked block(s) for {args.target}")
    return 0


class _NotReady(Exception):
    """Pre-flight found problems; already printed. ``status`` is the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _preflight(
    args: argparse.Namespace,
    service: Crowdsky,
    *,
    links: frozenset[Link] | None = None,
    check_state: bool = False,
) -> None:
    """Check the links (every link by default; and, for stacking, that the telescope is idle).

    Prints one line per problem and raises :class:`_NotReady`: exit status 2 for configuration,
    1 for a busy telescope that was left alone.
    """
    from crowdsky.app.preflight import preflight
    from crowdsky.domain.preflight import Link, Problem

    findings = preflight(
        service.seestar,
        links=frozenset(Link) if links is None else links,
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
            what, fix = PREFLIGHT_FIXES[finding.problem.value]
            print(f"crowdsky: {what}: {fix}. ({first_sentence(finding.detail)})", file=sys.stderr)
    if findings:
        raise _NotReady(2 if any(f.problem.is_configuration for f in findings) else 1)


def _cmd_stack(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    options = {**_run_options(args), "dry_run": args.dry_run}
    with _service(args) as service:
        if args.archive is not None and not args.dry_run:
            bootstrap.check_local_stacker()  # a missing [stack] extra is said before any work
        _preflight(args, service, check_state=not args.dry_run)
        if args.target:
            result = service.stack_blocks(args.target, **options)
        else:
            result = service.stack_all(**options)
        terminal = service.progress
    if args.target:
        failed = bool(result["blocks_failed"])
    else:
        failed = bool(result["total_blocks_failed"] or result["targets_failed"])
    if args.json:
        _emit_json(result)
        return 1 if failed else 0
    _print_stack_report(args, result, terminal, options["min_exptime"])
    return 1 if failed else 0


def _print_stack_report(
    args: argparse.Namespace, result: dict[str, Any], progress: Progress, min_exptime: float
) -> None:
    """The skipped blocks with their exposure, "would stack N blocks", the table, the summary."""
    per_target = {result["target"]: result} if args.target else result["results"]
    for line in _skipped_block_lines(per_target, min_exptime):
        print(line)
    if args.dry_run:
        planned = sum(int(r["blocks_planned"]) for r in per_target.values())
        print(f"Would stack {planned} block{'s' if planned != 1 else ''}")
    table = getattr(progress, "summary_table", None)  # the live display draws one
    if callable(table):
        table(per_target, result.get("targets_failed", {}))
    if args.target:
        print(
            f"Stacked: {result['blocks_stacked']} Failed: {result['blocks_failed']} "
            f"Skipped: {result['blocks_skipped']}"
        )
        return
    print(
        f"Stacked: {result['total_blocks_stacked']} Failed: {result['total_blocks_failed']} "
        f"Skipped: {result['total_blocks_skipped']} across {result['targets_processed']} targets"
    )


def _skipped_block_lines(results: Mapping[str, Mapping[str, Any]], min_exptime: float) -> list[str]:
    """One line per block skipped for too little exposure, with its exposure and date.

    ``results`` maps each target to its :meth:`~crowdsky.app.service.Crowdsky.stack_blocks`
    result.
    """
    skipped = [
        (target, block)
        for target, result in results.items()
        for block in result["blocks"]
        if block["status"] == "skipped"
    ]
    if not skipped:
        return []
    lines = [f"Skipped (less than {min_exptime:g}s of exposure):"]
    for target, block in skipped:
        start, end = block["block_start"], block["block_end"]
        lines.append(
            f"  {target} {start:%Y-%m-%d %H:%M}-{end:%H:%M}: {block['frame_count']} frames x "
            f"{block['exposure']} = {block['total_exposure_s']:g}s"
        )
    return lines


def _cmd_purge(args: argparse.Namespace) -> int:
    if not (args.yes or args.dry_run):
        raise ConfigError(
            "purge deletes CrowdSky_* stacks from the Seestar; add --yes to confirm, or "
            "--dry-run to see what would go."
        )
    from crowdsky.domain.preflight import Link

    with _service(args) as service:
        _preflight(args, service, links=frozenset({Link.CONTROL, Link.RENAME}))
        result = service.purge_crowdsky_stacks(args.target, dry_run=args.dry_run)
    code = 1 if result["files_failed"] else 0
    if args.json:
        _emit_json(result)
        return code
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {len(result['files_deleted'])} file(s); {len(result['files_failed'])} failed")
    return code


def _refuse_json(args: argparse.Namespace) -> None:
    if args.json:
        raise ConfigError(
            f"{args.command} runs until Ctrl-C and prints its address as text; --json is for "
            "the commands that finish."
        )


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

    _refuse_json(args)
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
    # The password comes from $CROWDSKY_PASSWORD, the keyring or a prompt: never from argv,
    # where other users of the machine could read it, nor from the configuration file.
    from crowdsky import bootstrap

    settings = _settings(args)
    username = settings["username"]
    terminal = sys.stdin.isatty()
    password = bootstrap.server_password(username, prompt=terminal)
    if username and password is None:
        asked = "none was typed" if terminal else "standard input is not a terminal to ask on"
        raise ConfigError(
            f"No CrowdSky password for {username} ({asked}): set $CROWDSKY_PASSWORD, or store "
            f"it with 'keyring set crowdsky {username}' (keyring installed); the configuration "
            "file never holds it."
        )
    return bootstrap.collab_server(
        settings["url"],
        username=username,
        password=password,
        allow_insecure_http=args.insecure_http,
    )


def _cmd_upload(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap
    from crowdsky.domain.preflight import Link

    if args.local_dir is not None and not args.local_dir.is_dir():
        raise _UsageError(f"--local-dir {args.local_dir}: no such folder.")
    if args.local_dir is None:
        _dest_folder(args.dest)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(_server(args))
        if args.local_dir is None:  # downloads only: the control link and the file server
            service = stack.enter_context(_service(args))
            _preflight(args, service, links=frozenset({Link.CONTROL, Link.FILES}))
            seestar, progress = service.seestar, service.progress
        else:
            seestar, progress = None, stack.enter_context(_closing(_progress(args)))
        result = bootstrap.upload_stacks(
            server,
            seestar=seestar,
            target=args.target or None,
            dest=args.dest,
            local_dir=args.local_dir,
            dry_run=args.dry_run,
            skip_existing=not args.force,
            progress=progress,
        )
    code = 1 if result["files_failed"] else 0
    if args.json:
        _emit_json(result)
        return code
    for failure in result["failed"]:
        print(f"  failed: {failure}", file=sys.stderr)
    print(
        f"Uploaded: {result['files_uploaded']} Skipped: {result['files_skipped']} "
        f"Failed: {result['files_failed']}"
    )
    return code


def _cmd_stacks(args: argparse.Namespace) -> int:
    with _server(args) as server:
        records = server.list_stacks(args.object)
    if args.json:
        _emit_json(records)
        return 0
    for record in records:
        print(f"{record.chunk_key}  {record.object_name or ''}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    _dest_folder(args.dest)
    with _server(args) as server, _closing(_progress(args)) as progress:
        paths = [
            server.download_stack(
                key, args.dest, on_bytes=functools.partial(progress.transfer, key)
            )
            for key in args.keys
        ]
    if args.json:
        _emit_json(paths)
        return 0
    for path in paths:
        print(path)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from crowdsky.app.config import ENVIRONMENT

    settings = _settings(args)
    from crowdsky import bootstrap

    password = bootstrap.server_password_source(settings["username"])
    report = {**settings.as_dict(), "password": password, "environment": ENVIRONMENT}
    if args.json:
        _emit_json(report)
        return 0
    path = settings.path
    exists = "" if path is None or path.exists() else " (not there yet)"
    print(f"Configuration file: {path}{exists}")
    print(
        f"Telescope (--scope): {settings.scope or '(none)'}; configured: "
        f"{', '.join(settings.scopes) or 'none'}"
    )
    for name, setting in settings.values.items():
        shown = "" if setting.value is None else setting.value
        print(f"  {name:14s} {shown!s:32s} ({setting.source})")
    print(f"  {'password':14s} {'********' if password != 'not set' else '':32s} ({password})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    _refuse_json(args)

    users = [tuple(u.split(":", 1)) for u in args.user] or [("username", "password")]
    if any(len(u) != 2 for u in users):
        raise _UsageError("--user takes NAME:PASSWORD")
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


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on standard output (progress goes to standard error)",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress, only results and errors"
    )
    return common


class _Subparsers:
    """``add_subparsers()`` that gives every command the output options."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self._action = action
        self._common = common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._action.add_parser(
            name, parents=[self._common], **kwargs
        )
        return parser


def _enable_completion(parser: argparse.ArgumentParser) -> None:
    """Shell completion through ``argcomplete``, when it is installed (optional)."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _parser() -> argparse.ArgumentParser:
    from crowdsky import __version__

    parser = argparse.ArgumentParser(
        prog="crowdsky",
        description="Clock-aligned time-block stacking on ZWO Seestar telescopes.",
        epilog="Exit status: 0 success, 1 something failed, 2 usage or configuration, "
        "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"crowdsky {__version__}")
    common = _common_options()
    sub = _Subparsers(parser.add_subparsers(dest="command", required=True), common)

    p = sub.add_parser("targets", help="list targets with raw sub-frames")
    _add_device_options(p)
    _add_local_options(p)
    p.set_defaults(handler=_cmd_targets)

    p = sub.add_parser("time", help="show the Seestar's date, time and zone beside this computer's")
    _add_device_options(p)
    p.set_defaults(handler=_cmd_time)

    p = sub.add_parser("plan", help="show the unstacked blocks of a target")
    p.add_argument("target")
    _add_device_options(p)
    _add_local_options(p)
    _add_plan_options(p)
    p.set_defaults(handler=_cmd_plan)

    p = sub.add_parser(
        "stack",
        help="batch-stack unstacked blocks (one target, or all), on the Seestar or, with "
        "--local-dir, on this computer",
    )
    p.add_argument("target", nargs="?", help="target name; all targets when omitted")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    _add_wait_option(p)
    _add_device_options(p)
    _add_local_options(p)
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
    p.add_argument("--firmware", default="7.75", help="7.75, 7.32, 7.18, 7.06, 6.70, old or 2.x")
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

    p = sub.add_parser("config", help="show where the configuration file is and what is in effect")
    p.add_argument("--scope", help="a telescope named in the configuration file")
    p.set_defaults(handler=_cmd_config, url=None)

    from crowdsky.cli_night import register

    register(sub)
    _enable_completion(parser)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"warning: {message}", file=sys.stderr)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (redirections and tests replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


@contextlib.contextmanager
def _logging_for(args: argparse.Namespace) -> Iterator[None]:
    """The ``crowdsky`` logger's level and handler for one command, put back afterwards.

    The library's log records are detail for ``-v``: by default the command line prints its own
    one-line messages and nothing else.
    """
    level = logging.ERROR
    if args.quiet:
        level = logging.CRITICAL
    elif args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    logger = logging.getLogger("crowdsky")
    previous = logger.level
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("crowdsky: %(levelname)s: %(message)s"))
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


#: Errors that mean "the command was asked wrongly or the settings are wrong": exit status 2.
_USAGE_ERRORS = (ConfigError, PlanError, NoSeestarError, SeestarAuthError, _UsageError)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; with the reader gone that would raise again.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 success; 1 something failed; 2 usage or configuration problem; 130 interrupted.
    """
    args = _parser().parse_args(argv)
    args.run = CommandRun()
    handler: Handler = args.handler
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with _logging_for(args), warnings.catch_warnings():
            warnings.simplefilter("always", CrowdskyWarning)
            return handler(args)
    except _NotReady as not_ready:
        return not_ready.status
    except _USAGE_ERRORS as exc:
        print(f"crowdsky: {cli_wording(str(exc))}", file=sys.stderr)
        return 2
    except SeestarConnectionError as exc:
        done = args.run.summary()
        stopped = f" Stopped: {done}." if done else ""
        print(f"crowdsky: {cli_wording(str(exc))}{stopped}", file=sys.stderr)
        return 1
    except CrowdskyError as exc:
        print(f"crowdsky: {cli_wording(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, UploadsInterrupted):
            args.run.uploads = interrupt.summary()
        print(f"\ncrowdsky: {interrupted_line(args.run)}", file=sys.stderr)
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


def entry_point(argv: Sequence[str] | None = None) -> int:
    """The ``crowdsky`` program: :func:`main`, then an exit no late Ctrl-C can spoil.

    Once the command has returned there is nothing left to stop; a SIGINT arriving while Python
    shuts down (closing the session's server client, say) would otherwise print a
    ``KeyboardInterrupt`` traceback after a finished command.
    """
    status = main(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry_point())
