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
