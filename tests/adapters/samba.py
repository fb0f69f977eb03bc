"""A real Samba server on loopback, for the SMB adapter's tests.

:class:`SambaServer` writes a private ``smb.conf`` into a temporary directory (state, lock, pid,
cache and log directories all inside it), starts ``smbd`` in the foreground on 127.0.0.1 with a
free high port, and shares one directory as ``EMMC Images`` the way a Seestar does: guest access
(``map to guest = Bad User``), writable, NTLMv1 permitted. Stopping it terminates the process it
started and nothing else.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["SambaServer", "SambaUnavailable", "find_smbd"]

#: The share name a Seestar exports (protocol reference §5.2).
SHARE = "EMMC Images"


class SambaUnavailable(RuntimeError):
    """``smbd`` is not installed or did not come up."""


def find_smbd() -> str | None:
    """Path of the ``smbd`` binary (often in ``/usr/sbin``, outside a user's PATH)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin"
    return shutil.which("smbd", path=path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _config(work: Path, share: Path, port: int) -> str:
    user = getpass.getuser()
    dirs = {name: work / name for name in ("state", "lock", "pid", "cache", "private", "ncalrpc")}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    return f"""
[global]
    netbios name = SEESTAR
    workgroup = WORKGROUP
    server role = standalone server
    security = user
    map to guest = Bad User
    guest account = {user}
    restrict anonymous = 0
    ntlm auth = ntlmv1-permitted
    smb ports = {port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    passdb backend = tdbsam:{dirs["private"] / "passdb.tdb"}
    state directory = {dirs["state"]}
    lock directory = {dirs["lock"]}
    pid directory = {dirs["pid"]}
    cache directory = {dirs["cache"]}
    private dir = {dirs["private"]}
    ncalrpc dir = {dirs["ncalrpc"]}
    log file = {work / "smbd.log"}
    log level = 1
    kernel oplocks = no
    unix charset = UTF-8

[{SHARE}]
    path = {share}
    guest ok = yes
    guest only = yes
    read only = no
    force user = {user}
    browseable = yes
"""


class SambaServer:
    """One ``smbd`` serving ``share_dir`` as ``EMMC Images`` on ``127.0.0.1:<port>``.

    Parameters
    ----------
    work : Path
        A private, empty directory for the configuration, state and logs.
    share_dir : Path
        The directory to export.
    port : int, optional
        The port to listen on (default: a free one), e.g. to restart on the same port.
    """

    def __init__(self, work: Path, share_dir: Path, port: int | None = None) -> None:
        self.work = work
        self.share_dir = share_dir
        self.host = "127.0.0.1"
        self.port = free_port() if port is None else port
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Start ``smbd`` and wait until its port accepts connections."""
        smbd = find_smbd()
        if smbd is None:
            raise SambaUnavailable("smbd is not installed (Debian package 'samba')")
        conf = self.work / "smb.conf"
        conf.write_text(_config(self.work, self.share_dir, self.port), encoding="utf-8")
        self._output = (self.work / "smbd.out").open("wb")
        self._process = subprocess.Popen(
            [smbd, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # smbd signals its whole process group when it shuts down; without a session of
            # its own that group would be the test runner's.
            start_new_session=True,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise SambaUnavailable(f"smbd exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SambaUnavailable(f"smbd did not listen within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines smbd wrote, for failure messages."""
        text = ""
        for name in ("smbd.out", "smbd.log"):
            path = self.work / name
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the ``smbd`` this object started (by its own handle) and wait for it."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            # Connection children left behind belong to the group this object created.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        output = getattr(self, "_output", None)
        if output is not None:
            output.close()
            self._output = None

    def __enter__(self) -> SambaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
