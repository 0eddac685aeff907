"""Architecture rules, checked on the source so a change that breaks a boundary fails here.

Most rules read imports with `ast` (every import, also inside functions, except where said),
so they run in well under a second and import none of the code they check.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sslapp"
MAX_LINES = 400


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _product_files() -> list[Path]:
    """The shipped code: the package and the Streamlit entry point (tests and benchmarks drive the
    app from outside, so they may import streamlit and read the database directly)."""
    return sorted(PACKAGE.rglob("*.py")) + [ROOT / "app.py"]


def _load_time_nodes(tree: ast.AST):
    """The nodes that run when the module is imported: not function bodies, not `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_load_time_nodes(child)])
            continue
        yield node
        yield from _load_time_nodes(node)


@cache
def _imports(path: Path, top_level_only: bool = False) -> frozenset[str]:
    """Absolute names of the modules `path` imports (relative imports resolved); with
    `top_level_only`, only the imports that run when the module is imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    nodes = _load_time_nodes(tree) if top_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            # `from sslapp.ui import common` imports the submodule sslapp.ui.common too
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _imports_any(path: Path, roots: tuple[str, ...]) -> list[str]:
    return sorted(n for n in _imports(path) if n.split(".")[0] in roots)


def test_only_the_ui_imports_streamlit():
    allowed = (PACKAGE / "ui", ROOT / "app.py")
    bad = {_rel(p): _imports_any(p, ("streamlit",)) for p in _product_files()
           if not any(p == a or a in p.parents for a in allowed)}
    assert not {k: v for k, v in bad.items() if v}, "streamlit outside sslapp/ui and app.py"


def test_only_the_store_imports_sqlite3():
    store = PACKAGE / "store"
    bad = {_rel(p): _imports_any(p, ("sqlite3",)) for p in _product_files() if store not in p.parents}
    assert not {k: v for k, v in bad.items() if v}, "sqlite3 outside sslapp/store: go through ws.store"


def test_the_job_worker_names_no_feature_package():
    """Job kinds and warm-ups live in sslapp.jobs.registry as strings; the rest of sslapp.jobs knows
    only the workspace, so a feature package can change without touching the worker."""
    allowed = ("sslapp.jobs", "sslapp.workspace", "sslapp.store", "sslapp.registry")
    bad = {}
    for path in sorted((PACKAGE / "jobs").glob("*.py")):
        found = [n for n in _imports_any(path, ("sslapp",)) if n != "sslapp" and not n.startswith(allowed)]
        if found:
            bad[_rel(path)] = found
    assert not bad


def test_tests_do_not_import_benchmarks():
    bad = {_rel(p): _imports_any(p, ("benchmarks",)) for p in sorted((ROOT / "tests").rglob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}, "move what tests need into sslapp or a tests helper"


def _lengths() -> dict[str, int]:
    return {_rel(p): len(p.read_text(encoding="utf-8").splitlines()) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_is_too_long():
    too_long = {name: n for name, n in _lengths().items() if n > MAX_LINES}
    assert not too_long, f"split these modules (at most {MAX_LINES} lines each)"


def _ui_modules() -> list[str]:
    return [_module_name(p) for p in sorted((PACKAGE / "ui").rglob("*.py"))]


def test_ui_modules_load_without_torch():
    """Loading the app's pages must not load torch (seconds and hundreds of MB per session): they list
    names from sslapp.catalogue and import the heavy code inside the functions that need it. Asking
    which starts are installed loads no torch either: jobs that read cached features ask it first."""
    modules = [*_ui_modules(), "sslapp.catalogue", "sslapp.features.starts"]
    script = ("import importlib, json, sys\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              "from sslapp.features.starts import _installed\n"
              "assert _installed('imagenet') and _installed('minilm'), 'the shipped weights are not installed'\n"
              "print(json.dumps(sorted(m for m in ('torch', 'torchvision', 'lightly') if m in sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def _top_level_closure(start: list[str]) -> dict[str, str]:
    """Every sslapp module reachable from `start` by top-level imports: {module: who imported it}."""
    seen: dict[str, str] = {name: "" for name in start}
    todo = list(start)
    while todo:
        name = todo.pop()
        path = _path_of(name)
        if path is None:
            continue
        for imported in _imports(path, top_level_only=True):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                module = ".".join(parts[:i])
                if parts[0] == "sslapp" and module not in seen and _path_of(module):
                    seen[module] = name
                    todo.append(module)
    return seen


def _path_of(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_ui_reaches_no_torch_through_top_level_imports():
    """The same rule read statically, naming the import chain that would pull torch in."""
    reached = _top_level_closure(_ui_modules())
    bad = {}
    for name, importer in reached.items():
        heavy = [n for n in _imports(_path_of(name), top_level_only=True) if n.split(".")[0] in ("torch", "torchvision")]
        if heavy:
            bad[name] = {"imports": heavy, "reached from": importer}
    assert not bad


def test_catalogue_is_derived_from_the_registries():
    """The pages' catalogue lists what the torch-free registries hold; it names nothing else."""
    allowed = {"__future__", "sslapp.models.registry", "sslapp.ssl.methods"}
    assert "__future__.annotations" in _imports(PACKAGE / "catalogue.py")
    assert _imports(PACKAGE / "catalogue.py") - allowed - {"__future__.annotations"} <= {
        f"{m}.{n}" for m in allowed for n in ("AUTO", "BACKBONES", "IMAGENET_BACKBONES", "INITS", "init_problem",
                                               "METHODS")}


def test_every_cli_subcommand_module_exists_and_a_missing_one_fails(monkeypatch):
    cli = importlib.import_module("sslapp.cli")
    assert all(_path_of(f"sslapp.cli.{name}") for name in cli.COMMANDS)
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "no_such_command"])
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()


def _defined_at_top(target: str) -> bool:
    module, _, name = target.partition(":")
    path = _path_of(module)
    if path is None:
        return False
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = ast.FunctionDef | ast.ClassDef
    return any(isinstance(n, kinds) and n.name == name for n in tree.body) or any(
        isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name for t in n.targets) for n in tree.body)


REGISTRIES = [("sslapp.jobs.registry", "JOBS"), ("sslapp.ssl.methods", "METHODS"),
              ("sslapp.models.registry", "BACKBONES"), ("sslapp.models.registry", "INITS"),
              ("sslapp.select.registry", "STRATEGIES"), ("sslapp.modalities", "MODALITIES")]


@pytest.mark.parametrize(("module", "table"), REGISTRIES)
def test_every_registry_entry_names_real_code_and_says_what_it_is(module, table):
    """Each entry has a name, a one-line description and a target defined at the top of an existing
    module (read statically: importing them would load torch and umap)."""
    registry = getattr(importlib.import_module(module), table)
    assert len(registry) > 0
    for name, entry in registry.items():
        assert entry.name == name and entry.description and "\n" not in entry.description
        assert not entry.target or _defined_at_top(entry.target), f"{table}[{name!r}] -> {entry.target}"


def test_the_warm_ups_name_real_functions():
    registry = importlib.import_module("sslapp.jobs.registry")
    assert all(_defined_at_top(t) for t in registry.WARM_UPS)


# -- layers ---------------------------------------------------------------------------------------
# Lowest first. A module may import sslapp modules of its own layer or below, never above, also
# inside functions. Data flows one way: ingest -> cache -> features -> map, suggestions, classifier
# -> export; downstream of features nothing asks what kind of item it holds.
LAYERS: list[tuple[str, ...]] = [
    ("sslapp", "sslapp.atomic", "sslapp.vectors", "sslapp.registry", "sslapp.numba_cache"),  # ground: no sslapp imports
    ("sslapp.store",),  # the only SQL; job states
    ("sslapp.workspace",),
    ("sslapp.jobs",),  # the worker; feature packages only as registry strings
    ("sslapp.modalities",),  # the item contract: files, decoding, cache rows, previews, preprocessing
    ("sslapp.ingest",),  # sources, the all-or-nothing ingest, the cache writer
    ("sslapp.models",),  # backbones, encoders, weights, fitted encoders, normalisation
    ("sslapp.estimators",),  # linear probe, propagation, Poisson learning, estimates: arrays in and out
    ("sslapp.features",),  # array I/O, the encoder pass, the candidates and the choice
    ("sslapp.ssl",),  # pretraining
    ("sslapp.finetune",),  # the classifier: full fine-tune, the finetune job
    ("sslapp.maps",),  # the 2-D map and its clusters
    ("sslapp.select", "sslapp.curate"),  # suggestions; review, more like this, near-duplicates
    ("sslapp.export",),
    ("sslapp.bench",),
    ("sslapp.catalogue", "sslapp.cli", "sslapp.ui", "sslapp.__main__", "app"),  # what people use
]


def _layer_of(module: str) -> int | None:
    best, found = -1, None
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    return found


def _sslapp_imports(path: Path) -> set[str]:
    """The sslapp modules `path` imports (a `from pkg import name` counts as the module pkg.name only
    where that module exists)."""
    out = set()
    for name in _imports(path):
        if name.split(".")[0] != "sslapp":
            continue
        if _path_of(name):
            out.add(name)
        elif _path_of(name.rpartition(".")[0]):
            out.add(name.rpartition(".")[0])
    return out


def test_every_module_has_a_layer():
    assert not [_module_name(p) for p in _product_files() if _layer_of(_module_name(p)) is None]


def test_no_import_runs_back_up_the_layers():
    """Every import, also those inside functions, goes to the importer's own layer or below."""
    upward = {}
    for path in _product_files():
        me = _module_name(path)
        mine = _layer_of(me)
        bad = sorted(n for n in _sslapp_imports(path) if (_layer_of(n) or 0) > mine)
        if bad:
            upward[me] = bad
    assert not upward, "imports that run back up the layers (move the code down, or pass the value in)"


def test_no_circles_of_files():
    """No module imports itself back through others, also through imports inside functions."""
    graph = {_module_name(p): {n for n in _sslapp_imports(p) if n != _module_name(p)} for p in _product_files()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles


# The torch-free read side the pages may use; compute modules stay behind jobs.
UI_READ_API = {
    "sslapp", "sslapp.words", "sslapp.workspace", "sslapp.store.states", "sslapp.jobs.launcher", "sslapp.catalogue",
    "sslapp.modalities", "sslapp.features.read", "sslapp.maps.read", "sslapp.curate.read", "sslapp.curate.similar",
    "sslapp.select.registry", "sslapp.export.manifest",
    # an item's text for display, read from the cache ingestion wrote (numpy only)
    "sslapp.ingest.read",
    # label files in and out: the store's labels as files and back, no torch
    "sslapp.export.labels", "sslapp.export.label_formats", "sslapp.export.label_import",
}


def test_the_pages_use_only_the_read_api():
    bad = {}
    for path in [*sorted((PACKAGE / "ui").rglob("*.py")), ROOT / "app.py"]:
        found = sorted(n for n in _sslapp_imports(path)
                       if not n.startswith("sslapp.ui") and n not in UI_READ_API
                       and not any(n.startswith(m + ".") for m in ("sslapp.modalities",)))
        if found:
            bad[_rel(path)] = found
    assert not bad, "pages import a compute module; give them a read function instead"
