"""The night's subcommands: ``run``, ``status``, ``discover`` and ``demo``.

Kept apart from :mod:`crowdsky.cli` (which calls :func:`register`); like it, argument parsing and
rendering only: everything is built through :mod:`crowdsky.bootstrap`.

``--host`` may be repeated to work on several telescopes at once; each is written
``ADDRESS[:PORT[:HTTP_PORT]]`` (``seestar.local`` works: the operating system resolves it), and
``--share`` is repeated in the same order when shares are mounted.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdsky.cli import (
    _add_device_options,
    _add_plan_options,
    _add_server_options,
    _add_wait_option,
    _emit_json,
    _server,
    _settings,
)
from crowdsky.cli_wording import PREFLIGHT_FIXES, first_sentence
from crowdsky.errors import ConfigError, PlanError

if TYPE_CHECKING:
    from crowdsky.app.night import Telescope
    from crowdsky.app.server_port import CollabServer

__all__ = ["register"]

_DEFAULT_DEST = Path("crowdsky-stacks")


def _add_telescopes_options(parser: argparse.ArgumentParser) -> None:
    """The device options of :mod:`crowdsky.cli`, with ``--host`` and ``--share`` repeatable."""
    _add_device_options(parser)
    # conflict_handler="resolve" lets these replace the single-valued options added above.
    parser.add_argument(
        "--host",
        action="append",
        help="a Seestar's ADDRESS[:PORT[:HTTP_PORT]]; repeat for several telescopes "
        "(default: the configured one, $CROWDSKY_HOST or $SEESTAR_HOST)",
    )
    parser.add_argument(
        "--share",
        action="append",
        help="where the OS mounted a Seestar's 'EMMC Images' share; repeat in --host order",
    )
    parser.add_argument(
        "--local-dir",
        dest="archive",
        type=Path,
        metavar="DIR",
        help="instead of a telescope: sub-frames copied to this folder, stacked on this "
        "computer into --dest (default DIR/CrowdSky) and uploaded from there; stacking needs "
        'pip install "crowdsky[stack]"',
    )


def _common_settings(args: argparse.Namespace) -> Any:
    """The settings in effect for everything but the (repeatable) telescope addresses."""
    return _settings(argparse.Namespace(**{**vars(args), "host": None, "share": None}))


def _hosts(args: argparse.Namespace, settings: Any) -> list[str]:
    if args.host:
        return list(args.host)
    return [settings["host"]] if settings["host"] else []


def _split_host(text: str, port: int, http_port: int) -> tuple[str, int, int]:
    """``ADDRESS[:PORT[:HTTP_PORT]]`` → address and ports (the defaults when not given)."""
    address, *ports = text.split(":")
    try:
        numbers = [int(p) for p in ports]
    except ValueError:
        raise PlanError(f"--host {text}: write ADDRESS[:PORT[:HTTP_PORT]]") from None
    if not address or len(numbers) > 2:
        raise PlanError(f"--host {text}: write ADDRESS[:PORT[:HTTP_PORT]]")
    numbers += [port, http_port][len(numbers) :]
    return address, numbers[0], numbers[1]


def _telescopes(args: argparse.Namespace) -> list[Telescope]:
    """The telescopes the options name."""
    from crowdsky import bootstrap

    settings = _common_settings(args)
    if args.archive is not None:
        return [_local_telescope(args, settings)]
    if args.simulator:
        return [bootstrap.simulator_telescope()]
    hosts = _hosts(args, settings)
    if not hosts:
        raise ConfigError(
            "No telescope chosen: pass --host <address> (repeat it for several; or set "
            "CROWDSKY_HOST, or configure one), or --simulator to try crowdsky on the built-in "
            "simulator."
        )
    configured_share = [] if args.host or not settings["share"] else [settings["share"]]
    shares: list[str | None] = list(args.share or configured_share)
    if shares and len(shares) != len(hosts):
        raise PlanError(f"{len(hosts)} --host but {len(shares)} --share: give one per --host")
    shares = shares or [None] * len(hosts)
    telescopes = []
    for host, share in zip(hosts, shares, strict=True):
        address, port, http_port = _split_host(host, settings["port"], settings["http_port"])
        telescopes.append(
            bootstrap.network_telescope(
                address,
                name=host,
                tz=settings["tz"],
                key_path=settings["key"],
                mounted_share=share,
                port=port,
                http_port=http_port,
                smb_port=settings["smb_port"],
            )
        )
    return telescopes


def _local_telescope(args: argparse.Namespace, settings: Any) -> Telescope:
    """The local archive of ``--local-dir``, its stacks in ``--dest`` (default DIR/CrowdSky)."""
    from crowdsky import bootstrap

    if args.simulator or args.host:
        raise ConfigError(
            "--local-dir works on sub-frames on this computer; leave out --simulator and --host."
        )
    if not args.archive.is_dir():
        raise ConfigError(
            f"--local-dir {args.archive}: no such folder. Give the folder you copied the "
            "Seestar's sub-frames to (its MyWorks folder, a <target>_sub folder, or any folder "
            "of Light_*.fit)."
        )
    telescope = bootstrap.local_archive_telescope(args.archive, args.dest, tz=settings["tz"])
    telescope.open()  # a folder without Light_*.fit is said now (exit 2), not per telescope
    if args.command == "run":
        bootstrap.check_local_stacker()  # and so is a missing [stack] extra
    return telescope


@contextlib.contextmanager
def _maybe_server(args: argparse.Namespace) -> Iterator[CollabServer | None]:
    if args.no_upload:
        yield None
        return
    with _server(args) as server:
        yield server


def _over_the_telescopes(
    args: argparse.Namespace, job: Callable[..., dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """``job`` (run or status) over the telescopes and the server the options name.

    Returns its result and whether a server was asked.
    """
    telescopes = _telescopes(args)
    settings = _common_settings(args)
    with _maybe_server(args) as server:
        result = job(
            telescopes,
            server,
            dest=args.dest or _DEFAULT_DEST,
            block_minutes=settings["block_minutes"],
            min_exptime=settings["min_exptime"],
        )
    return result, server is not None


def _cmd_run(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    args.run.night = True  # a Ctrl-C says what became of the telescopes' batch stacks
    ports = bootstrap.night_ports(to_stderr=args.json, quiet=args.quiet)

    def run(*telescopes_and_server: Any, **options: Any) -> dict[str, Any]:
        return bootstrap.run_night(*telescopes_and_server, ports=ports, wait=args.wait, **options)

    result, uploading = _over_the_telescopes(args, run)
    if args.json:
        _emit_json(result)
    else:
        print_night(result, uploading=uploading)
    return 0 if result["ok"] else 1


def print_night(result: dict[str, Any], *, uploading: bool = True) -> None:
    """The summary of :func:`crowdsky.bootstrap.run_night`: one line per telescope."""
    print("Summary:")
    for t in result["telescopes"]:
        if t["busy"]:
            print(
                f"  {t['telescope']}: SKIPPED: busy ({t['busy']} running), left alone; run again "
                "when it is idle, or wait for it with --wait SECONDS"
            )
            continue
        if t["preflight"]:
            print(f"  {t['telescope']}: FAILED before any work: {_preflight_fix(t['preflight'])}")
            continue
        if t["error"] and not (t["blocks_stacked"] or t["files_uploaded"]):
            print(f"  {t['telescope']}: FAILED: {t['error']}")
            continue
        line = (
            f"  {t['telescope']}: stacked {t['blocks_stacked']}, failed {t['blocks_failed']}, "
            f"skipped {t['blocks_skipped']}"
        )
        if uploading:
            line += (
                f"; uploaded {t['files_uploaded']}, already there {t['files_skipped']}, "
                f"upload failed {t['files_failed']}"
            )
        print(line)
        for problem in (t["error"], t["upload_error"], *t["targets_failed"].values()):
            if problem:
                print(f"    {problem}")
        for failure in t["failed"]:
            print(f"    upload failed: {failure['name']}: {failure['error']}")


def _preflight_fix(findings: list[dict[str, str]]) -> str:
    """The first pre-flight finding as what is wrong, the option that fixes it, and the detail."""
    finding = findings[0]
    what, fix = PREFLIGHT_FIXES[finding["problem"]]
    return f"{what}: {fix}. ({first_sentence(finding['detail'])})"


def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="the night's job: stack every block on every telescope and upload the stacks",
        conflict_handler="resolve",
    )
    _add_telescopes_options(p)
    _add_plan_options(p)
    _add_server_options(p)
    _add_dest_option(p)
    p.add_argument("--no-upload", action="store_true", help="stack only; upload nothing")
    _add_wait_option(p)
    p.set_defaults(handler=_cmd_run)


_STATES = (
    ("not_stacked", "not stacked yet"),
    ("on_telescope", "stacked, not uploaded"),
    ("on_server", "on the server"),
)


def _cmd_status(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    ports = bootstrap.night_ports(to_stderr=args.json, quiet=args.quiet)

    def status(*telescopes_and_server: Any, **options: Any) -> dict[str, Any]:
        return bootstrap.night_status(*telescopes_and_server, ports=ports, **options)

    result, _ = _over_the_telescopes(args, status)
    if args.json:
        _emit_json(result)
    else:
        print_status(result, verbose=args.verbose > 0)
    return 1 if any(t["error"] for t in result["telescopes"]) else 0


def print_status(result: dict[str, Any], *, verbose: bool = False) -> None:
    """The table of :func:`crowdsky.bootstrap.night_status`; chunk keys too when ``verbose``."""
    for t in result["telescopes"]:
        print(f"{t['telescope']}:")
        if t["error"]:
            print(f"  cannot be asked: {t['error']}")
            continue
        if t["server_error"]:
            print(f"  server not asked ({t['server_error']}): stacks counted as not uploaded")
        if not t["targets"]:
            print("  nothing to stack, nothing stacked")
        for target in t["targets"]:
            counts = ", ".join(f"{target[key + '_count']} {label}" for key, label in _STATES)
            print(f"  {target['target']}: {counts}")
            if verbose:
                for key, label in _STATES:
                    for block in target[key]:
                        print(f"    {label}: {block}")


def _add_status(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="per telescope and target: blocks not stacked, stacked, and on the server",
        conflict_handler="resolve",
    )
    _add_telescopes_options(p)
    _add_plan_options(p)
    _add_server_options(p)
    _add_dest_option(p)
    p.add_argument("--no-upload", action="store_true", help="do not ask the server")
    p.set_defaults(handler=_cmd_status)


def _add_dest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dest",
        type=Path,
        help=f"where stacks are downloaded, per telescope (default ./{_DEFAULT_DEST}); with "
        "--local-dir, where the stacks are written (default DIR/CrowdSky)",
    )


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, 4720
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: write ADDRESS[:PORT]") from None


def _cmd_discover(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    found = bootstrap.discover_seestars(
        args.to or None,
        timeout=args.timeout,
        ask_firmware=not args.no_firmware,
        port=args.port,
        key_path=args.key_path,
    )
    if not found:
        print("No Seestar answered (is it on, and on this network?).")
        return 1
    print(f"{'ADDRESS':16s} {'MODEL':14s} {'SERIAL':12s} FIRMWARE")
    for s in found:
        print(
            f"{s['address']:16s} {s['model'] or '?':14s} {s['serial'] or '?':12s} "
            f"{s['firmware'] or '?'}"
        )
    return 0


def _add_discover(sub: Any) -> None:
    p = sub.add_parser("discover", help="find Seestars on the local network (UDP scan_iscope)")
    p.add_argument(
        "--to",
        type=_address,
        action="append",
        help="probe ADDRESS[:PORT] only (repeatable; default: the local broadcast addresses, "
        "port 4720)",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait (default 2)")
    p.add_argument("--no-firmware", action="store_true", help="do not ask for the firmware")
    p.add_argument(
        "--port", type=int, default=4700, help="JSON-RPC port asked for the firmware (4700)"
    )
    p.add_argument("--key", dest="key_path", help="PEM key for firmware 7.18+")
    p.set_defaults(handler=_cmd_discover)


def _demo_folder(args: argparse.Namespace) -> Path:
    if args.dir is None:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="crowdsky-demo-"))
    folder = Path(args.dir)
    if folder.exists() and any(folder.iterdir()):
        raise PlanError(f"--dir {folder}: choose an empty or new folder")
    return folder


def _cmd_demo(args: argparse.Namespace) -> int:
    from crowdsky import bootstrap

    folder = _demo_folder(args)
    dest = folder / "downloads"
    print(f"Starting two simulated Seestars and a CrowdSky server on this computer ({folder})...")
    with bootstrap.demo(folder) as demo:
        for telescope, zone in zip(demo.telescopes, demo.zones, strict=True):
            print(f"  {telescope.name}: a night in {zone}")
        print("crowdsky run (both telescopes at once, uploads while the next block stacks):")
        result = bootstrap.run_night(demo.telescopes, demo.server, dest=dest)
        print_night(result)
        print("crowdsky status:")
        print_status(bootstrap.night_status(demo.telescopes, demo.server, dest=dest))
    print("Where the files are:")
    for telescope, root in zip(demo.telescopes, demo.telescope_roots, strict=True):
        print(f"  {telescope.name}'s storage (CrowdSky_* stacks beside the subs): {root}/MyWorks")
    print(f"  downloaded stacks and upload journals: {dest}")
    print(f"  the server's files: {demo.server_storage}")
    print("Everything has stopped. Next: crowdsky discover, then crowdsky run --host <address>.")
    return 0 if result["ok"] else 1


def _add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="the night's job on two simulated Seestars and a local CrowdSky server",
    )
    p.add_argument("--dir", type=Path, help="where the demo's files go (default: a new temp dir)")
    p.set_defaults(handler=_cmd_demo)


def register(subparsers: Any) -> None:
    """Add ``run``, ``status``, ``discover`` and ``demo`` to the ``crowdsky`` command line.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.
    """
    _add_run(subparsers)
    _add_status(subparsers)
    _add_discover(subparsers)
    _add_demo(subparsers)
