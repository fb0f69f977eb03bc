"""The specification's module-level functions, for the Seestar and for the CrowdSky server.

Telescope functions (``crowdsky.list_targets()``, ``stack_blocks()``, ...) act on the Seestar
chosen with :func:`connect`, :func:`use_simulator`, :func:`use_local_archive` (sub-frames copied
to this computer, stacked here) or :func:`crowdsky.session.use`, with the
system clock and progress printed to standard output. Server functions (``set_credentials``,
``upload_stack``, ...) use the settings kept in :mod:`crowdsky.session`, never loose module
globals, and share one client (one httpx client, one SSL context, connections kept alive) per
choice of settings, built by :func:`crowdsky.bootstrap.session_server` and closed by
:func:`close_server` or at exit::

    import crowdsky
    crowdsky.set_credentials("username", "password")
    crowdsky.upload_stack("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    crowdsky.download_stack(["20260227.81_HP102265"], dest="./downloads")

Everything concrete is built by :mod:`crowdsky.bootstrap`. For more control (your own clock,
quiet progress, several telescopes) build a :class:`~crowdsky.app.service.Crowdsky` with
:func:`crowdsky.bootstrap.crowdsky_service` or by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdsky import bootstrap
from crowdsky.app.server_port import StackRecord, UploadReceipt
from crowdsky.app.service import Crowdsky
from crowdsky.domain import SkyTiling
from crowdsky.session import current_seestar, disconnect, server_settings, use

if TYPE_CHECKING:
    import httpx

    from crowdsky.adapters.collab import HttpCollabServer
    from crowdsky.adapters.device_model import FakeSeestar
    from crowdsky.adapters.local_archive import LocalArchive
    from crowdsky.adapters.seestar import NetworkSeestar

__all__ = [
    "close_server",
    "configure_server",
    "connect",
    "download_stack",
    "find_unstacked_blocks",
    "list_stacks",
    "list_targets",
    "purge_crowdsky_stacks",
    "service",
    "set_credentials",
    "stack_all",
    "stack_blocks",
    "upload_all_stacks",
    "upload_stack",
    "use_local_archive",
    "use_simulator",
]


def use_simulator(**options: Any) -> FakeSeestar:
    """Use the built-in in-memory Seestar, loaded with a demo night, and return it.

    Parameters
    ----------
    **options
        Passed to :func:`crowdsky.adapters.device_model.night.demo_seestar` (for example a
        fault-injecting configuration).

    Returns
    -------
    FakeSeestar
        The simulated telescope, now the one the module-level functions act on.
    """
    seestar = bootstrap.simulator_seestar(**options)
    disconnect()
    use(seestar)
    return seestar


def use_local_archive(local_dir: str | Path, *, output: str | Path | None = None) -> LocalArchive:
    """Work on sub-frames copied to this computer, and stack them here; return the archive.

    The module-level functions then act on it as on a telescope: ``list_targets()``,
    ``find_unstacked_blocks()``, ``stack_blocks()`` and ``stack_all()`` plan the same
    15-minute UTC blocks and stack each one on this computer (this needs the ``[stack]`` extra:
    ``pip install "crowdsky[stack]"``); ``upload_all_stacks(local_dir=output)`` uploads the
    results.

    Parameters
    ----------
    local_dir : str or Path
        The folder the Seestar's sub-frames were copied to: ``MyWorks``, the folder holding it,
        a ``<target>_sub`` folder, or any folder of ``Light_*.fit``. It is only read.
    output : str or Path, optional
        Where stacks are written, ``<output>/<target>/``; ``<local_dir>/CrowdSky`` by default.
        A block with a ``CrowdSky_*`` stack there is not stacked again.

    Returns
    -------
    LocalArchive
        The archive, now the "telescope" the module-level functions act on.

    Raises
    ------
    ConfigError
        When ``local_dir`` is no folder or holds no ``Light_*.fit``.
    """
    archive = bootstrap.local_archive_seestar(local_dir, output)
    disconnect()
    use(archive)
    return archive


def connect(
    host: str,
    *,
    key_path: str | Path | None = None,
    mounted_share: str | Path | None = None,
    **options: Any,
) -> NetworkSeestar:
    """Connect to a real Seestar and make it the one the module-level functions act on.

    Parameters
    ----------
    host : str
        The telescope's address (``"192.168.1.83"``, ``"seestar.local"``).
    key_path : str or Path, optional
        PEM private key for firmware 7.18+ authentication; by default ``$SEESTAR_KEY_PATH`` or
        ``~/.config/crowdsky/seestar_key.pem``. Firmware without authentication needs none.
    mounted_share : str or Path, optional
        Directory where the operating system mounted the Seestar's ``EMMC Images`` share; used
        for renames and deletes instead of SMB on port 445.
    **options
        Passed to :func:`crowdsky.adapters.seestar.connect_seestar` (ports, timeouts).

    Returns
    -------
    NetworkSeestar
        The connected telescope.
    """
    seestar = bootstrap.network_seestar(
        host, key_path=key_path, mounted_share=mounted_share, **options
    )
    disconnect()
    use(seestar)
    return seestar


def service(
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
) -> Crowdsky:
    """The service the module-level functions use, for the currently chosen Seestar.

    Parameters
    ----------
    tz : tzinfo or str, optional
        The telescope's time zone, overriding what crowdsky learns from the device.
    tiling : SkyTiling, optional
        HEALPix tiling for file names (RING / NSIDE 128 by default).
    block_timeout : float, optional
        Seconds one block may stack before it is stopped (default 120 s + 10 s per frame).
    """
    return bootstrap.crowdsky_service(
        current_seestar(), tz=tz, tiling=tiling, block_timeout=block_timeout
    )


def list_targets() -> list[dict[str, Any]]:
    """Targets with raw sub-frames on the Seestar.

    Returns
    -------
    list of dict
        One dict per target: ``target``, ``raw_files``, ``stacked_files``, ``crowdsky_files``,
        ``folders``.

    Examples
    --------
    >>> import crowdsky
    >>> _ = crowdsky.use_simulator()
    >>> [t["target"] for t in crowdsky.list_targets()]
    ['IC 434', 'M 42', 'M 81']
    """
    return service().list_targets()


def find_unstacked_blocks(
    target: str,
    *,
    block_minutes: int = 15,
    min_exptime: float = 240,
    tz: tzinfo | str | None = None,
) -> list[dict[str, Any]]:
    """Complete blocks of ``target`` without a CrowdSky stack, worth stacking.

    Parameters
    ----------
    target : str
        Target name as :func:`list_targets` shows it.
    block_minutes : int
        Block length in minutes; must divide 1 440 (default 15).
    min_exptime : float
        Minimum total exposure (frames x exposure) in seconds; ``0`` lists every block.
    tz : tzinfo or str, optional
        Override of the telescope's time zone.

    Returns
    -------
    list of dict
        ``block_start``, ``block_end`` (device local time), ``frame_count``, ``exposure``,
        ``filter``, ``chunk_key``, ``files`` and more.
    """
    return service(tz=tz).find_unstacked_blocks(
        target, block_minutes=block_minutes, min_exptime=min_exptime
    )


def stack_blocks(
    target: str,
    block_minutes: int = 15,
    min_exptime: float = 240,
    dry_run: bool = False,
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
) -> dict[str, Any]:
    """Batch-stack every unstacked block of ``target`` on the Seestar, one at a time.

    Already stacked blocks (a ``CrowdSky_*`` file with the same target, exposure, filter and
    UTC chunk key exists) are skipped, so re-running is safe.

    Parameters
    ----------
    target : str
        Target name.
    block_minutes : int
        Block length in minutes; must divide 1 440 (default 15).
    min_exptime : float
        Blocks with less total exposure, in seconds, are skipped (default 240).
    dry_run : bool
        Print the plan and change nothing.
    tz, tiling, block_timeout
        See :func:`service`.

    Returns
    -------
    dict
        ``blocks_stacked``, ``blocks_failed``, ``blocks_skipped``, ``rename_failed``, ``files``,
        ``blocks``.
    """
    return service(tz=tz, tiling=tiling, block_timeout=block_timeout).stack_blocks(
        target, block_minutes=block_minutes, min_exptime=min_exptime, dry_run=dry_run
    )


def stack_all(
    block_minutes: int = 15,
    min_exptime: float = 240,
    dry_run: bool = False,
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
) -> dict[str, Any]:
    """:func:`stack_blocks` for every target with raw sub-frames.

    Returns
    -------
    dict
        ``total_blocks_stacked``, ``total_blocks_failed``, ``total_blocks_skipped``,
        ``targets_processed``, ``targets_failed`` and per-target ``results``.
    """
    return service(tz=tz, tiling=tiling, block_timeout=block_timeout).stack_all(
        block_minutes=block_minutes, min_exptime=min_exptime, dry_run=dry_run
    )


def purge_crowdsky_stacks(target: str | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete the ``CrowdSky_*`` stacks (and their JPEGs) of one target, or of all targets.

    Raw sub-frames and firmware stacks are never touched.

    Returns
    -------
    dict
        ``files_deleted``, ``files_failed``, ``dry_run``.
    """
    return service().purge_crowdsky_stacks(target, dry_run=dry_run)


def set_credentials(username: str, password: str, *, url: str | None = None) -> None:
    """Set the CrowdSky web-account credentials (and optionally the server URL).

    Without this call, ``CROWDSKY_USERNAME``/``CROWDSKY_PASSWORD`` are used.
    """
    server_settings().set_credentials(username, password, url)


def configure_server(
    url: str | None = None,
    *,
    client: httpx.Client | None = None,
    allow_insecure_http: bool | None = None,
) -> None:
    """Choose the server the module-level functions talk to.

    Each call changes only what it is given: ``configure_server(url)`` followed by
    ``configure_server(client=...)`` keeps the URL. ``crowdsky.session.server_settings().reset()``
    forgets every setting.

    Parameters
    ----------
    url : str, optional
        Server root; else the one set earlier; else ``CROWDSKY_URL``; else
        ``https://crowdsky.univie.ac.at``.
    client : httpx.Client, optional
        A client to send with (its transport, proxies, certificates); not closed here.
    allow_insecure_http : bool, optional
        Allow the password over plain ``http://`` to a host that is not loopback (unchanged
        when not given; not allowed until allowed).
    """
    server_settings().configure(url, client, allow_insecure_http)


def close_server() -> None:
    """Close the server client the module-level functions share (also done at exit).

    The next server function opens a new one. A client given to :func:`configure_server` is
    yours and stays open.
    """
    bootstrap.close_session_server()


def _server() -> HttpCollabServer:
    return bootstrap.session_server(server_settings().current())


def list_stacks(object_name: str | None = None) -> list[StackRecord]:
    """Your stacks on the server, optionally only those of one object."""
    return _server().list_stacks(object_name)


def upload_stack(path: str | Path, **meta: Any) -> UploadReceipt:
    """Upload one stacked FITS file; ``meta`` as for :meth:`HttpCollabServer.upload_stack`."""
    return _server().upload_stack(Path(path), **meta)


def download_stack(chunk_keys: str | Sequence[str], dest: str | Path = ".") -> list[Path]:
    """Download stacks by chunk key (one key or a list) into ``dest``; return their paths."""
    keys = [chunk_keys] if isinstance(chunk_keys, str) else list(chunk_keys)
    server = _server()
    return [server.download_stack(key, Path(dest)) for key in keys]


def upload_all_stacks(
    target: str | Sequence[str] | None = None,
    dest: str | Path = ".",
    local_dir: str | Path | None = None,
    dry_run: bool = False,
    skip_existing: bool = True,
) -> dict[str, Any]:
    """Upload every CrowdSky stack not on the server yet (see :mod:`crowdsky.app.upload`).

    From the current Seestar (downloading to ``dest/<target>/`` first), or from ``local_dir``
    without any Seestar. The upload journal is ``<local_dir or dest>/.crowdsky-uploads.json``;
    report lines go to standard output.
    """
    seestar = current_seestar() if local_dir is None else None
    return bootstrap.upload_stacks(
        _server(),
        seestar=seestar,
        target=target,
        dest=dest,
        local_dir=local_dir,
        dry_run=dry_run,
        skip_existing=skip_existing,
    )
