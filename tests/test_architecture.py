"""Arrows one way: every import inside ``prunekit/`` points down the layer order.

The order (lowest first; a room may import its own layer and the layers below it):

    base (errors, registries, model I/O, checks, cost, the sizing spec) -> graph -> surgery
    -> equivalence (the engine's proof: analysis, equivalence) -> importance -> allocation
    -> plan (plan, verify, BN re-estimation, result) -> schedule (what each step reaches)
    -> pruner -> sparsity -> api (prune, testing)
    -> the rooms on top: data/models/report -> recovery/evaluation/export/deploy -> search
    -> recipe -> pipeline -> cli/demo -> the package's ``__init__``.

Every import counts: module level, inside functions (lazy), under ``TYPE_CHECKING``. A new
room must be given a layer here. Module-level import cycles are refused too.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "prunekit"

LAYERS: list[tuple[str, set[str]]] = [
    (
        "base",
        {
            "errors",
            "registry",
            "_modelio",
            "outputs",
            "checks",
            "cost",
            "spec",
            "model_record",
            "lstsq",
            "distributed",
        },
    ),
    ("graph", {"graph"}),
    ("surgery", {"surgery"}),
    ("equivalence", {"equivalence", "analysis"}),
    ("importance", {"importance"}),
    ("allocation", {"allocation"}),
    ("plan", {"plan", "verify", "recalibration", "result"}),
    ("schedule", {"schedule"}),  # what each step reaches, and the one loop; no pruner
    ("pruner", {"pruner"}),
    ("sparsity", {"sparsity"}),
    ("conformance", {"conformance"}),  # the battery: criteria and handlers, checked
    ("api", {"api", "testing"}),
    # the rooms on top: the core above never imports them
    ("assets", {"data", "models", "report"}),
    ("recovery", {"recovery", "evaluation", "export", "deploy", "llm"}),
    ("search", {"search"}),
    ("recipe", {"recipe"}),
    ("pipeline", {"pipeline"}),
    ("cli", {"cli", "demo"}),
    ("package", {"__init__", "__main__"}),
]
RANK = {room: i for i, (_, rooms) in enumerate(LAYERS) for room in rooms}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``prunekit.graph.tracer`` for ``prunekit/graph/tracer.py`` (a package: its name)."""
    parts = ("prunekit", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """The room of a module: its first part below ``prunekit`` (``__init__`` for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported(module: str, is_package: bool, source: str, known: set[str]) -> list[tuple[str, int]]:
    """(prunekit module, line) of every import in ``source``, wherever it stands."""
    package = module if is_package else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        out.extend((t, node.lineno) for t in targets if t.split(".")[0] == "prunekit")
    return out


def sources(root: Path = PACKAGE) -> dict[str, tuple[bool, str]]:
    """module name -> (is a package, source) for every file of the package."""
    return {
        module_name(p, root): (p.name == "__init__.py", p.read_text()) for p in root.rglob("*.py")
    }


def import_edges(files: Mapping[str, tuple[bool, str]]) -> list[tuple[str, str, int]]:
    """(importer, imported module, line) within ``prunekit``."""
    known = set(files)
    return [
        (module, target, line)
        for module, (is_package, source) in files.items()
        for target, line in imported(module, is_package, source, known)
    ]


def layer_violations(files: Mapping[str, tuple[bool, str]]) -> list[str]:
    """Every import that points up the layer order, or comes from or goes to a room without a
    layer, as ``importer:line imports target (room a, layer x -> room b, layer y)``."""
    bad = []
    for module, target, line in import_edges(files):
        a, b = room(module), room(target)
        if a not in RANK or b not in RANK:
            missing = a if a not in RANK else b
            bad.append(f"{module}:{line}: room {missing!r} has no layer; add it to LAYERS")
        elif RANK[b] > RANK[a]:
            bad.append(
                f"{module}:{line} imports {target} (room {a!r}, layer {LAYERS[RANK[a]][0]!r} -> "
                f"room {b!r}, layer {LAYERS[RANK[b]][0]!r}, which sits above it)"
            )
    return bad


def import_cycles(files: Mapping[str, tuple[bool, str]]) -> list[list[str]]:
    """The module import cycles (strongly connected components of two or more modules)."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, target, _ in import_edges(files):
        while target not in files and "." in target:
            target = target.rpartition(".")[0]
        if target in files and target != module:
            graph[module].add(target)
    return [c for c in _components(graph) if len(c) > 1]


def _components(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
            if w in stack:
                low[v] = min(low[v], low[w] if w in low else index[w])
        if low[v] == index[v]:
            cut = stack.index(v)
            out.append(sorted(stack[cut:]))
            del stack[cut:]

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down_the_layer_order() -> None:
    assert layer_violations(sources()) == []


def test_regression_upward_import_is_refused_also_when_lazy() -> None:
    files = sources()
    lazy = "def score(model):\n    from ..recovery import finetune\n    return finetune\n"
    files["prunekit.importance.upward"] = (False, lazy)
    found = layer_violations(files)
    assert found == [
        "prunekit.importance.upward:2 imports prunekit.recovery.finetune (room 'importance', layer "
        "'importance' -> room 'recovery', layer 'recovery', which sits above it)"
    ]
    files["prunekit.importance.upward"] = (False, "import prunekit.pruner\n")
    assert len(layer_violations(files)) == 1


def test_a_room_without_a_layer_is_refused() -> None:
    files = {"prunekit.newroom": (False, "from .errors import ConfigError\n")}
    assert layer_violations(files) == [
        "prunekit.newroom:1: room 'newroom' has no layer; add it to LAYERS"
    ]


def test_no_import_cycles() -> None:
    assert import_cycles(sources()) == []


def test_regression_import_cycle_is_found() -> None:
    files = {
        "prunekit.pipeline.run": (False, "from .tasks import task\n"),
        "prunekit.pipeline.tasks": (False, "def task():\n    from .run import run\n"),
        "prunekit.pipeline": (True, ""),
    }
    assert import_cycles(files) == [["prunekit.pipeline.run", "prunekit.pipeline.tasks"]]
