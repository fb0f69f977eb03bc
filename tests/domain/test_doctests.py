"""The examples in the domain's docstrings run as tests, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import crowdsky.domain


def _domain_modules() -> list[ModuleType]:
    names = sorted(info.name for info in pkgutil.iter_modules(crowdsky.domain.__path__))
    return [crowdsky.domain, *(importlib.import_module(f"crowdsky.domain.{n}") for n in names)]


@pytest.mark.parametrize("module", _domain_modules(), ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_examples_exist() -> None:
    attempted = sum(doctest.testmod(m, report=False).attempted for m in _domain_modules())
    assert attempted >= 20
