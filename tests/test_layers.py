"""The package's imports only point down, and never in a circle.

Layers, top to bottom (a module may import its own layer and the ones below, never above):

    app        __init__, __main__, cli, preferences, properties, operators/, ui/
    blender    blender/ (the bpy glue)
    core       core/<stage>/ in the order of the data flow, then the core's own root modules

Inside core the stages are ranked by the flow of data: capture, solve, faceshape, visual,
tracking, animation, formats, testing; the root modules (errors, channels, files, camera,
rotations, take) are the ground floor every stage stands on. ``core/testing`` (clips with a
known truth) is for tests, bench and docs; the one production use is the command line's
built-in ``sample`` input. Function-level (lazy) imports count like any other.

Run ``python tests/test_layers.py`` to print each module's layer and what it imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "blender_facemesh"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

CORE_STAGES = ("capture", "solve", "faceshape", "visual", "tracking", "animation", "formats", "testing")
APP_MODULES = ("__init__", "__main__", "cli", "preferences", "properties")
# who may import core.testing, besides tests, bench and docs
TESTING_USERS = {f"{PACKAGE}.cli.common"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> tuple[int, str]:
    """(rank, name): higher ranks may import lower ones."""
    parts = module.split(".")[1:]
    if not parts or parts[0] in APP_MODULES or parts[0] in ("operators", "ui"):
        return 100, "app"
    if parts[0] == "blender":
        return 90, "blender"
    if parts[0] == "core":
        if len(parts) > 2 or (len(parts) == 2 and parts[1] in CORE_STAGES):
            stage = parts[1]
            return 10 + CORE_STAGES.index(stage), f"core.{stage}"
        return 0, "core"
    raise AssertionError(f"{module}: not in any layer; add it to tests/test_layers.py")


def imports_of(path: Path, module: str) -> set[str]:
    """The package's own modules that ``path`` imports (anywhere in the file)."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(PACKAGE):
                continue
            for alias in node.names:  # "from . import options" imports a module
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
    found.discard(module)
    return {m for m in found if _exists(m)}


def _exists(module: str) -> bool:
    p = ROOT.parent.joinpath(*module.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p, module_name(p)) for p in sorted(ROOT.rglob("*.py"))}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _parent_package(module: str) -> str:
    return module.rpartition(".")[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        rank, name = layer(mod)
        for dep in sorted(deps):
            if _parent_package(mod) == dep:
                continue  # a module may use its own package's __init__ (a package's small API)
            dep_rank, dep_name = layer(dep)
            if dep_rank > rank:
                bad.append(f"{mod} ({name}) imports {dep} ({dep_name}), a layer above it")
            elif dep_name == "core.testing" and name != "core.testing" and mod not in TESTING_USERS:
                bad.append(f"{mod} imports {dep}: test clips are for tests, bench and docs")
    return bad


def test_every_module_has_a_layer():
    for mod in import_graph():
        layer(mod)


def test_imports_only_point_down():
    bad = upward_imports(import_graph())
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_circles():
    cycles = _cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_catch_what_they_are_for():
    """The walker sees relative, lazy and absolute imports; the rules flag an upward import, a
    circle and a production use of the test clips."""
    graph = import_graph()
    assert f"{PACKAGE}.core.capture.model" in graph[f"{PACKAGE}.core.capture.landmarker"]
    assert f"{PACKAGE}.blender.live" in graph[f"{PACKAGE}.operators.capture"]  # lazy, inside execute()
    made_up = {f"{PACKAGE}.core.solve.geometry": {f"{PACKAGE}.core.tracking.worker"},
               f"{PACKAGE}.core.tracking.worker": {f"{PACKAGE}.core.solve.geometry"},
               f"{PACKAGE}.core.visual.report": {f"{PACKAGE}.core.testing.synthetic"},
               f"{PACKAGE}.blender.takes": {f"{PACKAGE}.core.testing.synthetic"},
               f"{PACKAGE}.blender.live": {f"{PACKAGE}.operators.process_video"}}
    bad = upward_imports(made_up)
    assert len(bad) == 4, bad
    assert [b for b in bad if b.startswith(f"{PACKAGE}.core.solve.geometry ")], bad
    assert [b for b in bad if b.startswith(f"{PACKAGE}.core.visual.report ") and "layer above" in b], bad
    assert [b for b in bad if b.startswith(f"{PACKAGE}.blender.live ") and "layer above" in b], bad
    assert [b for b in bad if b.startswith(f"{PACKAGE}.blender.takes ") and "test clips" in b], bad
    assert _cycles(made_up) == [[f"{PACKAGE}.core.solve.geometry", f"{PACKAGE}.core.tracking.worker"]]


if __name__ == "__main__":
    g = import_graph()
    by_layer: dict[tuple[int, str], list[str]] = {}
    for m in g:
        by_layer.setdefault(layer(m), []).append(m)
    for (rank, name), mods in sorted(by_layer.items(), reverse=True):
        print(f"{name}:")
        for m in sorted(mods):
            deps = sorted({layer(d)[1] for d in g[m]}, key=lambda n: -[k for k in by_layer if k[1] == n][0][0])
            print(f"  {m[len(PACKAGE) + 1:]:<34} -> {', '.join(deps) or '-'}")
    bad, cycles = upward_imports(g), _cycles(g)
    print(f"\n{len(g)} modules; {len(bad)} upward imports; {len(cycles)} import circles")
    for line in bad + [" <-> ".join(c) for c in cycles]:
        print("  " + line)
    sys.exit(1 if bad or cycles else 0)
