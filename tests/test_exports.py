from __future__ import annotations

import inspect

import crowdsky
import crowdsky.domain

SPEC_FUNCTIONS = {
    "list_targets",
    "find_unstacked_blocks",
    "stack_blocks",
    "stack_all",
    "purge_crowdsky_stacks",
}


def test_all_names_exist() -> None:
    for module in (crowdsky, crowdsky.domain):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []


def test_public_functions_and_classes_are_exported() -> None:
    public = {
        name
        for name, value in vars(crowdsky).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", "").startswith("crowdsky")
    }
    assert public - set(crowdsky.__all__) == set()


def test_spec_functions_are_at_the_top_level() -> None:
    assert set(crowdsky.__all__) >= SPEC_FUNCTIONS
