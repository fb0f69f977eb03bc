"""URL and credential rules, safe download names, upload metadata and the multipart body."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.adapters.collab import (
    Credentials,
    check_url,
    resolve_url,
    safe_filename,
    stack_meta,
)
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.multipart import FilePart, MultipartBody
from crowdsky.errors import PlanError

from .helpers import IC434_KEY, IC434_NAME, PASSWORD, write_stack


def test_url_comes_from_argument_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_url(None) == "https://crowdsky.univie.ac.at"
    monkeypatch.setenv("CROWDSKY_URL", "https://mirror.example.org/")
    assert resolve_url(None) == "https://mirror.example.org"
    assert resolve_url("https://other.example.org/base/") == "https://other.example.org/base"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.3.4.5", "http://localhost:9000", "http://[::1]:80"],
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    check_url(url, allow_insecure_http=False)


@pytest.mark.parametrize("url", ["http://crowdsky.univie.ac.at", "http://192.168.1.83:8080"])
def test_plain_http_to_a_remote_host_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(PlanError, match="allow_insecure_http"):
        HttpCollabServer(url, username="u", password=PASSWORD)
    HttpCollabServer(url, username="u", password=PASSWORD, allow_insecure_http=True).close()


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(PlanError) as info:
        check_url(f"https://user:{PASSWORD}@example.org", allow_insecure_http=False)
    assert PASSWORD not in str(info.value)


def test_credentials_hide_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    creds = Credentials("username", PASSWORD)
    assert PASSWORD not in repr(creds)
    assert PASSWORD not in str(creds)
    assert Credentials.resolve(None, None) is None
    monkeypatch.setenv("CROWDSKY_USERNAME", "env-user")
    monkeypatch.setenv("CROWDSKY_PASSWORD", PASSWORD)
    resolved = Credentials.resolve(None, None)
    assert resolved is not None
    assert resolved.username == "env-user"
    assert resolved.password == PASSWORD


@pytest.mark.parametrize(
    "header",
    [
        'attachment; filename="../../etc/x.fits"',
        'attachment; filename="/etc/passwd.fits"',
        'attachment; filename="..\\\\..\\\\evil.fits"',
        'attachment; filename="C:evil.fits"',
        'attachment; filename=".."',
        'attachment; filename="."',
        'attachment; filename=""',
        'attachment; filename=".hidden.fits"',
        'attachment; filename="run.sh"',
        "attachment; filename*=UTF-8''..%2F..%2Fx.fits",
        "attachment",
        None,
    ],
)
def test_hostile_or_missing_names_fall_back_to_the_key(header: str | None) -> None:
    assert safe_filename(header, IC434_KEY) == f"{IC434_KEY}.fits"


def test_a_plain_name_is_kept_and_rfc5987_is_decoded() -> None:
    assert safe_filename(f'attachment; filename="{IC434_NAME}"', IC434_KEY) == IC434_NAME
    star = "attachment; filename*=UTF-8''CrowdSky_3_%CE%B5%20Cnc_10.0s_LP_20260227.81_HP1.fit"
    assert safe_filename(star, "k") == "CrowdSky_3_ε Cnc_10.0s_LP_20260227.81_HP1.fit"


@given(st.text(max_size=60), st.text(max_size=30))
def test_a_download_name_never_leaves_the_destination(name: str, key: str) -> None:
    header = 'attachment; filename="' + name.replace('"', "") + '"'
    chosen = safe_filename(header, key)
    dest = Path("/srv/dest")
    assert (dest / chosen).parent == dest
    assert chosen not in ("", ".", "..")
    assert not chosen.startswith(".")
    assert "/" not in chosen
    assert "\\" not in chosen


def test_stack_meta_reads_counts_span_key_and_object(tmp_path: Path) -> None:
    meta = stack_meta(write_stack(tmp_path, stackcnt=31))
    assert (meta.n_frames_input, meta.n_frames_aligned) == (33, 31)
    assert meta.date_obs_start == "2026-02-27T20:15:03.500000+00:00"
    assert meta.date_obs_end == "2026-02-27T20:30:00+00:00"  # end of UTC block 81
    assert (meta.server_key, meta.object_name) == (IC434_KEY, "IC 434")


def test_stack_meta_of_a_legacy_name_derives_the_key_from_the_header(tmp_path: Path) -> None:
    path = write_stack(tmp_path, "CrowdSky_33_M 42_10.0s_LP_20260227-211500.fit",
                       obj="M 42", ra=83.82, dec=-5.39)  # fmt: skip
    meta = stack_meta(path)
    assert meta.server_key == "20260227.81_HP107383"
    assert meta.object_name == "M 42"


fields_st = st.lists(
    st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.text(max_size=40)), max_size=5
)


@given(fields=fields_st, payload=st.binary(max_size=3000), chunk=st.integers(1, 700))
def test_multipart_body_length_is_exact_and_parses_back(
    tmp_path_factory: pytest.TempPathFactory, fields: list[tuple[str, str]], payload: bytes,
    chunk: int,
) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("mp") / "a file.fit"
    path.write_bytes(payload)
    fields = [(n, v.replace("\r", "")) for n, v in fields]
    body = MultipartBody(fields, [FilePart("file", path, 'IC "434".fit')], chunk_size=chunk)
    raw = b"".join(body)
    assert len(raw) == body.content_length
    assert raw == b"".join(body)  # can be sent again for a retry
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + raw
    )
    parts = list(message.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == [
        *(n for n, _ in fields),
        "file",
    ]
    assert parts[-1].get_payload(decode=True) == payload
    for part, (_, value) in zip(parts, fields, strict=False):
        assert part.get_payload(decode=True).decode() == value


def test_a_file_is_read_in_512_kib_pieces_by_default(tmp_path: Path) -> None:
    # Fewer, larger pieces cost the client less per upload (httpx/h11 framing, progress calls);
    # 512 KiB measured cheaper than 256 KiB and than 1 MiB (BENCHMARKS.md), one piece in memory.
    piece = 512 * 1024
    path = tmp_path / "big.fit"
    path.write_bytes(bytes(range(256)) * (3 * piece // 256) + b"tail!")
    told: list[tuple[int, int | None]] = []
    body = MultipartBody([("a", "1")], [FilePart("file", path, "big.fit")], on_bytes=
                         lambda done, total: told.append((done, total)))  # fmt: skip
    sizes = [len(p) for p in body]
    assert sizes[2:-2] == [piece, piece, piece, 5]  # field, file head, ..., CRLF, closing line
    assert len(told) == len(sizes)
    assert told[-1] == (body.content_length, body.content_length)


@pytest.mark.parametrize(
    "module",
    [
        "crowdsky.adapters.collab.answers",
        "crowdsky.adapters.collab.multipart",
        "crowdsky.adapters.collab.loopback.server",
    ],
)
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
