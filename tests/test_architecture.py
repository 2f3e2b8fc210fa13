"""The layering rules: nothing under llmviz/ imports streamlit; no import circle in llmviz/ or ui/, counting
imports inside functions (printed: the circles and the function-level imports of project modules per package)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_llmviz_never_imports_streamlit():
    offenders = []
    for path in (ROOT / "llmviz").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"streamlit imported below llmviz/: {offenders}"


def test_checker_sees_an_import(tmp_path):
    """The AST walk above finds a nested `from streamlit import x` (guards against a vacuous check)."""
    tree = ast.parse("def f():\n    from streamlit.runtime import x\n")
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module.startswith("streamlit")]
    assert found


PROJECT = ("llmviz", "ui")  # packages whose modules form the import graph


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    """Module name -> file, for every module of the project packages."""
    return {
        _module_name(p): p
        for top in PROJECT
        for p in (ROOT / top).rglob("*.py")
        if "static" not in p.relative_to(ROOT).parts
    }


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(source: str, module: str, is_package: bool, modules) -> list[tuple[int, str, bool]]:
    """Every project module imported by ``source`` (the file of ``module``) as (line, module, inside a
    function?), module level and nested alike; imports under ``if TYPE_CHECKING:`` never run and are left out.
    ``from pkg import name`` is an import of ``pkg.name`` when that is a module, else of ``pkg``; relative
    imports are resolved against the file's package."""
    found: list[tuple[int, str, bool]] = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the package of this module
                    pkg = module.split(".") if is_package else module.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (child.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    found.append((child.lineno, sub if sub in modules else base, in_function))
            visit(child, nested)

    visit(ast.parse(source), False)
    return [(line, target, f) for line, target, f in found if target in modules and target != module]


def _file_imports(name: str, modules: dict[str, Path]) -> list[tuple[int, str, bool]]:
    path = modules[name]
    return _imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules)


def _import_graph(tops: tuple[str, ...] = PROJECT) -> dict[str, set[str]]:
    """Module -> project modules it imports (module level or inside functions), for modules under ``tops``."""
    modules = _project_files()
    graph = {}
    for name, path in modules.items():
        if name.split(".")[0] not in tops:
            continue
        # a package's __init__ re-exports its submodules: that edge is not a circle of the submodules
        graph[name] = {
            m
            for _, m, _ in _file_imports(name, modules)
            if not (path.name == "__init__.py" and m.startswith(name + "."))
        }
    return graph


def _function_level_imports(top: str) -> list[str]:
    """``file:line`` of every import statement inside a function under ``top`` that imports a project module."""
    modules = _project_files()
    return sorted(
        {
            f"{modules[name].relative_to(ROOT)}:{line}"
            for name in modules
            if name.split(".")[0] == top
            for line, _, in_function in _file_imports(name, modules)
            if in_function
        }
    )


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted; [] = no circle."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(out)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path around each circle found by a depth-first walk (for readable failure messages)."""
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def _report(top: str) -> list[list[str]]:
    graph = _import_graph()
    circles = [c for c in _circles(graph) if any(m.split(".")[0] == top for m in c)]
    nested = _function_level_imports(top)
    print(f"{top}/: {len(circles)} import circle(s); {len(nested)} function-level import(s) of project modules")
    return circles


def test_no_import_circle_in_llmviz():
    """Module-level and function-level imports alike: a circle hidden inside a function is still a circle."""
    circles = _report("llmviz")
    assert circles == [], f"import circles in llmviz/: {circles}; paths: {_cycles(_import_graph())}"


def test_no_import_circle_in_ui():
    """The same rule for ui/ (its own circles and any through llmviz/)."""
    circles = _report("ui")
    assert circles == [], f"import circles in ui/: {circles}; paths: {_cycles(_import_graph())}"


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_graph_counts_nested_and_from_imports(tmp_path):
    """The checker sees an import inside a function, resolves `from pkg import mod` to the module and a relative
    import to its package, and skips `if TYPE_CHECKING:` blocks."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "from llmviz.models import anatomy\n"
        "from . import hooks\n"
        "if TYPE_CHECKING:\n    from llmviz.cli import main\n"
        "def f():\n    from llmviz.audits.crows import run_crows\n"
    )
    got = {(t, f) for _, t, f in _imports(src, "llmviz.models.loading", False, _project_files())}
    assert got == {("llmviz.models.anatomy", False), ("llmviz.models.hooks", False), ("llmviz.audits.crows", True)}


def test_layout_names_the_architecture():
    """Attention, positional encoding, generation and models are packages re-exporting what pages use."""
    import types

    import llmviz.generation as G
    from llmviz.attention import extract_attention, formula_steps  # noqa: F401
    from llmviz.generation import generate  # noqa: F401
    from llmviz.models import load_model  # noqa: F401
    from llmviz.positional import sinusoidal  # noqa: F401

    # a re-exported function must not shadow a submodule of the same name
    assert isinstance(G.generate, types.ModuleType) and isinstance(G.fill_mask, types.ModuleType)
    for old in ("attention.py", "attention_steps.py", "models.py", "gguf_cache.py", "positional.py", "generate.py"):
        assert not (ROOT / "llmviz" / old).exists(), old


ROUTER_MAX_LINES = 60  # issue 21: a page file reads the URL and the picker, then calls its views


def test_page_sections_rule():
    """One rule for all pages: a page's views live in ui/views/<page>.py, a views module belongs to exactly
    one page (only that page imports it), its parts (ui/views/<page>_parts/) only that views module, and no views
    module is left at the old place (ui/<page>_views.py)."""
    pages = {p.stem for p in (ROOT / "pages").glob("*.py")}
    assert not list((ROOT / "ui").glob("*_views.py")), "views live in ui/views/<page>.py"
    for views in (ROOT / "ui" / "views").glob("*.py"):
        if views.stem == "__init__":
            continue
        assert views.stem in pages, f"ui/views/{views.name} names no page"
        importers = [
            p.stem
            for p in sorted((ROOT / "pages").glob("*.py"))
            if f"ui.views.{views.stem}" in p.read_text() or f"from ui.views import {views.stem}" in p.read_text()
        ]
        assert importers == [views.stem], f"ui/views/{views.name} imported by {importers}"
    # a page's views too long for one module: ui/views/<page>_parts/*.py, imported only by ui/views/<page>.py
    for part in (ROOT / "ui" / "views").glob("*_parts/*.py"):
        page = part.parent.name.removesuffix("_parts")
        assert page in pages, f"{part.relative_to(ROOT)} names no page"
        dotted = f"ui.views.{part.parent.name}"
        users = sorted(
            str(p.relative_to(ROOT))
            for top in ("pages", "ui", "llmviz")
            for p in (ROOT / top).rglob("*.py")
            if p.parent != part.parent and dotted in p.read_text(encoding="utf-8")
        )
        assert users in ([], [f"ui/views/{page}.py"]), f"{part.relative_to(ROOT)} imported by {users}"


def test_pages_are_routers():
    """Every page file is a router of at most ~60 lines; every page is in the registry."""
    from ui.registry import PAGE_FILES

    lines = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in sorted((ROOT / "pages").glob("*.py"))}
    print({"router_lines": lines})
    assert sorted(f"pages/{n}" for n in lines) == sorted(PAGE_FILES.values())
    assert {n: k for n, k in lines.items() if k > ROUTER_MAX_LINES} == {}


def _from_imports():
    for top in ("llmviz", "ui", "pages"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    yield path, node


def test_no_private_name_is_imported_across_packages():
    """A name starting with ``_`` is private to its package: another package importing it reaches into
    internals (as patching did with explain.targets._mask_text)."""
    found = []
    for path, node in _from_imports():
        here = path.relative_to(ROOT).parts[:-1]
        there = tuple(node.module.split("."))
        for a in node.names:
            if a.name.startswith("_") and not a.name.startswith("__") and there[: len(here)] != here[: len(there)]:
                found.append(f"{path.relative_to(ROOT)}: from {node.module} import {a.name}")
    assert found == []


def test_an_import_alias_means_one_module_everywhere():
    """Short aliases (``as P``) must not mean pairs in one file, encodings in another and patching in a third."""
    seen: dict[str, set[str]] = {}
    for _path, node in _from_imports():
        for a in node.names:
            if a.asname and a.asname.isupper():
                seen.setdefault(a.asname, set()).add(f"{node.module}.{a.name}")
    clashes = {alias: sorted(mods) for alias, mods in seen.items() if len(mods) > 1}
    assert clashes == {}
