"""The CrowdSky collaboration server, as the client sees it and as a local stand-in.

* :mod:`~crowdsky.adapters.collab.http_client` — :class:`HttpCollabServer`, the client (httpx):
  streamed uploads, checked downloads, retries that never create a duplicate.
* :mod:`~crowdsky.adapters.collab.urls` — where it may send and as whom (URL and credential
  policy).
* :mod:`~crowdsky.adapters.collab.answers` — reading the server's answers into values or errors.
* :mod:`~crowdsky.adapters.collab.stack_meta` — the metadata sent with a stack upload.
* :mod:`~crowdsky.adapters.collab.multipart` — the streamed ``multipart/form-data`` body.
* :mod:`~crowdsky.adapters.collab.loopback` — a CrowdSky server on 127.0.0.1 to test against.
"""

from __future__ import annotations

from crowdsky.adapters.collab.answers import FITS_BLOCK, error_for, json_answer, safe_filename
from crowdsky.adapters.collab.http_client import (
    DEFAULT_TIMEOUT,
    RAW_FILE_TIMEOUT,
    UPLOAD_TIMEOUT,
    HttpCollabServer,
)
from crowdsky.adapters.collab.multipart import FilePart, MultipartBody
from crowdsky.adapters.collab.stack_meta import StackMeta, stack_meta
from crowdsky.adapters.collab.urls import (
    CREDENTIALS_HINT,
    DEFAULT_URL,
    Credentials,
    check_url,
    resolve_url,
)

__all__ = [
    "CREDENTIALS_HINT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "FITS_BLOCK",
    "RAW_FILE_TIMEOUT",
    "UPLOAD_TIMEOUT",
    "Credentials",
    "FilePart",
    "HttpCollabServer",
    "MultipartBody",
    "StackMeta",
    "check_url",
    "error_for",
    "json_answer",
    "resolve_url",
    "safe_filename",
    "stack_meta",
]
