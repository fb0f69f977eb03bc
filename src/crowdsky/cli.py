"""The ``crowdsky`` command line: argument parsing and rendering only.

Every subcommand builds what it needs through :mod:`crowdsky.bootstrap` (a Seestar: ``--simulator``
for the built-in one, ``--host`` for a real telescope; a server client), calls one application
function, prints its result and closes what it opened. It never touches the module-level session
that ``import crowdsky`` users work with. Settings come from the command line, the environment,
the configuration file and the defaults, in that order (:mod:`crowdsky.app.config`).

Exit status: 0 success; 1 something failed (a block, a target, a file, the device or server);
2 a usage or configuration problem (argparse's own errors, a
:class:`~crowdsky.errors.ConfigError`, a :class:`~crowdsky.errors.PlanError` from the arguments,
no telescope chosen); 130 after Ctrl-C, with the device left clean. ``--json`` prints one JSON
document on standard output and nothing else there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from crowdsky.errors import (
    ConfigError,
    CrowdskyError,
    CrowdskyWarning,
    NoSeestarError,
    PlanError,
)

if TYPE_CHECKING:
    from crowdsky.adapters.collab import HttpCollabServer
    from crowdsky.app.config import Settings
    from crowdsky.app.ports import Progress, Seestar
    from crowdsky.app.service import Crowdsky

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("telescope")
    group.add_argument(
        "--simulator",
        action="store_true",
        help="use the built-in in-memory Seestar with a demo night (no telescope needed)",
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
    group.add_argument("--tz", help="the telescope's IANA time zone, if it reports a wrong one")


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
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

    return bootstrap.console_progress(to_stderr=args.json, quiet=args.quiet)


def _emit_json(payload: Any) -> None:
    print(json.dumps(_jsonable(payload), indent=2, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO 8601, paths as strings, attrs values as dicts."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if attrs.has(type(value)):
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
    if args.simulator:
        seestar: Seestar = bootstrap.simulator_seestar()
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
    try:
        yield seestar
    finally:
        close = getattr(seestar, "close", None)
        if callable(close):
            close()


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


def _cmd_stack(args: argparse.Namespace) -> int:
    options = {**_run_options(args), "dry_run": args.dry_run}
    with _service(args) as service:
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
    with _service(args) as service:
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


def _cmd_simulate(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    _refuse_json(args)

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
    password = bootstrap.server_password(username, prompt=sys.stdin.isatty())
    return bootstrap.collab_server(
        settings["url"],
        username=username,
        password=password,
        allow_insecure_http=args.insecure_http,
    )


def _cmd_upload(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(_server(args))
        seestar = stack.enter_context(_seestar(args)) if args.local_dir is None else None
        progress = stack.enter_context(_closing(_progress(args)))
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
    with _server(args) as server:
        paths = [server.download_stack(key, args.dest) for key in args.keys]
    if args.json:
        _emit_json(paths)
        return 0
    for path in paths:
        print(path)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    import os

    from crowdsky.app.config import ENVIRONMENT

    settings = _settings(args)
    password = "set in $CROWDSKY_PASSWORD" if os.environ.get("CROWDSKY_PASSWORD") else "not set"
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
        raise CrowdskyError("--user takes NAME:PASSWORD")
    bootstrap.serve_loopback(args.bind, args.port, args.storage, [(u[0], u[1]) for u in users])
    return 0


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


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING
    if args.quiet:
        level = logging.ERROR
    elif args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    logger = logging.getLogger("crowdsky")
    logger.setLevel(level)
    if not any(getattr(h, "_crowdsky_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("crowdsky: %(levelname)s: %(message)s"))
        handler._crowdsky_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


#: Errors that mean "the command was asked wrongly or the settings are wrong": exit status 2.
_USAGE_ERRORS = (ConfigError, PlanError, NoSeestarError)


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
    _configure_logging(args)
    handler: Handler = args.handler
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", CrowdskyWarning)
            return handler(args)
    except _USAGE_ERRORS as exc:
        print(f"crowdsky: {exc}", file=sys.stderr)
        return 2
    except CrowdskyError as exc:
        print(f"crowdsky: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("crowdsky: interrupted; the Seestar's batch stack was stopped.", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
