"""The composition root gives the service its pending-stack journal, in the tests' state folder."""

from __future__ import annotations

import os
from pathlib import Path

from crowdsky import bootstrap
from crowdsky.adapters.device_model.fake import FakeSeestar
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
