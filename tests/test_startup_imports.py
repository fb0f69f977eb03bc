"""Start-up stays light: heavy libraries load only when something needs them.

astropy (0.4 s to import), numpy and httpx are not imported by ``import crowdsky``, by the
command line's module, nor by planning against the built-in simulator; a FITS read or a network
telescope brings them in. Each case runs in a fresh interpreter and inspects ``sys.modules``
(the speed itself is measured in ``bench/bench_startup.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import crowdsky

SRC = Path(crowdsky.__file__).resolve().parent.parent
HEAVY = ("astropy", "astropy_healpix", "numpy", "httpx", "httpcore")

_REPORT = (
    "import json, sys; print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
)


def _top_level_modules(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_REPORT}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import crowdsky",
        "import crowdsky.cli",
        "from crowdsky.cli import main; main(['plan', 'IC 434', '--simulator'])",
        "import crowdsky; crowdsky.use_simulator(); crowdsky.find_unstacked_blocks('IC 434')",
    ],
)
def test_no_heavy_library_at_start(code: str) -> None:
    loaded = _top_level_modules(code)
    assert "crowdsky" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_help_builds_the_parser_from_the_standard_library_alone() -> None:
    # ``crowdsky --help`` (and any usage error) needs argparse and the wording, nothing more:
    # not attrs, and none of the domain, the application or the adapters.
    code = (
        "import json, sys\n"
        "from crowdsky.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "crowdsky.cli_night" in loaded  # the whole parser was built
    ours = {name for name in loaded if name.startswith("crowdsky")}
    assert ours == {
        "crowdsky",
        "crowdsky.errors",
        "crowdsky.cli",
        "crowdsky.cli_night",
        "crowdsky.cli_wording",
    }
    assert loaded.isdisjoint({"attr", "attrs", *HEAVY}), sorted(loaded & {"attr", "attrs"})


def test_planning_on_the_simulator_leaves_the_night_and_the_uploads_unloaded() -> None:
    # ``crowdsky plan --simulator`` (the second time: the simulator is cached) needs the
    # planning services; ``crowdsky run``'s workflow and the upload decisions load when used.
    code = (
        "import contextlib, io, json, sys\n"
        "from crowdsky.cli import main\n"
        "for _ in range(2):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(['plan', 'IC 434', '--simulator']) == 0\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "crowdsky.adapters.device_model.demo_cache" in loaded  # it did plan on the simulator
    unneeded = {"crowdsky.app.night", "crowdsky.app.night_status", "crowdsky.domain.uploads"}
    assert loaded.isdisjoint(unneeded), sorted(loaded & unneeded)


def test_a_fits_read_still_brings_astropy() -> None:
    # The other side: the check above would pass vacuously if nothing could load astropy.
    loaded = _top_level_modules(
        "import tempfile, pathlib\n"
        "from crowdsky.adapters.device_model.fits_files import "
        "FitsImage, SMALL_SHAPE, read_fits_header, write_fits\n"
        "path = pathlib.Path(tempfile.mkdtemp()) / 'a.fit'\n"
        "with path.open('wb') as out:\n"
        "    write_fits(FitsImage(cards={'OBJECT': 'M 42'}), SMALL_SHAPE, out)\n"
        "assert read_fits_header(path)['OBJECT'] == 'M 42'"
    )
    assert "astropy" in loaded


def test_import_crowdsky_loads_only_its_errors() -> None:
    # The top-level functions and classes load on first use (PEP 562 ``__getattr__``).
    code = (
        "import json, sys, crowdsky\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith('crowdsky'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == ["crowdsky", "crowdsky.errors"]


def test_the_lazy_names_are_the_real_ones() -> None:
    from crowdsky.api import stack_blocks
    from crowdsky.app.service import Crowdsky

    assert crowdsky.stack_blocks is stack_blocks
    assert crowdsky.Crowdsky is Crowdsky
    assert set(crowdsky.__all__) <= set(dir(crowdsky))
    with pytest.raises(AttributeError, match="no_such_name"):
        crowdsky.no_such_name  # noqa: B018
