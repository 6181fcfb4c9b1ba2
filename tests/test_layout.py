"""The package's layout: each stage imports only the stages below it (docs/architecture.md), the format and the
NumPy decoder never import torch, and docs/architecture.md describes every package there is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ddcodec"
ARCHITECTURE_DOC = PACKAGE.parent / "docs" / "architecture.md"

LEAVES = {"errors", "metrics", "version"}  # root modules any stage may use
BELOW = {  # stage -> the stages it may import (besides itself and the leaves); the root's other modules are the top
    "format": set(),
    "io": set(),
    "component": {"format"},
    "decoders": {"format", "io", "component"},
    "training": {"format", "io", "component"},
    "encoder": {"format", "io", "component", "decoders", "training"},
    "restore": {"format", "io", "component", "training"},
}
TORCH_FREE = ("format", "io", "decoders.npdecode", "decoders.npsynthesis")  # not even inside a function
TORCH_AT_TOP_FREE = ("decoders.decode",)  # imports torch only where a torch decode is asked for


def modules() -> list[tuple[str, ast.Module]]:
    """Every module of the package as (dotted name below ddcodec, its syntax tree)."""
    return [(".".join(p.relative_to(PACKAGE).with_suffix("").parts), ast.parse(p.read_text()))
            for p in sorted(PACKAGE.rglob("*.py"))]


def imported(tree: ast.Module, top_level_only: bool = False) -> set[str]:
    """Absolute names of the modules a syntax tree imports (in functions too, unless top_level_only)."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "imports are absolute"
            names |= {f"{node.module}.{a.name}" if node.module == "ddcodec" else node.module for a in node.names}
    return names


def stage(name: str) -> str:
    """The stage a module below ddcodec belongs to: its package, or the root module's own name."""
    return name.split(".")[0]


@pytest.mark.parametrize("name, tree", modules(), ids=lambda x: x if isinstance(x, str) else "")
def test_each_stage_imports_only_the_stages_below_it(name: str, tree: ast.Module) -> None:
    own = stage(name)
    if own not in BELOW:
        return  # the top (CLI, batch, demo, Pillow plugin, public API) may import anything
    allowed = BELOW[own] | {own} | LEAVES
    used = {stage(m.removeprefix("ddcodec.")) for m in imported(tree) if m.startswith("ddcodec.")}
    assert used <= allowed, f"ddcodec.{name} imports {sorted(used - allowed)}"


@pytest.mark.parametrize("name, tree", modules(), ids=lambda x: x if isinstance(x, str) else "")
def test_the_format_and_the_numpy_decoder_never_import_torch(name: str, tree: ast.Module) -> None:
    if name.startswith(TORCH_FREE):
        assert not {m.split(".")[0] for m in imported(tree)} & {"torch", "tqdm"}
    if name.startswith(TORCH_AT_TOP_FREE):
        assert "torch" not in {m.split(".")[0] for m in imported(tree, top_level_only=True)}


def test_the_architecture_doc_describes_every_package() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    described = set(re.findall(r"^### `(\w+)/`", ARCHITECTURE_DOC.read_text(), flags=re.M))
    assert described == packages
    assert set(BELOW) == packages
