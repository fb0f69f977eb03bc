"""A server URL with credentials or other junk in it is refused without echoing any of it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.urls import check_url
from crowdsky.errors import PlanError

# Characters a password may hold; letters that the fixed messages use are left out so that a
# shared 3-character run really would mean an echo.
_ALPHABET = "qxzjQXZJ0123456789#/:@%!?&=+;,[]~^$" + "äöüßéλπ€"
PASSWORDS = st.text(alphabet=_ALPHABET, min_size=3, max_size=24)
SHAPES = [
    "https://alice:{}@crowdsky.example",
    "https://alice:{}@crowdsky.example/",
    "https://alice:{}@127.0.0.1:8080",
    "http://{}@localhost",
    "https://{}:x@crowdsky.example",
]


def refusal(url: str) -> str:
    with pytest.raises(PlanError) as info:
        HttpCollabServer(url, username="u", password="p")
    return f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"


def no_run_of(secret: str, text: str) -> bool:
    return secret not in text and not any(secret[i : i + 3] in text for i in range(len(secret) - 2))


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:pw#x@host.example",
        "https://alice:pa/ss@host.example",
        "https://alice:pa?ss@host.example",
        "https://alice@host.example",
        "https://host.example/@",
    ],
)
def test_any_at_sign_is_refused_before_parsing(url: str) -> None:
    text = refusal(url)
    assert "credentials" in text
    assert not any(part in text for part in ("alice", "pw#x", "pa/ss", "pa?ss"))


@pytest.mark.parametrize(
    "url",
    [
        "https://host.example:99999",
        "https://ho\x7fst.example",
        "https://host.example:pw",
        "https://[host.example]/",
        "https://xn--zz.example",
    ],
)
def test_urls_httpx_cannot_use_are_refused_without_their_text(url: str) -> None:
    text = refusal(url)
    assert not any(part in text for part in ("st.example", "zz.example", "99999", ":pw"))


@given(password=PASSWORDS, shape=st.sampled_from(SHAPES))
def test_generated_passwords_never_reach_the_error(password: str, shape: str) -> None:
    text = refusal(shape.format(password))
    assert no_run_of(password, text)


@given(password=PASSWORDS)
def test_check_url_alone_never_echoes(password: str) -> None:
    with pytest.raises(PlanError) as info:
        check_url(f"https://alice:{password}@h.example", allow_insecure_http=False)
    assert no_run_of(password, str(info.value))
