"""The layers stay honest: the domain is pure, the application layer knows no adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import crowdsky

PACKAGE = Path(crowdsky.__file__).parent

# What a pure module may not import: other layers, and anything that reaches the outside world.
DOMAIN_FORBIDDEN = (
    "crowdsky.adapters",
    "crowdsky.app",
    "crowdsky.api",
    "crowdsky.bootstrap",
    "crowdsky.session",
    "crowdsky.cli",
    "socket",
    "httpx",
    "http",
    "urllib.request",
    "smb",
    "subprocess",
    "threading",
    "time",
    "os",
    "shutil",
    "tempfile",
    "astropy.io",
)


def _imports(path: Path, *, runtime_only: bool = False) -> list[str]:
    """Absolute imports; with ``runtime_only``, those outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def _hits(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        name
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: p.name)
def test_domain_imports_no_other_layer_and_no_io(path: Path) -> None:
    assert _hits(path, DOMAIN_FORBIDDEN) == []


@pytest.mark.parametrize("path", _modules("app"), ids=lambda p: p.name)
def test_app_imports_no_adapter(path: Path) -> None:
    assert _hits(path, ("crowdsky.adapters", "crowdsky.bootstrap", "crowdsky.cli", "httpx")) == []


def _outside_the_composition_root() -> list[Path]:
    adapters = PACKAGE / "adapters"
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if adapters not in path.parents and path.name != "bootstrap.py"
    ]


@pytest.mark.parametrize(
    "path", _outside_the_composition_root(), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_only_the_composition_root_reaches_adapters(path: Path) -> None:
    # A module that cannot import an adapter cannot construct one.
    assert [m for m in _imports(path, runtime_only=True) if m.startswith("crowdsky.adapters")] == []


def test_the_checks_see_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os.path\nfrom crowdsky.adapters.clock import SystemClock\n")
    assert _hits(module, DOMAIN_FORBIDDEN) == ["os.path", "crowdsky.adapters.clock"]
    assert _imports(module, runtime_only=True) == ["os.path", "crowdsky.adapters.clock"]
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\n")
    assert _imports(module, runtime_only=True) == ["typing"]
