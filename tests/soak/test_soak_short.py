"""A short fault soak: a few seeded runs of ``bench/soak.py`` through the real command line.

One implementation: the soak's core (``run_soak``) is imported from ``bench/soak.py``. Each run
lays down a random night, runs ``crowdsky stack`` / ``upload`` in subprocesses against the network
simulator and the loopback server while faults switch on and off (some commands are interrupted
or killed), re-runs cleanly and checks the invariants; see the module docs of ``bench/soak.py``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

#: 107, 135 and 155 hold two exposures of one target, filter and block (upload de-duplication).
SEEDS = (101, 107, 135, 155)


def _soak_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
    spec = importlib.util.spec_from_file_location("crowdsky_bench_soak", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


soak = _soak_module()


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_a_short_fault_soak_finds_no_violation(seed: int) -> None:
    report = soak.run_soak(1, seed, quick=True)
    assert report.runs == 1
    assert sum(report.faults.values()) > 0  # faults were really injected
    assert report.violations == [], report.render()


def test_the_soak_sees_a_duplicate_stack_a_wrong_count_and_a_changed_raw_file(
    tmp_path: Path,
) -> None:
    # The checks themselves must be able to fail: plant two stacks of one block (one with a
    # wrong frame count) and touch a raw companion.
    device, night = soak.lay_down(random.Random(7), tmp_path / "device", quick=True)
    expected = soak.expected_blocks(night.root, night.block_minutes, 0.0)
    raw_before = soak.hash_raw(night.root)
    block = next(iter(expected.values()))
    headers = [h for _, h in block.frames]
    for frames in (len(headers), len(headers) + 1):
        name = soak.crowdsky_name(
            frames=frames, target=block.target, exposure_s=block.exposure_s,
            filter=block.filter, chunk_key=block.chunk_key,
            pixel=soak.healpix_pixel(block.ra, block.dec),
        )  # fmt: skip
        soak._put_stack(device, f"MyWorks/{block.target}/{name}", headers, block.target)
    raw = next((night.root / "MyWorks").glob("*_sub/*.jpg"))
    raw.write_bytes(raw.read_bytes() + b"!")

    report = soak.SoakReport()
    run = soak.Run(7, tmp_path, report, quick=True)
    run.night, run.expected = night, expected
    run.check_blocks(rejected=0)
    run.check_raw(raw_before)
    kinds = [v.kind for v in report.violations]
    assert kinds.count("block_duplicate") == 1
    assert kinds.count("wrong_frames") == 1
    assert kinds.count("raw_changed") == 1
    assert str(raw.relative_to(night.root)) in report.by_kind()["raw_changed"][0].detail
