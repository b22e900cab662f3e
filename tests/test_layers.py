"""Every import in the tritium package points down the layer order, and none circles.

The layers (docs/engines.md, Layers), lowest first::

    spec < golden < hdl < host < sim < boards < cli

A module belongs to the layer of its package folder (setup.py's ROOTS), except that
``tritium.config``, ``tritium.errors``, ``tritium.protocol``, ``tritium.engine``,
``tritium.registry`` and ``tritium`` itself are the spec, and ``tritium.cli``,
``tritium.cliargs`` and every ``commands`` / ``*_commands`` module are the cli.  Inside
an engine package (``tritium.engines.NAME``) a module's layer is its role
(:data:`ENGINE_ROLES`: the package's top module and ``config`` spec, ``golden``, ``hdl``,
``driver``, ``compile`` and ``placement`` host, ``model``/``bench``/``runner`` sim,
``commands`` cli; ``X_runner`` is a runner too).  A module may import its own layer and the
layers below it.  Every import counts: module level, inside
functions, relative ones, and ``importlib.import_module("literal")``.  An engine package
imports no other engine package, except those :data:`ENGINE_DEPENDS` declares.
"""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS = ("spec", "golden", "hdl", "host", "sim", "boards", "cli")
SPEC_MODULES = {"tritium", "tritium.config", "tritium.errors", "tritium.progress",
                "tritium.protocol", "tritium.engine", "tritium.registry", "tritium.engines", "tritium.dram",
                "tritium.docgen"}
CLI_MODULES = {"tritium.cli", "tritium.cliargs"}
#: the layer of a module inside an engine package, by its name there ("" = the package)
ENGINE_ROLES = {"": "spec", "config": "spec", "golden": "golden", "hdl": "hdl",
                "driver": "host", "compile": "host", "placement": "host", "model": "sim",
                "bench": "sim",
                "runner": "sim", "commands": "cli"}
#: engine packages another engine package may import (the token core drives its TMV)
ENGINE_DEPENDS = {"mfc": {"tmv"}}


def package_roots(base: Path) -> dict[str, str]:
    """setup.py's ROOTS (package -> folder), read without running setup.py."""
    tree = ast.parse((base / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "ROOTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{base / 'setup.py'} has no ROOTS mapping")


def layer_of(module: str) -> str | None:
    """The layer of a tritium module (module docstring), None for one outside every layer."""
    last = module.rpartition(".")[2]
    if module in CLI_MODULES or last == "commands" or last.endswith("_commands"):
        return "cli"
    if module in SPEC_MODULES:
        return "spec"
    parts = module.split(".")
    if parts[:2] == ["tritium", "engines"] and len(parts) > 2:
        role = parts[3] if len(parts) > 3 else ""
        # a second module of one role is named by it: dot_runner is a runner
        return ENGINE_ROLES.get(role, ENGINE_ROLES.get(role.rpartition("_")[2]))
    if len(parts) > 1 and parts[0] == "tritium" and parts[1] in LAYERS:
        return parts[1]
    return None


@dataclasses.dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def discover(base: Path) -> dict[str, Module]:
    """Every module of the packages setup.py maps, by dotted name."""
    found = {}
    for pkg, folder in package_roots(base).items():
        root = base / folder
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join([pkg, *parts])
            found[name] = Module(name, path, is_package)
    return found


def _literal_import_module(node: ast.Call) -> str | None:
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else \
        func.id if isinstance(func, ast.Name) else None
    if called in ("import_module", "__import__") and node.args and \
            isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def _import_time_nodes(tree: ast.AST):
    """The nodes that run when the module is imported: all but function bodies and
    ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and \
                child.test.id == "TYPE_CHECKING":
            continue
        yield child
        yield from _import_time_nodes(child)


def imports_of(mod: Module, known: dict[str, Module], *, import_time: bool = False,
               everything: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a tritium module in ``mod``, at any
    depth (``import_time``: only those that run when ``mod`` is imported; ``everything``:
    other packages too).  ``from X import y`` imports ``X.y`` when that is a module, else
    ``X``; a name under ``tritium`` that is no module is returned as it is (the test
    reports it)."""
    package = mod.name if mod.is_package else mod.name.rpartition(".")[0]
    out = []

    def add(line: int, name: str) -> None:
        if everything or name == "tritium" or name.startswith("tritium."):
            out.append((line, name))

    tree = ast.parse(mod.path.read_text(), str(mod.path))
    for node in _import_time_nodes(tree) if import_time else ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(node.lineno, full if full in known else base)
        elif isinstance(node, ast.Call):
            name = _literal_import_module(node)
            if name:
                add(node.lineno, name)
    return sorted(set(out))


def import_graph(base: Path) -> tuple[dict[str, Module], dict[str, list[tuple[int, str]]]]:
    known = discover(base)
    return known, {name: imports_of(mod, known) for name, mod in known.items()}


def layer_violations(base: Path) -> list[str]:
    """One line per module outside every layer, import of no module, or upward import."""
    known, graph = import_graph(base)
    order = " < ".join(LAYERS)
    problems = [f"{name} ({known[name].path.relative_to(base)}) belongs to no layer; give it "
                "one in tests/test_layers.py and docs/engines.md"
                for name in known if layer_of(name) is None]
    for name, edges in graph.items():
        where = known[name].path.relative_to(base)
        for line, target in edges:
            if target not in known:
                problems.append(f"{where}:{line}: {name} imports {target}, which is no module "
                                "of the package")
                continue
            src, dst = layer_of(name), layer_of(target)
            if src and dst and LAYERS.index(dst) > LAYERS.index(src):
                problems.append(f"{where}:{line}: {name} (layer {src}) imports {target} "
                                f"(layer {dst}), a higher layer; the order is {order}")
    return problems


def import_cycles(base: Path) -> list[list[str]]:
    """Every elementary cycle found by a depth-first search (each reported once, starting
    at its smallest module name), among modules importing each other at any depth."""
    known, graph = import_graph(base)
    succ = {n: sorted({t for _, t in edges if t in known and t != n})
            for n, edges in graph.items()}
    cycles, seen = [], set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in succ[node]:
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):]
                k = cycle.index(min(cycle))
                key = tuple(cycle[k:] + cycle[:k])
                if key not in seen:
                    seen.add(key)
                    cycles.append(list(key) + [key[0]])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(succ):
        if node not in state:
            visit(node)
    return cycles


# ---- the package ------------------------------------------------------------------------------

def test_every_module_has_a_layer_and_imports_only_downwards():
    problems = layer_violations(REPO)
    assert not problems, "\n".join(problems)


def engine_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["tritium", "engines"] and len(parts) > 2 else None


def engine_crossings(base: Path) -> list[str]:
    """Imports from one engine package into another it does not declare."""
    known, graph = import_graph(base)
    out = []
    for src, targets in graph.items():
        for line, dst in targets:
            a, b = engine_of(src), engine_of(dst)
            if a and b and a != b and b not in ENGINE_DEPENDS.get(a, ()):
                out.append(f"{known[src].path.relative_to(base)}:{line}: engine {a} imports "
                           f"engine {b} ({dst}); engines use each other only as declared in "
                           "ENGINE_DEPENDS")
    return out


def test_engines_do_not_import_each_other():
    problems = engine_crossings(REPO)
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    cycles = import_cycles(REPO)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_walk_sees_the_package():
    # guards the two tests above against passing on an empty or half-read tree
    known, graph = import_graph(REPO)
    for name in ("tritium.protocol", "tritium.golden.shapes", "tritium.hdl.soc",
                 "tritium.host.device", "tritium.sim.model", "tritium.boards.flow",
                 "tritium.sim.model_commands", "tritium.cli"):
        assert name in known, name
    assert (layer_of("tritium.host.device_commands"), layer_of("tritium.host.device")) == \
        ("cli", "host")
    # a function-level import of the SoC in sim/serve.py, a relative one in hdl/soc.py
    assert "tritium.hdl.soc" in {t for _, t in graph["tritium.sim.serve"]}
    assert "tritium.hdl.link.command" in {t for _, t in graph["tritium.hdl.soc"]}


# ---- no engine name in generic code ----------------------------------------------------------

#: how generic code would spell a built-in engine: its name as a string, its config kinds,
#: its package, its config classes and the facts of its config module (written out here,
#: not read from the registry, so the check does not trust the code it checks)
ENGINE_NAMES = {"tmv", "mfc", "spgemm"}
ENGINE_SPELLINGS = ("ternary-matvec", "ternary-dot", "tritium.engines.tmv",
                    "tritium.engines.mfc", "tritium.engines.spgemm")
ENGINE_SYMBOLS = {"TernaryConfig", "TernaryDotConfig", "MfcConfig", "SpgemmConfig",
                  "SOC_SPGEMM", "TMV_FORMATS", "SPGEMM_SEMIRINGS", "MFC_SCALAR_OPS"}
#: the folders of generic code (everything but the engine packages and the tests)
GENERIC_FOLDERS = ("tritium", "golden", "hdl", "host", "sim", "boards")
#: generic modules that may still name a built-in engine, and why; nothing else may. Each
#: is data, not logic: a name the registry resolves, an attribute name, a config a file
#: holds; no code path branches on an engine here
_BOARD = ("a board file's default engine is a config dict (Board.engine): data that names "
          "its kind, resolved through the registry like a config JSON file; a board's "
          "resources fit that one config")
ENGINE_NAME_ALLOWED = {
    "tritium/registry.py": "BUILTIN, the one list of the built-in engines' packages",
    "tritium/config.py": "SocConfig.tmv reads the attribute ``tmv`` that an engine config "
                         "holding a weight-streaming TMV exposes (the bare TMV, the token "
                         "core's): an attribute name, no branch on an engine; the "
                         "weight-line sizes (SocConfig.line_bytes, line_stride) and the "
                         "board sweep read it",
    "boards/arty_a7_35.py": _BOARD,
    "boards/icebreaker.py": _BOARD,
    "boards/ulx3s_12f.py": _BOARD,
    "boards/ulx3s_85f.py": _BOARD,
}


def engine_mentions(text: str) -> list[tuple[int, str]]:
    """``(line, what)`` for each place the code (not a docstring) names a built-in engine:
    a string equal to an engine name or holding a kind or package path, a config class or
    config fact as a name or attribute, an import of an engine package."""
    tree = ast.parse(text)
    docstrings = {id(n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) \
                and id(n) not in docstrings:
            if n.value in ENGINE_NAMES or any(w in n.value for w in ENGINE_SPELLINGS):
                out.append((n.lineno, repr(n.value)))
        elif isinstance(n, ast.Name) and n.id in ENGINE_SYMBOLS:
            out.append((n.lineno, n.id))
        elif isinstance(n, ast.Attribute) and n.attr in ENGINE_SYMBOLS:
            out.append((n.lineno, n.attr))
        elif isinstance(n, ast.ImportFrom):
            names = [f"{n.module}.{a.name}" for a in n.names] if n.module else []
            out += [(n.lineno, f"import {m}") for m in names
                    if any(m.startswith(w + ".") or m == w for w in ENGINE_SPELLINGS[2:])]
        elif isinstance(n, ast.Import):
            out += [(n.lineno, f"import {a.name}") for a in n.names
                    if any(a.name.startswith(w) for w in ENGINE_SPELLINGS[2:])]
    return sorted(set(out))


def test_generic_code_names_no_engine():
    found, seen = [], set()
    for folder in GENERIC_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            seen.add(rel)
            hits = engine_mentions(path.read_text())
            if hits and rel not in ENGINE_NAME_ALLOWED:
                found += [f"{rel}:{line}: {what}" for line, what in hits]
    assert not found, "generic code names a built-in engine (move it into the engine's " \
        "package or ask the registry):\n" + "\n".join(found)
    # the allow-list stays short and true: every entry exists and still needs its exemption
    stale = [rel for rel in ENGINE_NAME_ALLOWED
             if rel not in seen or not engine_mentions((REPO / rel).read_text())]
    assert not stale, f"ENGINE_NAME_ALLOWED entries that name no engine any more: {stale}"


def test_engine_mentions_sees_code_and_skips_docstrings():
    text = textwrap.dedent('''\
        """Docstrings may say tmv, "mfc" and TernaryConfig."""
        from tritium.engines.tmv.config import TernaryConfig
        import tritium.engines.spgemm.driver
        from tritium import registry

        def f(cfg):
            """Nor does this: "spgemm"."""
            return cfg.engine_config("mfc"), registry.get("tmvx"), f"{cfg}-ternary-matvec"

        K = config.SpgemmConfig
        ''')
    assert engine_mentions(text) == [
        (2, "import tritium.engines.tmv.config.TernaryConfig"),
        (3, "import tritium.engines.spgemm.driver"), (8, "'-ternary-matvec'"),
        (8, "'mfc'"), (10, "SpgemmConfig")]


#: modules that must import only the standard library and tritium when imported: the spec,
#: and the model shapes `tritium estimate` reads (its start-up is bench/results/cli.json)
LIGHT_MODULES = sorted(SPEC_MODULES) + ["tritium.golden.shapes"]


def import_time_packages(name: str, known: dict[str, Module]) -> set[str]:
    """Packages other than tritium that importing ``name`` imports, through the tritium
    modules it imports on the way (imports inside functions and ``if TYPE_CHECKING:``
    blocks do not run then)."""
    found, seen, todo = set(), set(), [name]
    while todo:
        mod = known[todo.pop()]
        for _, target in imports_of(mod, known, import_time=True, everything=True):
            top = target.split(".")[0]
            if top != "tritium":
                found.add(top)
            elif target in known and target not in seen:
                seen.add(target)
                todo.append(target)
    return found - {"__future__"}


@pytest.mark.parametrize("name", LIGHT_MODULES)
def test_the_spec_and_the_shapes_import_only_the_standard_library(name):
    import sys

    heavy = sorted(p for p in import_time_packages(name, discover(REPO))
                   if p not in sys.stdlib_module_names)
    assert not heavy, f"importing {name} imports {heavy}"




# ---- the checker, on small packages it must refuse ------------------------------------------------

def _tree(base: Path, files: dict[str, str]) -> Path:
    (base / "setup.py").write_text(
        'ROOTS = {"tritium": "tritium", "tritium.golden": "golden", "tritium.hdl": "hdl"}\n')
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return base


BASE = {"tritium/__init__.py": "", "tritium/config.py": "", "golden/__init__.py": "",
        "hdl/__init__.py": "", "hdl/dot.py": "from tritium.golden import ternary\n",
        "golden/ternary.py": "from tritium import config\n"}


def test_checker_accepts_downward_imports(tmp_path):
    base = _tree(tmp_path, BASE)
    assert layer_violations(base) == []
    assert import_cycles(base) == []


def test_checker_names_an_upward_import_inside_a_function(tmp_path):
    base = _tree(tmp_path, {**BASE, "golden/ternary.py": """\
        from tritium import config


        def draw():
            from ..hdl.dot import beat   # relative, two levels up
            return beat
        """})
    problems = layer_violations(base)
    assert len(problems) == 1, problems
    assert "golden/ternary.py:5: tritium.golden.ternary (layer golden) imports " \
           "tritium.hdl.dot (layer hdl), a higher layer" in problems[0]


def test_checker_finds_a_cycle_within_one_layer(tmp_path):
    base = _tree(tmp_path, {**BASE,
                            "golden/a.py": "import importlib\n"
                                           "def f():\n"
                                           "    return importlib.import_module('tritium.golden.b')\n",
                            "golden/b.py": "from . import a\n"})
    assert layer_violations(base) == []
    assert import_cycles(base) == [["tritium.golden.a", "tritium.golden.b", "tritium.golden.a"]]


def test_checker_refuses_an_import_of_no_module(tmp_path):
    base = _tree(tmp_path, {**BASE, "golden/ternary.py": "from tritium.host import protocol\n"})
    assert layer_violations(base) == [
        "golden/ternary.py:1: tritium.golden.ternary imports tritium.host, which is no module "
        "of the package"]


def test_checker_refuses_a_module_outside_every_layer(tmp_path):
    base = _tree(tmp_path, {**BASE, "extras/__init__.py": "", "extras/add.py": "",
                            "engines/__init__.py": "", "engines/add/__init__.py": "",
                            "engines/add/helpers.py": ""})
    (base / "setup.py").write_text('ROOTS = {"tritium": "tritium", "tritium.golden": "golden", '
                                   '"tritium.hdl": "hdl", "tritium.extras": "extras", '
                                   '"tritium.engines": "engines"}\n')
    problems = layer_violations(base)
    assert sorted(p.split(" (")[0] for p in problems) == [
        "tritium.engines.add.helpers", "tritium.extras", "tritium.extras.add"]
    assert "belongs to no layer" in problems[0]


ENGINES = {**BASE, "engines/__init__.py": "", "engines/tmv/__init__.py": "",
           "engines/tmv/hdl.py": "from tritium.golden import ternary\n",
           "engines/tmv/golden.py": "from tritium import config\n",
           "engines/mfc/__init__.py": "", "engines/mfc/hdl.py": "from ..tmv import hdl\n",
           "engines/spgemm/__init__.py": ""}


def _engine_tree(tmp_path, files):
    base = _tree(tmp_path, files)
    (base / "setup.py").write_text('ROOTS = {"tritium": "tritium", "tritium.golden": "golden", '
                                   '"tritium.hdl": "hdl", "tritium.engines": "engines"}\n')
    return base


def test_checker_gives_engine_modules_the_layer_of_their_role(tmp_path):
    base = _engine_tree(tmp_path, ENGINES)
    assert layer_violations(base) == [] and engine_crossings(base) == []
    # the engine's golden model reaching up into its own hdl is refused like any other
    base = _engine_tree(tmp_path, {**ENGINES, "engines/tmv/golden.py": "from . import hdl\n"})
    problems = layer_violations(base)
    assert len(problems) == 1 and "tritium.engines.tmv.golden (layer golden) imports " \
        "tritium.engines.tmv.hdl (layer hdl), a higher layer" in problems[0], problems


def test_checker_refuses_an_undeclared_engine_dependency(tmp_path):
    base = _engine_tree(tmp_path, {
        **ENGINES, "engines/spgemm/hdl.py": "from tritium.engines.tmv import hdl\n"})
    problems = engine_crossings(base)
    assert len(problems) == 1 and "engine spgemm imports engine tmv" in problems[0], problems


def test_import_time_walk_follows_tritium_modules_and_skips_functions(tmp_path):
    base = _tree(tmp_path, {**BASE, "golden/ternary.py": "import numpy.linalg\n",
                            "golden/shapes.py": "from . import ternary\n",
                            "golden/lazy.py": """\
                                from typing import TYPE_CHECKING
                                if TYPE_CHECKING:
                                    import torch

                                def codes():
                                    from . import ternary
                                """})
    known = discover(base)
    assert import_time_packages("tritium.golden.shapes", known) == {"numpy"}
    assert import_time_packages("tritium.golden.lazy", known) == {"typing"}
