"""The httpx adapter against scripted answers (``httpx.MockTransport``): fast, no sockets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.errors import (
    CrowdskyError,
    ServerAuthError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
)

from .helpers import IC434_KEY, PASSWORD, ScriptedTransport, no_password_in, ok_json, write_stack

URL = "https://crowdsky.test"
LIST, UPLOAD, DOWNLOAD, RAW = (
    "/api/my_stacks.php", "/api/upload_stack.php", "/api/download_stack.php",
    "/api/raw_upload.php",
)  # fmt: skip
RECEIPT = {"ok": True, "job_id": 7, "chunk_key": IC434_KEY, "status": "queued"}
LISTED = [{"chunk_key": IC434_KEY, "object_name": "IC 434", "filter_name": "LP"}]


@pytest.fixture
def transport() -> ScriptedTransport:
    return ScriptedTransport()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def server(transport: ScriptedTransport, sleeps: list[float]) -> Iterator[HttpCollabServer]:
    with httpx.Client(transport=httpx.MockTransport(transport)) as http:
        yield HttpCollabServer(
            URL, username="username", password=PASSWORD, client=http, sleep=sleeps.append
        )


def test_missing_credentials_fail_before_sending(transport: ScriptedTransport) -> None:
    with httpx.Client(transport=httpx.MockTransport(transport)) as http:
        bare = HttpCollabServer(URL, client=http)
        with pytest.raises(ServerAuthError) as info:
            bare.list_stacks()
    assert transport.requests == []
    assert "set_credentials" in str(info.value)
    assert "CROWDSKY_PASSWORD" in str(info.value)
    assert "refused" not in str(info.value)  # nothing reached the server


def test_env_credentials_go_into_basic_auth(
    transport: ScriptedTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDSKY_USERNAME", "username")
    monkeypatch.setenv("CROWDSKY_PASSWORD", PASSWORD)
    transport.script[LIST] = [ok_json([])]
    with httpx.Client(transport=httpx.MockTransport(transport)) as http:
        HttpCollabServer(URL, client=http).list_stacks()
    expected = httpx.BasicAuth("username", PASSWORD)._auth_header
    assert transport.requests[0].headers["Authorization"] == expected


def test_list_is_parsed_defensively(server: HttpCollabServer, transport: ScriptedTransport) -> None:
    transport.script[LIST] = [ok_json([
        {"chunk_key": IC434_KEY, "n_frames_input": "33", "total_exptime": "330.5", "id": 4},
        {"object_name": "no key"}, "junk", {"chunk_key": 12},
        {"chunk_key": "20260227.82_HP102265", "n_frames_aligned": "many", "extra": [1]},
    ])]  # fmt: skip
    records = server.list_stacks("IC 434")
    assert [r.chunk_key for r in records] == [IC434_KEY, "20260227.82_HP102265"]
    assert (records[0].n_frames_input, records[0].total_exptime, records[0].id) == (33, 330.5, 4)
    assert records[1].n_frames_aligned is None
    assert records[1].raw["extra"] == [1]
    assert transport.requests[0].url.params["object"] == "IC 434"


def test_5xx_then_success_is_retried_with_exponential_backoff(
    server: HttpCollabServer, transport: ScriptedTransport, sleeps: list[float]
) -> None:
    transport.script[LIST] = [
        ok_json({"error": "db down"}, 500), httpx.ConnectError("refused"),
        ok_json({}, 429), ok_json(LISTED),
    ]  # fmt: skip
    assert [r.chunk_key for r in server.list_stacks()] == [IC434_KEY]
    assert sleeps == [1.0, 2.0, 4.0]


def test_retries_exhausted_keep_the_server_message(
    server: HttpCollabServer, transport: ScriptedTransport, sleeps: list[float]
) -> None:
    transport.script[LIST] = [ok_json({"error": "database is down"}, 502)]
    with pytest.raises(ServerUnavailable, match="database is down"):
        server.list_stacks()
    assert transport.count(LIST) == 4
    assert len(sleeps) == 3


def test_an_upload_that_reached_the_server_is_not_sent_twice(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[UPLOAD] = [httpx.ReadTimeout("no answer"), ok_json(RECEIPT)]
    transport.script[LIST] = [ok_json(LISTED)]
    receipt = server.upload_stack(write_stack(tmp_path))
    assert transport.paths() == [UPLOAD, LIST]
    assert receipt.chunk_key == IC434_KEY
    assert receipt.status == "already-on-server"
    assert transport.requests[1].url.params["object"] == "IC 434"


def test_an_upload_is_resent_only_after_the_list_shows_it_missing(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[UPLOAD] = [ok_json({"error": "boom"}, 500), ok_json(RECEIPT)]
    other_object = [{"chunk_key": IC434_KEY, "object_name": "M 42"}]
    transport.script[LIST] = [ok_json(other_object)]
    receipt = server.upload_stack(write_stack(tmp_path))
    assert transport.paths() == [UPLOAD, LIST, UPLOAD]
    assert transport.bodies[0] == transport.bodies[2]
    assert receipt.job_id == 7
    assert receipt.status == "queued"


def test_an_upload_without_a_known_key_is_not_retried_blindly(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    path = write_stack(tmp_path, "CrowdSky_3_X_10.0s_LP_20260227-211500.fit", date_obs=None)
    transport.script[UPLOAD] = [httpx.ReadError("reset"), ok_json(RECEIPT)]
    with pytest.raises(ServerUnavailable, match="not sent again blindly"):
        server.upload_stack(path)
    assert transport.paths() == [UPLOAD]


def test_an_upload_never_sent_is_retried(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[UPLOAD] = [httpx.ConnectError("refused"), ok_json(RECEIPT)]
    transport.script[LIST] = [ok_json([])]
    assert server.upload_stack(write_stack(tmp_path)).job_id == 7
    assert transport.count(UPLOAD) == 2


def test_upload_sends_file_thumbnail_metadata_and_scrub(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[UPLOAD] = [ok_json(RECEIPT)]
    path = write_stack(tmp_path, thumb=True)
    server.upload_stack(path, scrub_location=True, n_frames_input=40)
    request, body = transport.requests[0], transport.bodies[0]
    assert request.headers["Content-Length"] == str(len(body))
    assert request.extensions["timeout"]["read"] == 300.0
    names = re.findall(rb'form-data; name="([^"]+)"', body)
    assert names == [b"n_frames_input", b"n_frames_aligned", b"date_obs_start",
                     b"date_obs_end", b"scrub_location", b"file", b"thumbnail"]  # fmt: skip
    assert b'name="n_frames_input"\r\n\r\n40\r\n' in body
    assert b'name="scrub_location"\r\n\r\n1\r\n' in body
    assert path.read_bytes() in body
    assert b"tiny jpeg" in body


def test_the_older_upload_answer_is_accepted(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    older = {"ok": True, "stack_id": 99, "chunk_key": IC434_KEY, "telescope_id": "S50_1"}
    transport.script[UPLOAD] = [ok_json(older)]
    receipt = server.upload_stack(write_stack(tmp_path))
    assert (receipt.stack_id, receipt.telescope_id, receipt.job_id) == (99, "S50_1", None)


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (httpx.Response(200, text="<!DOCTYPE html><title>Maintenance</title>"),
         ServerProtocolError, "HTML page (Maintenance)"),
        (httpx.Response(200, text="garbage{"), ServerProtocolError, "not JSON"),
        (httpx.Response(400, text="Missing stack ID."), ServerRejected, "Missing stack ID."),
        (ok_json({"error": "quota exceeded"}, 403), ServerRejected, "quota exceeded"),
        (ok_json({"error": "bad password"}, 401), ServerAuthError, "bad password"),
        (httpx.Response(302, headers={"Location": "/login.php"}), ServerAuthError, "login page"),
        (httpx.Response(302, headers={"Location": "https://x/elsewhere"}), ServerProtocolError,
         "redirect"),
        (ok_json({"not": "a list"}), ServerProtocolError, "not a JSON array"),
    ],
)  # fmt: skip
def test_bad_answers_become_clear_errors(
    server: HttpCollabServer, transport: ScriptedTransport, answer: httpx.Response,
    error: type[Exception], text: str,
) -> None:  # fmt: skip
    transport.script[LIST] = [answer]
    with pytest.raises(error, match=re.escape(text)):
        server.list_stacks()
    assert transport.count(LIST) == 1  # neither retried nor followed


def test_raw_session_requests_have_the_documented_shape(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    token = "0123456789abcdef0123456789abcdef"
    transport.script[RAW] = [
        ok_json({"session_token": token}),
        ok_json({"ok": True, "filename": "a.fit", "chunk_key": IC434_KEY, "date_obs": "x"}),
        ok_json({"ok": True, "jobs": 0, "job_ids": [], "chunks": [], "skipped": [IC434_KEY]}),
        ok_json({"ok": True, "jobs": 1, "job_ids": [3], "chunks": [IC434_KEY], "skipped": []}),
    ]
    assert server.start_raw_session() == token
    assert server.add_raw_file(token, write_stack(tmp_path))["chunk_key"] == IC434_KEY
    assert server.finalize_raw_session(token)["skipped"] == [IC434_KEY]
    assert server.finalize_raw_session(token, overwrite=True, scrub_location=True)["jobs"] == 1
    actions = [r.url.params["action"] for r in transport.requests]
    assert actions == ["start", "file", "finalize", "finalize"]
    assert transport.requests[1].extensions["timeout"]["read"] == 120.0
    assert b'name="session_token"\r\n\r\n' + token.encode() in transport.bodies[1]
    forms = [parse_qs(body.decode()) for body in transport.bodies[2:]]
    assert forms[0] == {"session_token": [token], "scrub_location": ["0"]}
    assert forms[1] == {"session_token": [token], "scrub_location": ["1"], "overwrite": ["1"]}


def test_a_raw_error_on_200_is_surfaced(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[RAW] = [ok_json({"error": "DATE-OBS missing"})]
    with pytest.raises(ServerRejected, match="DATE-OBS missing"):
        server.add_raw_file("tok", write_stack(tmp_path))


def test_a_raw_file_that_may_have_arrived_is_not_resent(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[RAW] = [ok_json({"error": "oops"}, 500), ok_json({"ok": True})]
    with pytest.raises(ServerUnavailable, match="oops"):
        server.add_raw_file("tok", write_stack(tmp_path))
    assert transport.count(RAW) == 1


def test_a_download_that_is_not_fits_leaves_nothing(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    transport.script[DOWNLOAD] = [httpx.Response(200, text="<html>busy</html>" * 160)]
    with pytest.raises(ServerProtocolError, match="not a FITS file"):
        server.download_stack(IC434_KEY, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_download_is_retried_after_a_dropped_connection(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path
) -> None:
    fits_bytes = write_stack(tmp_path / "src").read_bytes()
    transport.script[DOWNLOAD] = [
        httpx.ReadError("dropped"),
        httpx.Response(200, content=fits_bytes),
    ]
    path = server.download_stack(IC434_KEY, tmp_path / "dest")
    assert path.name == f"{IC434_KEY}.fits"
    assert path.read_bytes() == fits_bytes


def test_no_password_in_reprs_errors_or_logs(
    server: HttpCollabServer, transport: ScriptedTransport, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    transport.script[LIST] = [ok_json({"error": "x"}, 500)]
    transport.script[UPLOAD] = [ok_json({"error": "denied"}, 401)]
    transport.script[DOWNLOAD] = [httpx.Response(200, content=b"SIMPLE  = short")]
    transport.script[RAW] = [httpx.Response(302, headers={"Location": "/login.php"})]
    errors: list[CrowdskyError] = []
    calls = [
        server.list_stacks, lambda: server.upload_stack(write_stack(tmp_path)),
        lambda: server.download_stack(IC434_KEY, tmp_path), server.start_raw_session,
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(CrowdskyError) as info:
            call()
        errors.append(info.value)
    texts = [repr(server), str(server)] + [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records  # the retries were logged
    assert no_password_in(texts)


def _timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


@pytest.mark.parametrize(("patience", "attempts"), [(0.0, 1), (3600.0, 4)])
def test_a_server_that_never_answers_is_not_retried_past_the_patience(
    patience: float, attempts: int
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _timing_out(request)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        HttpCollabServer(
            "https://crowdsky.example",
            username="u",
            password=PASSWORD,
            client=http,
            sleep=lambda _: None,
            patience=patience,
        ) as server,
        pytest.raises(ServerUnavailable),
    ):
        server.list_stacks()
    assert len(sent) == attempts
