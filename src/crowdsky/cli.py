"""The ``crowdsky`` command line: argument parsing and rendering only.

Every subcommand builds what it needs through :mod:`crowdsky.bootstrap` (a Seestar: ``--simulator``
for the built-in one, ``--host`` for a real telescope; a server client), calls one application
function, prints its result and closes what it opened. It never touches the module-level session
that ``import crowdsky`` users work with. A
:class:`~crowdsky.errors.CrowdskyError` becomes a one-line message and exit status 1; Ctrl-C exits
with 130 after the device was left clean.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdsky.errors import CrowdskyError, CrowdskyWarning

if TYPE_CHECKING:
    from crowdsky.adapters.collab import HttpCollabServer
    from crowdsky.app.ports import Seestar
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
    group.add_argument("--tz", help="the telescope's IANA time zone, if it reports a wrong one")


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
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

    if args.simulator:
        seestar: Seestar = bootstrap.simulator_seestar()
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
    try:
        yield seestar
    finally:
        close = getattr(seestar, "close", None)
        if callable(close):
            close()


def _service(args: argparse.Namespace, seestar: Seestar) -> Crowdsky:
    from crowdsky import bootstrap

    return bootstrap.crowdsky_service(seestar, tz=getattr(args, "tz", None))


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
    if report.get("device_model"):
        print(f"Model:    {report['device_model']}")
    if report.get("firmware"):
        number = f" ({report['firmware_int']})" if report.get("firmware_int") else ""
        print(f"Firmware: {report['firmware']}{number}")
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


def _cmd_stack(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "block_minutes": args.block_minutes,
        "min_exptime": args.min_exptime,
        "dry_run": args.dry_run,
    }
    with _seestar(args) as seestar:
        service = _service(args, seestar)
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
        result = _service(args, seestar).purge_crowdsky_stacks(args.target, dry_run=args.dry_run)
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {len(result['files_deleted'])} file(s); {len(result['files_failed'])} failed")
    return 1 if result["files_failed"] else 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

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

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(_server(args))
        seestar = stack.enter_context(_seestar(args)) if args.local_dir is None else None
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
    with _server(args) as server:
        for key in args.keys:
            print(server.download_stack(key, args.dest))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    users = [tuple(u.split(":", 1)) for u in args.user] or [("username", "password")]
    if any(len(u) != 2 for u in users):
        raise CrowdskyError("--user takes NAME:PASSWORD")
    bootstrap.serve_loopback(args.bind, args.port, args.storage, [(u[0], u[1]) for u in users])
    return 0


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

    from crowdsky.cli_night import register

    register(sub)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.
    """
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", CrowdskyWarning)
            return handler(args)
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
