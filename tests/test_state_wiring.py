"""The composition root gives the service its pending-stack journal and header cache, in the
tests' state folder."""

from __future__ import annotations

import os
from pathlib import Path

from crowdsky import bootstrap
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.header_cache import HEADER_CACHE_NAME, JsonHeaderCache, MemoryHeaderCache
from crowdsky.adapters.seestar import NetworkSeestar
from crowdsky.adapters.state import JsonStackJournal, MemoryStackJournal
from crowdsky.app.orphans import device_identity


def test_a_network_seestar_gets_the_json_journal_in_the_state_folder() -> None:
    with NetworkSeestar("Seestar.local") as seestar:  # nothing connects before the first call
        service = bootstrap.crowdsky_service(seestar)
        assert device_identity(seestar) == "seestar.local:4700"
    assert isinstance(service.journal, JsonStackJournal)
    assert service.journal.path == Path(os.environ["CROWDSKY_STATE_DIR"]) / "pending-stacks.json"


def test_the_in_memory_seestar_keeps_its_records_in_memory() -> None:
    seestar = FakeSeestar()
    assert isinstance(bootstrap.crowdsky_service(seestar).journal, MemoryStackJournal)
    assert device_identity(seestar) != device_identity(FakeSeestar())


def test_a_network_seestar_gets_the_header_cache_in_the_state_folder() -> None:
    with NetworkSeestar("Seestar.local") as seestar:
        service = bootstrap.crowdsky_service(seestar)
    assert isinstance(service.header_cache, JsonHeaderCache)
    assert service.header_cache.path == Path(os.environ["CROWDSKY_STATE_DIR"]) / HEADER_CACHE_NAME
    assert HEADER_CACHE_NAME == "header-cache.json"
    ports = bootstrap.night_ports(quiet=True)
    with NetworkSeestar("Seestar.local") as seestar:
        night_cache = ports.header_cache(seestar)
    assert isinstance(night_cache, JsonHeaderCache)
    assert night_cache.path == service.header_cache.path


def test_the_in_memory_seestar_keeps_its_header_facts_in_memory() -> None:
    seestar = FakeSeestar()
    assert isinstance(bootstrap.crowdsky_service(seestar).header_cache, MemoryHeaderCache)
    assert isinstance(bootstrap.night_ports(quiet=True).header_cache(seestar), MemoryHeaderCache)
