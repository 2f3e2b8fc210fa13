"""The layering rule: nothing under llmviz/ imports streamlit."""

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


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top_level_imports(path: Path) -> set[str]:
    """llmviz modules imported at module level (function-level imports run later and break no circle)."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("llmviz")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmviz"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in (ROOT / "llmviz").rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        # a package's __init__ re-exports its submodules: that edge is not a circle of the submodules
        graph[name] = {
            m
            for m in _top_level_imports(path)
            if m in paths and m != name and not (path.name == "__init__.py" and m.startswith(name + "."))
        }
    return graph


def test_no_import_circle_in_llmviz():
    assert _cycles(_import_graph()) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


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


def test_page_sections_rule():
    """One rule for all pages: a page's sections live in pages/<page>.py or in ui/<page>_views.py,
    and a views module belongs to exactly one page (only that page imports it)."""
    pages = {p.stem for p in (ROOT / "pages").glob("*.py")}
    for views in (ROOT / "ui").glob("*_views.py"):
        page = views.stem.removesuffix("_views")
        assert page in pages, f"{views.name} names no page"
        importers = [
            p.stem
            for p in sorted((ROOT / "pages").glob("*.py"))
            if f"ui.{views.stem}" in p.read_text() or f"from ui import {views.stem}" in p.read_text()
        ]
        assert importers == [page], f"{views.name} imported by {importers}"
