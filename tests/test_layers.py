"""The package's import graph (read with ast, lazy imports included): no circle, and no
module imports from a layer above its own (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent / "micronas"

#: Lowest first. A module may import from lower layers and from its own top-level package.
LAYERS = [
    ["micronas.errors"],
    ["micronas"],
    ["micronas.infra"],
    ["micronas.ir", "micronas.tasks"],
    ["micronas.hardware", "micronas.spaces"],
    ["micronas.proxies", "micronas.deploy"],
    ["micronas.measure"],
    ["micronas.ship"],
    ["micronas.search", "micronas.bench"],
    ["micronas.ship.build"],
    ["micronas.api"],
    ["micronas.cli"],
    ["micronas.__main__"],
]

#: The only modules allowed at the package's top level (besides packages and their faces).
TOP_LEVEL = {"micronas", "micronas.__main__", "micronas.api", "micronas.ir", "micronas.errors"}


def modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        out.update(t for t in targets if t == "micronas" or t.startswith("micronas."))
    out.discard(name)
    return out


def unit(name: str) -> str:
    """The layer entry a module belongs to (the longest listed prefix)."""
    best = ""
    for layer in LAYERS:
        for entry in layer:
            if (name == entry or name.startswith(entry + ".")) and len(entry) > len(best):
                best = entry
    assert best, f"{name} is in no layer: add it to LAYERS"
    return best


def level(entry: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {n: imports(n, p, set(mods)) for n, p in mods.items()}


def test_no_upward_or_sideways_import():
    bad = []
    for mod, targets in graph().items():
        u = unit(mod)
        for t in targets:
            v = unit(t)
            if v != u and level(v) >= level(u):
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if m not in g:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cyc := visit(m)):
                return cyc
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (cyc := visit(n)):
            raise AssertionError("import circle: " + " -> ".join(cyc))


def test_no_loose_top_level_modules():
    """Pipeline stages and infrastructure live in packages; the top level holds only the
    API, the IR, the errors and the package faces."""
    loose = sorted(n for n, p in modules().items()
                   if n.count(".") == 1 and p.name != "__init__.py" and n not in TOP_LEVEL)
    assert not loose, f"top-level modules outside a package: {loose}"


def test_no_nb201_names_outside_its_folder():
    """Outside spaces/nb201/ and the NB201 ground-truth table in bench/, nothing names an
    NB201 type or imports its modules; the space registry
    (``micronas/spaces/__init__.py``) holds its one registration line."""
    hits = []
    for mod, path in modules().items():
        if mod.startswith(("micronas.spaces.nb201", "micronas.bench")) or mod == "micronas.spaces":
            continue
        text = path.read_text()
        for word in ("NB201Arch", "EdgeOps", "micronas.spaces.nb201", "micronas.nn"):
            if word in text:
                hits.append(f"{mod}: {word}")
    assert not hits, hits
