"""The CrowdSky collaboration server as the application sees it: a port and its value types.

The HTTP adapter (:class:`crowdsky.adapters.collab.http_client.HttpCollabServer`) satisfies
:class:`CollabServer` structurally; tests may pass any object with the same methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from crowdsky.app.ports import ByteProgress
from crowdsky.domain.uploads import ServerStack

__all__ = ["CollabServer", "StackRecord", "UploadReceipt"]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    # The server's JSON is parsed defensively: numbers may arrive as strings, or not at all.
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


@attrs.frozen
class StackRecord:
    """One stack the server holds for the user (``GET /api/my_stacks.php``).

    Only ``chunk_key`` is guaranteed; every other field is ``None`` when the server left it out.

    Parameters
    ----------
    chunk_key : str
        ``YYYYMMDD.CC_HPnnnnnn``.
    object_name, filter_name, telescope_id, date_obs_start : str or None
        As reported.
    n_frames_input, n_frames_aligned, file_size_bytes, id : int or None
        As reported.
    total_exptime : float or None
        Seconds.
    raw : Mapping[str, Any]
        The whole JSON object, for fields this class does not name.
    """

    chunk_key: str
    object_name: str | None = None
    filter_name: str | None = None
    telescope_id: str | None = None
    date_obs_start: str | None = None
    n_frames_input: int | None = None
    n_frames_aligned: int | None = None
    file_size_bytes: int | None = None
    total_exptime: float | None = None
    id: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    def as_server_stack(self) -> ServerStack:
        """The fields the upload decision compares (:func:`crowdsky.domain.uploads.same_stack`)."""
        return ServerStack(
            chunk_key=self.chunk_key,
            object_name=self.object_name,
            filter_name=self.filter_name,
            telescope=self.telescope_id,
            n_frames_input=self.n_frames_input,
            n_frames_aligned=self.n_frames_aligned,
            total_exptime=self.total_exptime,
            date_obs_start=self.date_obs_start,
        )

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> StackRecord | None:
        """Build a record from one JSON object; ``None`` when it has no usable ``chunk_key``."""
        key = item.get("chunk_key")
        if not isinstance(key, str) or not key:
            return None
        return cls(
            chunk_key=key,
            object_name=_text(item.get("object_name")),
            filter_name=_text(item.get("filter_name")),
            telescope_id=_text(item.get("telescope_id")),
            date_obs_start=_text(item.get("date_obs_start")),
            n_frames_input=_int(item.get("n_frames_input")),
            n_frames_aligned=_int(item.get("n_frames_aligned")),
            file_size_bytes=_int(item.get("file_size_bytes")),
            total_exptime=_float(item.get("total_exptime")),
            id=_int(item.get("id")),
            raw=dict(item),
        )


@attrs.frozen
class UploadReceipt:
    """The server's answer to a stack upload (current and older response forms).

    Parameters
    ----------
    chunk_key : str
        The chunk key the server derived from the FITS header.
    job_id : int or None
        Processing job (current form).
    status : str or None
        ``"queued"`` and so on (current form).
    stack_id : int or None
        Stored stack (older form).
    telescope_id : str or None
        Older form.
    raw : Mapping[str, Any]
        The whole JSON answer.
    """

    chunk_key: str
    job_id: int | None = None
    status: str | None = None
    stack_id: int | None = None
    telescope_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> UploadReceipt | None:
        """Build a receipt from the JSON answer; ``None`` when it is not a success answer."""
        key = item.get("chunk_key")
        if item.get("ok") is not True or not isinstance(key, str):
            return None
        return cls(
            chunk_key=key,
            job_id=_int(item.get("job_id")),
            status=_text(item.get("status")),
            stack_id=_int(item.get("stack_id")),
            telescope_id=_text(item.get("telescope_id")),
            raw=dict(item),
        )


class CollabServer(Protocol):
    """The CrowdSky collaboration server (see ``reference/crowdsky-server-api.md``)."""

    def list_stacks(self, object_name: str | None = None) -> list[StackRecord]:
        """The user's stacks, optionally only those of one object."""
        ...

    def upload_stack(
        self,
        path: Path,
        *,
        thumbnail: Path | None = None,
        n_frames_input: int | None = None,
        n_frames_aligned: int | None = None,
        date_obs_start: str | None = None,
        date_obs_end: str | None = None,
        scrub_location: bool = False,
        on_bytes: ByteProgress | None = None,
    ) -> UploadReceipt:
        """Upload one stacked FITS file; metadata not given is read from the file.

        ``on_bytes`` is told the request body's bytes sent so far, piece by piece (see
        :data:`~crowdsky.app.ports.ByteProgress`).
        """
        ...

    def download_stack(
        self, chunk_key: str, dest_dir: Path, *, on_bytes: ByteProgress | None = None
    ) -> Path:
        """Download one stack into ``dest_dir`` (atomically, checked); return its path.

        ``on_bytes`` is told the bytes received so far, piece by piece.
        """
        ...

    def start_raw_session(self) -> str:
        """Open a raw-upload session; return its token."""
        ...

    def add_raw_file(self, token: str, path: Path) -> dict[str, Any]:
        """Add one raw sub-frame to a session; return the server's answer."""
        ...

    def finalize_raw_session(
        self, token: str, *, overwrite: bool = False, scrub_location: bool = False
    ) -> dict[str, Any]:
        """Close a raw-upload session; the server groups its files into stacking jobs."""
        ...
