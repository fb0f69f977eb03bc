"""The composition root: the one place that builds concrete adapters.

The library's module-level functions (:mod:`crowdsky.api`) and the command line
(:mod:`crowdsky.cli`) get every telescope, server client, clock and progress printer from here;
nothing else outside :mod:`crowdsky.adapters` constructs an adapter. Tests and scripts that want
other parts (a fake clock, quiet progress, an ``httpx.MockTransport``) pass them in.

Adapter modules are imported inside the functions, so ``import crowdsky`` stays light and loads
neither the network stack nor the simulator until one is asked for.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crowdsky.app.config import Settings, merge_settings
from crowdsky.app.ports import Clock, HeaderCache, Progress, Seestar, StackJournal
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions
from crowdsky.domain import DEFAULT_TILING, SkyTiling
from crowdsky.errors import PlanError
from crowdsky.session import ServerChoice

if TYPE_CHECKING:
    import httpx

    from crowdsky.adapters.collab import HttpCollabServer
    from crowdsky.adapters.device_model import FakeSeestar
    from crowdsky.adapters.local_archive import LocalArchive, StackBlock
    from crowdsky.adapters.seestar import NetworkSeestar
    from crowdsky.app.night import NightPorts, Telescope
    from crowdsky.app.server_port import CollabServer

__all__ = [
    "cached_simulator_seestar",
    "check_local_stacker",
    "close_session_server",
    "collab_server",
    "console_progress",
    "crowdsky_service",
    "demo",
    "discover_seestars",
    "header_cache",
    "load_settings",
    "local_archive_seestar",
    "local_archive_telescope",
    "local_output_dir",
    "local_stacker",
    "network_seestar",
    "network_telescope",
    "night_ports",
    "night_status",
    "print_progress",
    "resolve_zone",
    "run_night",
    "run_simulator",
    "serve_loopback",
    "server_password",
    "server_password_source",
    "session_server",
    "simulator_seestar",
    "simulator_telescope",
    "stack_journal",
    "system_clock",
    "upload_stacks",
]


def resolve_zone(tz: tzinfo | str | None) -> tzinfo | None:
    """A time zone from an IANA name (or a ``tzinfo`` as it is, or ``None``).

    Raises
    ------
    PlanError
        For a name the zone database does not know.
    """
    if tz is None or isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanError(
            f"Unknown time zone {tz!r}; use an IANA name such as 'Europe/Vienna'."
        ) from None


def simulator_seestar(**options: Any) -> FakeSeestar:
    """The built-in in-memory Seestar loaded with the demo night.

    Parameters
    ----------
    **options
        Passed to :func:`crowdsky.adapters.device_model.night.demo_seestar` (for example
        ``faults=``, ``zone=``).
    """
    from crowdsky.adapters.device_model import demo_seestar

    return demo_seestar(**options)


def cached_simulator_seestar(*, reset: bool = False, **options: Any) -> FakeSeestar:
    """The demo Seestar of ``crowdsky ... --simulator``, keeping its state between commands.

    Its target folders live in ``$CROWDSKY_CACHE_DIR/simulator`` (else the user's cache folder,
    e.g. ``~/.cache/crowdsky/simulator``), created on first use; see
    :mod:`crowdsky.adapters.device_model.demo_cache`.

    Parameters
    ----------
    reset : bool
        Start over from the demo night (``--simulator-reset``).
    **options
        Passed to :func:`crowdsky.adapters.device_model.night.demo_seestar`.
    """
    from crowdsky.adapters.device_model.demo_cache import cached_demo_seestar

    return cached_demo_seestar(reset=reset, **options)


def network_seestar(
    host: str,
    *,
    key_path: str | Path | None = None,
    mounted_share: str | Path | None = None,
    **options: Any,
) -> NetworkSeestar:
    """A real Seestar on the network, connected and authenticated.

    The arguments are those of :func:`crowdsky.connect`; ``options`` go to
    :func:`crowdsky.adapters.seestar.connect_seestar` (``port``, ``http_port``, ``smb_port``,
    ``timeout``).
    """
    from crowdsky.adapters.seestar import connect_seestar

    return connect_seestar(host, key_path=key_path, mounted_share=mounted_share, **options)


#: The output folder of a local archive, inside it, when none is given.
LOCAL_OUTPUT_NAME = "CrowdSky"


def local_stacker() -> StackBlock:
    """The stacking function of the ``[stack]`` extra, imported now.

    ``crowdsky.adapters.local_stack.stack_block``; importing it loads numpy, OpenCV, sep and
    astroalign, so it is done only when a block is to be stacked on this computer.
    """
    import importlib

    module = importlib.import_module("crowdsky.adapters.local_stack")
    stacker: StackBlock = module.stack_block
    return stacker


def check_local_stacker() -> None:
    """Load :func:`local_stacker` now, so that a missing extra is said before any work.

    Raises
    ------
    MissingExtraError
        When the ``[stack]`` extra is not installed (one line naming
        ``pip install "crowdsky[stack]"``).
    """
    from crowdsky.adapters.local_archive import load_stacker_checked

    load_stacker_checked(local_stacker)


def local_output_dir(local_dir: str | Path, output: str | Path | None = None) -> Path:
    """Where a local archive's stacks go: ``output``, else ``<local_dir>/CrowdSky``."""
    return Path(output) if output is not None else Path(local_dir) / LOCAL_OUTPUT_NAME


def local_archive_seestar(
    local_dir: str | Path,
    output: str | Path | None = None,
    *,
    stacker: StackBlock | None = None,
) -> LocalArchive:
    """Sub-frames copied to this computer, as a Seestar that stacks on this computer.

    Parameters
    ----------
    local_dir : str or Path
        The folder the sub-frames were copied to (``MyWorks``, the folder holding it, a
        ``<target>_sub`` folder, or any folder of ``Light_*.fit``). Never written to, unless
        the output folder lies inside it.
    output : str or Path, optional
        Where the stacks go, ``<output>/<target>/``; ``<local_dir>/CrowdSky`` by default
        (:func:`local_output_dir`).
    stacker : callable, optional
        The stacking function; :func:`local_stacker` (the ``[stack]`` extra), imported when
        the first block stacks, by default.

    Raises
    ------
    ConfigError
        When ``local_dir`` is no folder or holds no ``Light_*.fit``.
    """
    from crowdsky.adapters.local_archive import LocalArchive

    load = local_stacker if stacker is None else (lambda: stacker)
    return LocalArchive(Path(local_dir), local_output_dir(local_dir, output), load_stacker=load)


def local_archive_telescope(
    local_dir: str | Path,
    output: str | Path | None = None,
    *,
    tz: tzinfo | str | None = None,
    stacker: StackBlock | None = None,
) -> Telescope:
    """A local archive for :func:`run_night`: stacked and uploaded from its output folder.

    Named after ``local_dir``; its upload journal is ``<output>/.crowdsky-uploads.json``, the
    same one ``crowdsky upload --local-dir <output>`` keeps.
    """
    folder = local_output_dir(local_dir, output)

    def open_archive() -> Seestar:
        return local_archive_seestar(local_dir, folder, stacker=stacker)

    from crowdsky.app.night import Telescope

    return Telescope(str(local_dir), open_archive, resolve_zone(tz), folder=folder)


def collab_server(
    url: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    client: httpx.Client | None = None,
    allow_insecure_http: bool = False,
) -> HttpCollabServer:
    """A client for the CrowdSky server; unset credentials come from the environment."""
    from crowdsky.adapters.collab import HttpCollabServer

    return HttpCollabServer(
        url,
        username=username,
        password=password,
        client=client,
        allow_insecure_http=allow_insecure_http,
    )


_ENVIRONMENT = ("CROWDSKY_URL", "CROWDSKY_USERNAME", "CROWDSKY_PASSWORD")
_session_lock = threading.Lock()
# The server client of the module-level functions, with the settings and environment it was
# built from; None until the first server call and after close_session_server().
_session: tuple[ServerChoice, tuple[str | None, ...], HttpCollabServer] | None = None
_exit_hook = False


def session_server(choice: ServerChoice) -> HttpCollabServer:
    """The one server client of the module-level functions, for the settings ``choice``.

    It is built on the first call (one httpx client, one SSL context, its connections kept
    alive) and returned again while the settings object and the ``CROWDSKY_*`` environment
    stay the same. Other settings (``set_credentials``, ``configure_server``, a reset) build a
    new client on the next call and close the previous one; :func:`close_session_server`
    closes it, and so does the end of the interpreter.
    """
    global _session, _exit_hook
    environment = tuple(os.environ.get(name) for name in _ENVIRONMENT)
    with _session_lock:
        if _session is not None and _session[0] is choice and _session[1] == environment:
            return _session[2]
        previous = _session[2] if _session is not None else None
        _session = None
        if previous is not None:
            previous.close()
        server = collab_server(
            choice.url,
            username=choice.username,
            password=choice.password,
            client=choice.client,
            allow_insecure_http=choice.allow_insecure_http,
        )
        _session = (choice, environment, server)
        if not _exit_hook:
            atexit.register(close_session_server)
            _exit_hook = True
        return server


def close_session_server() -> None:
    """Close the module-level functions' server client, if one is open (the next call opens one).

    A client passed to :func:`crowdsky.configure_server` is the caller's and stays open.
    """
    global _session
    with _session_lock:
        previous, _session = _session, None
    if previous is not None:
        previous[2].close()


def system_clock() -> Clock:
    """The computer's clock."""
    from crowdsky.adapters.clock import SystemClock

    return SystemClock()


def print_progress() -> Progress:
    """Progress printed to standard output."""
    from crowdsky.adapters.console import PrintProgress

    return PrintProgress()


def console_progress(*, to_stderr: bool = False, quiet: bool = False) -> Progress:
    """Progress for the command line.

    A live display (:class:`~crowdsky.adapters.console.RichProgress`) when the stream is a
    terminal, plain lines otherwise, nothing with ``quiet``. ``to_stderr`` keeps standard
    output for ``--json``. Close it (``close()``) when done.
    """
    import sys

    from crowdsky.adapters.console import PrintProgress, QuietProgress, RichProgress

    if quiet:
        return QuietProgress()
    stream = sys.stderr if to_stderr else sys.stdout
    if stream.isatty():
        from rich.console import Console

        return RichProgress(Console(stderr=to_stderr))
    return PrintProgress(stream)


def load_settings(
    command_line: Mapping[str, Any],
    *,
    scope: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> Settings:
    """The settings in effect: command line > environment > configuration file > defaults.

    The file is ``$CROWDSKY_CONFIG`` or ``config.toml`` in the platform's configuration
    directory (see :mod:`crowdsky.adapters.config_file`).

    Raises
    ------
    ConfigError
        For a malformed file, an unknown scope or a value of the wrong type.
    """
    import os

    from crowdsky.adapters.config_file import config_path, read_config_file

    env = os.environ if environment is None else environment
    path = config_path(env)
    return merge_settings(command_line, env, read_config_file(path), scope=scope, path=path)


def server_password(username: str | None, *, prompt: bool) -> str | None:
    """The server password: ``$CROWDSKY_PASSWORD``, else the system keyring, else a prompt.

    Never from a command-line argument or the configuration file. ``None`` when there is no
    user name, or none of the sources has one (and ``prompt`` is false).
    """
    import os

    secret = os.environ.get("CROWDSKY_PASSWORD")
    if secret:
        return secret
    if not username:
        return None
    from crowdsky.adapters.config_file import keyring_password

    secret = keyring_password(username)
    if secret is None and prompt:
        import getpass

        secret = getpass.getpass(f"CrowdSky password for {username}: ") or None
    return secret


def server_password_source(username: str | None) -> str:
    """Where :func:`server_password` would find the password, for ``crowdsky config``.

    ``"set in $CROWDSKY_PASSWORD"``, ``"in the system keyring"`` or ``"not set"``; never the
    password itself.
    """
    import os

    if os.environ.get("CROWDSKY_PASSWORD"):
        return "set in $CROWDSKY_PASSWORD"
    from crowdsky.adapters.config_file import keyring_password

    if username and keyring_password(username) is not None:
        return "in the system keyring"
    return "not set"


def stack_journal(seestar: Seestar) -> StackJournal:
    """Where pending batch stacks of ``seestar`` are recorded.

    In memory for the in-memory Seestar (its records cannot outlive it); otherwise
    ``pending-stacks.json`` in :func:`crowdsky.adapters.state.state_dir`
    (``$CROWDSKY_STATE_DIR``, else the platform's user state folder).
    """
    from crowdsky.adapters.state import PENDING_STACKS_NAME, JsonStackJournal, MemoryStackJournal

    # An in-memory Seestar exists only once its module is loaded; looking it up in sys.modules
    # spares a network run the import of the device model.
    fake = sys.modules.get("crowdsky.adapters.device_model.fake")
    if fake is not None and isinstance(seestar, fake.FakeSeestar):
        return MemoryStackJournal()
    from crowdsky.adapters.state import state_dir

    return JsonStackJournal(state_dir() / PENDING_STACKS_NAME)


def header_cache(seestar: Seestar) -> HeaderCache:
    """Where header facts of ``seestar``'s raw sub-frames are kept between runs.

    In memory for the in-memory Seestar (its identity is new on every run); otherwise
    ``header-cache.json`` in :func:`crowdsky.adapters.state.state_dir`. Deleting that file is
    safe: the headers are read again.
    """
    from crowdsky.adapters.header_cache import HEADER_CACHE_NAME, JsonHeaderCache, MemoryHeaderCache

    fake = sys.modules.get("crowdsky.adapters.device_model.fake")
    if fake is not None and isinstance(seestar, fake.FakeSeestar):
        return MemoryHeaderCache()
    from crowdsky.adapters.state import state_dir

    return JsonHeaderCache(state_dir() / HEADER_CACHE_NAME)


def crowdsky_service(
    seestar: Seestar,
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
    journal: StackJournal | None = None,
    headers: HeaderCache | None = None,
) -> Crowdsky:
    """The CrowdSky workflow on ``seestar``, with the system clock and printed progress.

    Parameters
    ----------
    seestar : Seestar
        The telescope.
    tz : tzinfo or str, optional
        Override of the telescope's time zone.
    tiling : SkyTiling, optional
        HEALPix tiling for file names (RING / NSIDE 128 by default).
    block_timeout : float, optional
        Seconds one block may stack before it is stopped.
    clock, progress : optional
        Replacements for the system clock and printed progress.
    journal : StackJournal, optional
        Where pending batch stacks are recorded; :func:`stack_journal` by default.
    headers : HeaderCache, optional
        Where header facts are kept between runs; :func:`header_cache` by default.
    """
    options = StackOptions(tiling=tiling or DEFAULT_TILING, block_timeout=block_timeout)
    return Crowdsky(
        seestar,
        clock if clock is not None else system_clock(),
        progress if progress is not None else print_progress(),
        tz=resolve_zone(tz),
        host_zone=datetime.now().astimezone().tzinfo,
        options=options,
        journal=journal if journal is not None else stack_journal(seestar),
        header_cache=headers if headers is not None else header_cache(seestar),
    )


def upload_stacks(
    server: CollabServer,
    *,
    seestar: Seestar | None = None,
    target: str | Sequence[str] | None = None,
    dest: str | Path = ".",
    local_dir: str | Path | None = None,
    dry_run: bool = False,
    skip_existing: bool = True,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """:func:`crowdsky.app.upload.upload_all_stacks` with its journal, clock and progress built.

    The upload journal is ``<local_dir or dest>/.crowdsky-uploads.json``; report lines go to
    standard output unless ``progress`` is given.
    """
    from crowdsky.adapters.collab.journal import JOURNAL_NAME, JsonUploadJournal
    from crowdsky.adapters.collab.stack_meta import LocalFitsFiles
    from crowdsky.app.upload import upload_all_stacks

    folder = Path(local_dir if local_dir is not None else dest)
    return upload_all_stacks(
        server,
        journal=JsonUploadJournal(folder / JOURNAL_NAME),
        progress=progress if progress is not None else print_progress(),
        clock=clock if clock is not None else system_clock(),
        local_fits=LocalFitsFiles(),
        seestar=seestar,
        target=target,
        dest=dest,
        local_dir=local_dir,
        dry_run=dry_run,
        skip_existing=skip_existing,
    )


def run_simulator(**options: Any) -> None:
    """``crowdsky simulate``: see :func:`crowdsky.adapters.simulator.run_simulator`."""
    from crowdsky.adapters.simulator import run_simulator as serve

    serve(**options)


def serve_loopback(
    host: str,
    port: int,
    storage_dir: str | Path,
    users: Mapping[str, str] | Iterable[tuple[str, str]],
) -> None:
    """``crowdsky serve``: see :func:`crowdsky.adapters.collab.loopback.serve_forever`."""
    from crowdsky.adapters.collab.loopback import serve_forever

    serve_forever(host, port, storage_dir, users)


def network_telescope(
    host: str,
    *,
    name: str | None = None,
    tz: tzinfo | str | None = None,
    key_path: str | Path | None = None,
    mounted_share: str | Path | None = None,
    **options: Any,
) -> Telescope:
    """A real Seestar for :func:`run_night`, connected in its own thread when the night starts.

    Parameters
    ----------
    host : str
        Address or name (``seestar.local``: the operating system resolves it).
    name : str, optional
        Its name in progress lines, the result and the download folder; ``host`` by default.
    tz : tzinfo or str, optional
        Override of its time zone.
    key_path, mounted_share, **options
        As for :func:`network_seestar`.
    """

    def connect() -> Seestar:
        return network_seestar(host, key_path=key_path, mounted_share=mounted_share, **options)

    from crowdsky.app.night import Telescope

    return Telescope(name or host, connect, resolve_zone(tz))


def simulator_telescope(name: str = "simulator", **options: Any) -> Telescope:
    """The built-in in-memory Seestar (:func:`simulator_seestar`) for :func:`run_night`."""
    from crowdsky.app.night import Telescope

    return Telescope(name, lambda: simulator_seestar(**options))


def night_ports(
    *,
    clock: Clock | None = None,
    progress_for: Callable[[str], Progress] | None = None,
    to_stderr: bool = False,
    quiet: bool = False,
) -> NightPorts:
    """The clock, FITS reader, JSON upload journals and progress :func:`run_night` works with.

    By default each telescope's lines are printed with its name in front, on standard output
    (on standard error with ``to_stderr``, for ``--json``; not at all with ``quiet``).
    """
    import sys

    from crowdsky.adapters.collab.journal import JOURNAL_NAME, JsonUploadJournal
    from crowdsky.adapters.collab.stack_meta import LocalFitsFiles
    from crowdsky.adapters.console import PrefixedProgress, PrintProgress, QuietProgress

    printer = QuietProgress() if quiet else PrintProgress(sys.stderr if to_stderr else None)

    def prefixed(name: str) -> Progress:
        return PrefixedProgress(printer, f"[{name}] ")

    from crowdsky.app.night import NightPorts

    return NightPorts(
        clock=clock if clock is not None else system_clock(),
        local_fits=LocalFitsFiles(),
        journal_for=lambda folder: JsonUploadJournal(folder / JOURNAL_NAME),
        progress_for=progress_for if progress_for is not None else prefixed,
        host_zone=datetime.now().astimezone().tzinfo,
        header_cache_for=header_cache,
    )


def run_night(
    telescopes: Sequence[Telescope],
    server: CollabServer | None,
    *,
    dest: str | Path = ".",
    ports: NightPorts | None = None,
    block_minutes: int = 15,
    min_exptime: float = 240,
    block_timeout: float | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """:func:`crowdsky.app.night.run_night` with :func:`night_ports` unless ``ports`` is given.

    ``wait`` is how many seconds a busy telescope is waited for before it is left alone.
    """
    from crowdsky.app.night import run_night as _run_night

    return _run_night(
        telescopes,
        server,
        ports if ports is not None else night_ports(),
        dest=dest,
        block_minutes=block_minutes,
        min_exptime=min_exptime,
        options=StackOptions(block_timeout=block_timeout),
        wait=wait,
    )


def night_status(
    telescopes: Sequence[Telescope],
    server: CollabServer | None,
    *,
    dest: str | Path = ".",
    ports: NightPorts | None = None,
    block_minutes: int = 15,
    min_exptime: float = 240,
) -> dict[str, Any]:
    """:func:`crowdsky.app.night_status.night_status` with :func:`night_ports` by default."""
    from crowdsky.app.night_status import night_status as _night_status

    return _night_status(
        telescopes,
        server,
        ports if ports is not None else night_ports(),
        dest=dest,
        block_minutes=block_minutes,
        min_exptime=min_exptime,
    )


def discover_seestars(
    to: Sequence[tuple[str, int]] | None = None,
    *,
    timeout: float = 2.0,
    ask_firmware: bool = True,
    port: int = 4700,
    key_path: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Seestars that answer UDP ``scan_iscope`` (:mod:`crowdsky.adapters.seestar.discovery`).

    Parameters
    ----------
    to : sequence of (address, port), optional
        Where to send the probe; the local broadcast addresses on port 4720 by default.
    timeout : float
        Seconds to wait for answers.
    ask_firmware : bool
        Ask each Seestar found for its firmware over JSON-RPC on ``port`` (with ``key_path``).

    Returns
    -------
    list of dict
        ``address``, ``model``, ``serial``, ``firmware`` (``None`` when unknown), ``clients``.
    """
    import attrs

    from crowdsky.adapters.seestar import discovery

    found = discovery.scan(to if to is not None else discovery.broadcast_targets(), timeout=timeout)
    if ask_firmware:
        found = [discovery.ask_firmware(s, port=port, key_path=key_path) for s in found]
    return [attrs.asdict(s) for s in found]


@attrs.frozen
class Demo:
    """What :func:`demo` started: telescopes for :func:`run_night`, a server client, the paths.

    ``server`` is logged in with a password made for the run; nothing prints it.
    """

    telescopes: tuple[Telescope, ...]
    zones: tuple[str, ...]
    server: CollabServer
    folder: Path
    telescope_roots: tuple[Path, ...]
    server_storage: Path


@contextlib.contextmanager
def demo(folder: str | Path) -> Iterator[Demo]:
    """``crowdsky demo``: two simulated Seestars and the loopback server, reached for real.

    The Seestars (:mod:`crowdsky.adapters.simulator.demo`) are reached through the network
    adapters (JSON-RPC with the key handshake, HTTP, the storage folder as the mounted share),
    the server through its HTTP client. Everything stops when the context exits.
    """
    from crowdsky.adapters.simulator import demo as rig_module

    now, offset = rig_module.host_offset_now()
    zones = rig_module.demo_zones(now, offset)
    with (
        rig_module.demo_rig(Path(folder), zones) as rig,
        collab_server(rig.server_url, username=rig.username, password=rig.password) as server,
    ):
        telescopes = tuple(
            network_telescope(
                s.host,
                name=s.name,
                key_path=s.key_path,
                mounted_share=s.root,
                port=s.rpc_port,
                http_port=s.http_port,
            )
            for s in rig.seestars
        )
        yield Demo(
            telescopes,
            tuple(zones),
            server,
            Path(folder),
            tuple(s.root for s in rig.seestars),
            rig.server_storage,
        )
