"""The httpx adapter against the loopback CrowdSky server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from astropy.io import fits

from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.errors import (
    ServerAuthError,
    ServerError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
    UploadUnconfirmed,
)

from .helpers import (
    IC434_DOWNLOAD,
    IC434_KEY,
    IC434_NAME,
    PASSWORD,
    write_big_stack,
    write_stack,
)


def test_upload_list_download_round_trip(client: HttpCollabServer, tmp_path: Path) -> None:
    path = write_stack(tmp_path / "stacks", thumb=True)
    receipt = client.upload_stack(path)
    assert (receipt.chunk_key, receipt.status) == (IC434_KEY, "queued")
    [record] = client.list_stacks()
    assert (record.chunk_key, record.object_name, record.filter_name) == (IC434_KEY, "IC 434", "LP")
    assert (record.n_frames_input, record.n_frames_aligned) == (33, 31)
    assert record.file_size_bytes == path.stat().st_size
    assert client.list_stacks("M 42") == []
    got = client.download_stack(IC434_KEY, tmp_path / "downloads")
    assert got == tmp_path / "downloads" / IC434_DOWNLOAD
    assert got.read_bytes() == path.read_bytes()
    assert not list((tmp_path / "downloads").glob("*.part"))


def test_upload_and_download_tell_their_bytes_as_they_move(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    path = write_big_stack(tmp_path / "stacks", IC434_NAME, 3 * 1024 * 1024)
    sent: list[tuple[int, int | None]] = []
    client.upload_stack(path, on_bytes=lambda done, total: sent.append((done, total)))
    (total,) = {whole for _, whole in sent}
    assert total is not None
    assert total > path.stat().st_size  # the multipart body around it
    assert [done for done, _ in sent] == sorted({done for done, _ in sent})  # growing
    assert sent[-1] == (total, total)
    assert len(sent) > 2

    got: list[tuple[int, int | None]] = []
    back = client.download_stack(
        IC434_KEY, tmp_path / "down", on_bytes=lambda done, total: got.append((done, total))
    )
    size = path.stat().st_size
    assert back.read_bytes() == path.read_bytes()
    assert got[-1] == (size, size)
    assert len(got) > 2
    assert [done for done, _ in got] == sorted({done for done, _ in got})


def test_the_chunk_key_comes_from_the_header_not_the_name(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    misnamed = "CrowdSky_5_M 42_10.0s_LP_20250101.00_HP000001.fit"
    path = write_stack(tmp_path, misnamed, obj="M 42", ra=83.82, dec=-5.39,
                       date_obs="2026-02-27T23:59:59")  # fmt: skip
    assert client.upload_stack(path).chunk_key == "20260227.95_HP107383"


def test_scrub_location_removes_the_site_from_the_stored_file(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    client.upload_stack(write_stack(tmp_path), scrub_location=True)
    stored = fits.getheader(loopback.stacks[0]["path"])
    assert "SITELAT" not in stored
    assert "SITELONG" not in stored
    assert stored["OBJECT"] == "IC 434"


def test_the_older_answer_form_over_http(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    loopback.faults.legacy_upload_answer = True
    receipt = client.upload_stack(write_stack(tmp_path))
    assert receipt.stack_id is not None
    assert receipt.telescope_id == "S50_5eed0042"


def test_refusals_carry_the_server_message(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    junk = tmp_path / "CrowdSky_1_X_10.0s_LP_20260227.81_HP000001.fit"
    junk.write_bytes(b"not a fits file at all" * 200)
    with pytest.raises(ServerError, match="not a readable FITS file"):
        client.upload_stack(junk)  # refused before anything is sent
    assert loopback.requests == []
    with pytest.raises(ServerRejected, match="Stack not found") as info:
        client.download_stack("20990101.00_HP000001", tmp_path / "d")
    assert info.value.status == 404
    no_date = write_stack(tmp_path / "nodate", date_obs=None)
    with pytest.raises(ServerRejected, match="DATE-OBS"):
        client.upload_stack(no_date)
    loopback.faults.bare_text_errors = True
    with pytest.raises(ServerRejected, match=r"\(HTTP 404\): Stack not found\.$"):
        client.download_stack("20990101.00_HP000001", tmp_path / "d")


def test_missing_parts_and_tokens_are_400(loopback: LoopbackCrowdskyServer) -> None:
    auth = ("username", PASSWORD)
    with httpx.Client(base_url=loopback.url, auth=auth) as http:
        no_file = http.post("/api/upload_stack.php", files={"other": ("a.fit", b"x")})
        assert no_file.status_code == 400
        assert "No file" in no_file.json()["error"]
        no_token = http.post("/api/raw_upload.php?action=finalize", data={})
        assert no_token.status_code == 400
        assert "session token" in no_token.json()["error"]
        not_fits = http.post("/api/upload_stack.php", files={"file": ("a.fit", b"x" * 3000)})
        assert not_fits.status_code == 400
        assert "Not a FITS" in not_fits.json()["error"]
        not_fit_name = http.post("/api/upload_stack.php", files={"file": ("a.txt", b"x")})
        assert not_fit_name.status_code == 400
        assert ".fit" in not_fit_name.json()["error"]
        chunked = http.post("/api/upload_stack.php", content=iter([b"SIMPLE  ="]))
        assert chunked.status_code == 411
        no_key = http.get("/api/download_stack.php")
        assert no_key.status_code == 400


def test_the_size_limit(client: HttpCollabServer, tmp_path: Path) -> None:
    big = write_big_stack(tmp_path, IC434_NAME, 200_000)
    small = LoopbackCrowdskyServer(
        tmp_path / "small", {"username": PASSWORD}, max_file_bytes=100_000
    )
    with small:
        tight = HttpCollabServer(small.url, username="username", password=PASSWORD)
        with tight, pytest.raises(ServerRejected, match="too large") as info:
            tight.upload_stack(big)
    assert info.value.status == 413


def test_wrong_password_and_login_redirect(
    loopback: LoopbackCrowdskyServer, client: HttpCollabServer
) -> None:
    bad = HttpCollabServer(loopback.url, username="username", password="wrong")
    with bad, pytest.raises(ServerAuthError, match="set_credentials") as info:
        bad.list_stacks()
    assert info.value.status == 401
    loopback.faults.login_redirect = True
    with pytest.raises(ServerAuthError, match="login page"):
        client.list_stacks()


def test_injected_500s_are_retried(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, sleeps: list[float]
) -> None:
    loopback.faults.fail_next = 2
    assert client.list_stacks() == []
    assert sleeps == [1.0, 2.0]
    loopback.faults.fail_endpoint["my_stacks"] = 9
    with pytest.raises(ServerUnavailable, match="Injected server failure"):
        client.list_stacks()


def test_a_lost_upload_answer_does_not_duplicate_the_stack(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    loopback.faults.fail_after_upload = 1
    receipt = client.upload_stack(write_stack(tmp_path))
    assert receipt.status == "already-on-server"
    assert len(loopback.stacks) == 1
    uploads = [p for _, p in loopback.requests if p.startswith("/api/upload_stack.php")]
    assert len(uploads) == 1


def test_an_upload_refused_with_500_before_storing_is_sent_again(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    loopback.faults.fail_endpoint["upload_stack"] = 1
    assert client.upload_stack(write_stack(tmp_path)).status == "queued"
    assert len(loopback.stacks) == 1


def test_a_retried_upload_of_many_pieces_sends_the_same_bytes_again(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    path = write_big_stack(tmp_path / "stacks", IC434_NAME, 3 * 512 * 1024 + 12345)
    loopback.faults.fail_endpoint["upload_stack"] = 1
    told: list[tuple[int, int | None]] = []
    receipt = client.upload_stack(path, on_bytes=lambda done, total: told.append((done, total)))
    assert receipt.status == "queued"
    [stored] = loopback.stacks
    assert Path(stored["path"]).read_bytes() == path.read_bytes()
    (total,) = {whole for _, whole in told}
    assert told.count((total, total)) == 2  # each attempt sent the whole body
    restart = told.index((total, total)) + 1
    assert told[restart][0] < told[restart - 1][0]  # the retry counted from 0 again


def test_a_truncated_download_raises_and_leaves_nothing(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    client.upload_stack(write_stack(tmp_path))
    loopback.faults.truncate_downloads = True
    dest = tmp_path / "dest"
    with pytest.raises(ServerProtocolError, match="truncated"):
        client.download_stack(IC434_KEY, dest)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    "hostile", ["../../etc/x.fits", "/etc/x.fits", "..", "sub/dir/x.fits", "..\\x.fits", ""]
)
def test_hostile_content_disposition_stays_in_dest(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path, hostile: str
) -> None:
    client.upload_stack(write_stack(tmp_path / "src"))
    loopback.faults.disposition_name = hostile or None
    dest = tmp_path / "a" / "b" / "dest"
    got = client.download_stack(IC434_KEY, dest)
    expected = IC434_DOWNLOAD if not hostile else f"{IC434_KEY}.fits"
    assert got == dest / expected
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "server-data" not in p.parts)
    assert written == sorted([tmp_path / "src" / IC434_NAME, got])


def _disposition(loopback: LoopbackCrowdskyServer, key: str) -> str:
    with httpx.Client(base_url=loopback.url, auth=("username", PASSWORD)) as http:
        answer = http.get("/api/download_stack.php", params={"chunk_key": key})
    assert answer.status_code == 200
    return answer.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("obj", "saved"),
    [
        ("IC 434", IC434_DOWNLOAD),
        ("\u03b5 Cnc", "__Cnc_20260227.81_HP102265.fits"),
        ('Sh2-240 / "x"', "Sh2-240____x__20260227.81_HP102265.fits"),
    ],
)
@pytest.mark.parametrize("rfc6266", [False, True], ids=["real", "rfc6266"])
def test_downloads_are_named_object_and_chunk_key_as_the_real_server_does(
    client: HttpCollabServer,
    loopback: LoopbackCrowdskyServer,
    tmp_path: Path,
    obj: str,
    saved: str,
    rfc6266: bool,
) -> None:
    ascii_obj = obj.encode("ascii", "replace").decode()
    client.upload_stack(write_stack(tmp_path / "src", obj=ascii_obj))
    loopback.stacks[0]["object_name"] = obj  # as a server that kept a non-ASCII OBJECT
    loopback.faults.rfc6266_disposition = rfc6266
    header = _disposition(loopback, IC434_KEY)
    if rfc6266:
        assert header.startswith(f"attachment; filename=\"{saved}\"; filename*=UTF-8''")
    else:  # the real server's form: one plain filename and nothing else
        assert header == f'attachment; filename="{saved}"'
    got = client.download_stack(IC434_KEY, tmp_path / "dest")
    assert got == tmp_path / "dest" / saved
    assert got.read_bytes() == (tmp_path / "src" / IC434_NAME).read_bytes()


def test_raw_session_groups_and_deduplicates(
    client: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    frames = [
        write_stack(tmp_path / "raw", f"Light_IC 434_10.0s_LP_20260227-2115{s:02d}.fit",
                    date_obs=f"2026-02-27T20:15:{s:02d}")
        for s in (3, 13, 23)
    ] + [write_stack(tmp_path / "raw", "Light_IC 434_10.0s_LP_20260227-2131.fit",
                     date_obs="2026-02-27T20:31:00")]  # fmt: skip
    token = client.start_raw_session()
    assert len(token) == 32
    assert int(token, 16) >= 0
    answers = [client.add_raw_file(token, frame) for frame in frames]
    assert {a["chunk_key"] for a in answers} == {IC434_KEY, "20260227.82_HP102265"}
    done = client.finalize_raw_session(token)
    assert done["jobs"] == 2
    assert done["skipped"] == []
    assert len(done["job_ids"]) == 2
    again = client.start_raw_session()
    client.add_raw_file(again, frames[0])
    assert client.finalize_raw_session(again)["skipped"] == [IC434_KEY]
    third = client.start_raw_session()
    client.add_raw_file(third, frames[0])
    assert client.finalize_raw_session(third, overwrite=True)["chunks"] == [IC434_KEY]
    assert sorted(r.chunk_key for r in client.list_stacks()) == [IC434_KEY, "20260227.82_HP102265"]
    with pytest.raises(ServerRejected, match="Unknown or expired"):
        client.finalize_raw_session(token)  # a finalized session is closed


def test_users_see_only_their_own_stacks(loopback: LoopbackCrowdskyServer, tmp_path: Path) -> None:
    me = HttpCollabServer(loopback.url, username="username", password=PASSWORD)
    other = HttpCollabServer(loopback.url, username="other", password="pw-of-other")
    with me, other:
        me.upload_stack(write_stack(tmp_path))
        assert other.list_stacks() == []
        with pytest.raises(ServerRejected, match="not found"):
            other.download_stack(IC434_KEY, tmp_path / "o")


def test_a_60_mb_stack_streams_both_ways_in_flat_memory(
    loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    loopback.store.max_file_bytes = 100 * 1024 * 1024
    path = write_big_stack(tmp_path / "big", IC434_NAME, 60 * 1024 * 1024)
    with HttpCollabServer(loopback.url, username="username", password=PASSWORD) as client:
        gc.collect()
        tracemalloc.start()
        try:
            client.upload_stack(path)
            got = client.download_stack(IC434_KEY, tmp_path / "back")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got.stat().st_size == path.stat().st_size
    print(f"peak {peak / 1e6:.2f} MB")
    assert peak < 10 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"  # issue 12: <= 10 MB growth


def test_a_slow_server_times_out_and_is_retried(
    loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    impatient = HttpCollabServer(
        loopback.url, username="username", password=PASSWORD, retries=1,
        sleep=sleeps.append, timeout=httpx.Timeout(0.05),
    )  # fmt: skip
    loopback.faults.delay = 0.5
    with impatient, pytest.raises(ServerUnavailable, match="ReadTimeout"):
        impatient.list_stacks()
    assert sleeps == [1.0]
    loopback.faults.delay = 0.0


@pytest.mark.parametrize(
    ("name", "cards"),
    [
        # The header has no pointing: the server files it under pixel 0, the name says 102265.
        ("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit", {"ra": None, "dec": None}),
        # A 10-minute block: the name's key is 20260227.121m10, the server's 20260227.80.
        ("CrowdSky_33_IC 434_10.0s_LP_20260227.121m10_HP102265.fit",
         {"date_obs": "2026-02-27T20:10:04"}),
    ],
)  # fmt: skip
def test_a_lost_answer_is_checked_under_the_key_the_server_derives(
    client: HttpCollabServer,
    loopback: LoopbackCrowdskyServer,
    tmp_path: Path,
    name: str,
    cards: dict[str, Any],
) -> None:
    loopback.faults.fail_after_upload = 1
    receipt = client.upload_stack(write_stack(tmp_path, name, **cards))
    assert receipt.status == "already-on-server"
    assert receipt.chunk_key == loopback.stacks[0]["chunk_key"]
    assert len(loopback.stacks) == 1


def test_a_lost_answer_that_cannot_be_checked_is_unconfirmed(
    loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    loopback.faults.fail_after_upload = 1
    once = HttpCollabServer(loopback.url, username="username", password=PASSWORD, retries=0)
    with once, pytest.raises(UploadUnconfirmed, match="may have carried out"):
        once.upload_stack(write_stack(tmp_path))
    assert len(loopback.stacks) == 1
