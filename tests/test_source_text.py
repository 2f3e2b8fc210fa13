"""Source text stays text (issue 21, "What users hit" 3): pages/attention.py held a literal form-feed byte where
the ``\\f`` of ``\\frac`` was, and Gemma 3's QK-norm steps showed a KaTeX error. No source file of the app or
the library holds a control byte; no LaTeX-looking string lost a command to a Python escape (``"\\frac"``
without r is a form feed + "rac"); and every formula the attention formula view draws is well formed for
the model families it covers (Gemma 3 with QK-norm, Llama with RoPE, BERT)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.fixtures.apptest_util import assert_ok, open_page

ROOT = Path(__file__).resolve().parents[1]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}
# LaTeX commands that a Python escape eats: "\frac" -> form feed + "rac", "\beta" -> backspace + "eta", ...
EATEN = {
    "alpha", "approx", "beta", "bar", "begin", "boldsymbol", "frac", "forall", "nabla", "ne", "neq", "newline",
    "not", "nu", "rangle", "rho", "right", "rightarrow", "rm", "tau", "tanh", "text", "textstyle", "tfrac",
    "theta", "tilde", "times", "to", "top", "vec", "varepsilon", "varphi", "vdots", "vert",
}  # fmt: skip
# every command the formula view may use (KaTeX supports all of them)
KATEX = {
    "begin", "end", "cdot", "dots", "epsilon", "frac", "hat", "in", "infty", "mathbb", "mathrm", "odot", "quad",
    "cos", "sin", "sqrt", "text", "tilde", "times", "top", "ge", "le", "left", "right", "tfrac", "overline",
    "Rightarrow", "sum", "lVert", "rVert", "theta", "omega", "pmatrix", "aligned", "max", "textstyle", "Pi",
    "bar", "mathbf", "log", "exp", "ell", "partial", "operatorname", "qquad", "dfrac",
}  # fmt: skip


def _sources() -> list[Path]:
    return [ROOT / "app.py"] + [p for d in ("pages", "ui", "llmviz") for p in sorted((ROOT / d).rglob("*.py"))]


def test_no_control_byte_in_any_source_file():
    bad = []
    for path in _sources():
        # split at \n only: str.splitlines() also splits at a form feed, and the byte would vanish from view
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if CONTROL.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:60]!r}")
    assert len(_sources()) > 100 and bad == []


def test_control_byte_check_finds_the_old_defect():
    old = 'steps = [(r"\\hat Q = \x0crac{Q}{2}", "Q after RMSNorm")]\n'  # pages/attention.py before the fix
    assert [n for n, line in enumerate(old.split("\n"), 1) if CONTROL.search(line)] == [1]


def _eaten(value: str) -> list[str]:
    """LaTeX commands lost to an escape in a string that otherwise looks like LaTeX."""
    if not re.search(r"\\[A-Za-z]{2,}", value):
        return []
    out = []
    for m in re.finditer(r"([\a\b\f\n\r\t\v])([A-Za-z]+)", value):
        word = ESCAPES[m.group(1)] + m.group(2)
        if word in EATEN:
            out.append("\\" + word)
    return out


def test_no_latex_command_eaten_by_a_python_escape():
    assert _eaten("\\hat Q = \frac{Q}{2}") == ["\\frac"] and _eaten("\\alpha\n the") == []  # the check works
    bad = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _eaten(node.value):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {_eaten(node.value)}")
    assert bad == []


def latex_problems(tex: str) -> list[str]:
    """What would make KaTeX fail: control characters, unbalanced braces, \\left without \\right, \\begin
    without its \\end, a command it does not know."""
    out = []
    if CONTROL.search(tex):
        out.append("control character")
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth != 0:
        out.append("unbalanced braces")
    if len(re.findall(r"\\left\b", tex)) != len(re.findall(r"\\right\b", tex)):
        out.append("\\left/\\right")
    if re.findall(r"\\begin\{(\w+)\}", tex) != re.findall(r"\\end\{(\w+)\}", tex)[::-1]:
        out.append("\\begin/\\end")
    out += [f"unknown \\{c}" for c in re.findall(r"\\([A-Za-z]+)", tex) if c not in KATEX]
    return out


def test_latex_check_finds_the_old_defect():
    assert latex_problems("\\hat Q = \frac{Q}{\\sqrt{\\mathrm{mean}(Q^2)+\\epsilon}}") == ["control character"]
    assert latex_problems("\\frac{a}{b") == ["unbalanced braces"]
    assert latex_problems("\\left( x") == ["\\left/\\right"]
    assert latex_problems("\\rac{Q}{2}") == ["unknown \\rac"]
    assert latex_problems(r"\hat Q = \frac{Q}{\sqrt{\mathrm{mean}(Q^2)+\epsilon}}\odot(1+w_q)") == []


@pytest.mark.parametrize("fixture", ["tiny_gemma3_dir", "tiny_llama_dir", "tiny_mlm_dir"])
def test_every_formula_step_is_well_formed(fixture, request):
    model = str(request.getfixturevalue(fixture))
    at = open_page("pages/attention.py", model, query={"view": "formula", "text": "the cat sat on the mat"})
    assert_ok(at)
    formulas = [str(e.value).removeprefix("$$\n").removesuffix("\n$$") for e in at.latex]  # st.latex wraps in $$
    assert len(formulas) >= 14
    assert {f: latex_problems(f) for f in formulas if latex_problems(f)} == {}
    if fixture == "tiny_gemma3_dir":  # the QK-norm steps are there, with \frac
        assert sum(f.startswith(("\\hat Q = \\frac", "\\hat K = \\frac")) for f in formulas) == 2
