"""The house's shape, checked: the layer order of pyproject.toml (import-linter), and no module
that imports itself back through others (a circle), so a later change cannot add either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds():
    """``lint-imports`` reads the contract from pyproject.toml: a broken one names the import."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "KEPT" in result.stdout


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_module_imports_itself_back():
    """A package's ``__init__`` re-exporting its modules is not a circle; a module importing
    another that imports it back (directly or through a chain) is."""
    graph = grimp.build_graph("autophagy")
    packages = {m for m in graph.modules if (ROOT / "src" / Path(*m.split("."))).is_dir()}
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i not in packages}
        for m in graph.modules if m not in packages
    }
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_circle():
    """The check above can fail: a two-module and a three-module circle are found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("layer", ["theory"])
def test_the_theory_imports_numpy_and_scipy_only(layer):
    """The bottom layer is pure: nothing of autophagy but errors, nothing external but numpy and
    scipy (so its closed forms can be read and reused alone)."""
    graph = grimp.build_graph("autophagy", "numpy", "scipy", "torch", "pandas", "sklearn")
    modules = {m for m in graph.modules if m.startswith(f"autophagy.{layer}")}
    imported = set().union(*(graph.find_modules_directly_imported_by(m) for m in modules))
    outside = {m for m in imported if not m.startswith(f"autophagy.{layer}")}
    assert {m.split(".")[0] for m in outside} <= {"autophagy", "numpy", "scipy"}
    assert {m for m in outside if m.startswith("autophagy.")} <= {"autophagy.errors"}
