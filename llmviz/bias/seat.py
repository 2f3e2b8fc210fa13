"""The SEAT suite (May et al. 2019, "On Measuring Social Biases in Sentence Encoders"): loader and runner.

A SEAT test file (the paper's release: ``weat1.jsonl`` … ``sent-weat10.jsonl``, ``angry_black_woman_*``,
``heilman_double_bind_*``; named ``.jsonl`` but holding ONE JSON object, usually pretty-printed) is::

    {"targ1": {"category": str, "examples": [str, ...]}, "targ2": {...}, "attr1": {...}, "attr2": {...}}

Each item (a word or a whole sentence) is encoded as it stands, pooled per layer, and the WEAT statistics of
:mod:`llmviz.bias.weat` are computed with X = targ1, Y = targ2, A = attr1, B = attr2: effect size with ddof = 1
and a one-sided permutation p-value (exact over all partitions when there are at most ``weat.EXACT_LIMIT``).
Sets may hold up to MAX_ITEMS_PER_SET items; they are embedded ``weat.EMBED_BATCH`` at a time with progress.

``precision="bf16"`` (:mod:`llmviz.precision`) embeds on the model's bf16 twin; the test's first item is then
embedded again in float32 and the entry keeps ``deviation``: 1 − cosine between the two embeddings of that
item, the largest over the layers reported (0 = the same direction; the WEAT statistics are built from
cosines).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from llmviz.bias import weat as W
from llmviz.errors import InputError
from llmviz.models.loading import LoadedModel
from llmviz.precision import EXACT, deviation_text, on_precision
from llmviz.safe_io import load_json, read_bytes, reading

MAX_ITEMS_PER_SET = W.MAX_WORDS_PER_SET  # 2,000 items per set; the largest SEAT sentence set holds ~350
MAX_FILE_BYTES = 5 * 10**6
MAX_TESTS = 100
SET_KEYS = ("targ1", "targ2", "attr1", "attr2")
POOLINGS = {"mean": "mean", "cls": "first"}  # CLI name -> weat.embed_texts pooling
LAYER_CHOICES = ("all", "last")


@dataclass
class SeatTest:
    """One test: ``sets[k] = (category, items)`` for k in SET_KEYS."""

    name: str
    sets: dict[str, tuple[str, list[str]]]

    def items(self, key: str) -> list[str]:
        return self.sets[key][1]

    def category(self, key: str) -> str:
        return self.sets[key][0]

    @property
    def sizes(self) -> list[int]:
        return [len(self.items(k)) for k in SET_KEYS]


def parse_seat(raw: bytes, name: str) -> SeatTest:
    """Parse one SEAT test file's bytes. Raises InputError naming the file (not its contents)."""
    label = Path(name).name
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(
            f"{label}: {len(raw) / 1e6:.1f} MB; the limit for a SEAT file is {MAX_FILE_BYTES // 10**6} MB."
        )
    with reading(label):  # the checks below may still meet a deep value or run out of memory
        doc = load_json(
            raw,
            label,
            "one JSON object",
            hint='A SEAT file holds {"targ1": {"category", "examples"}, "targ2", "attr1", "attr2"}.',
        )
        return _seat_test(doc, name, label)


def _seat_test(doc, name: str, label: str) -> SeatTest:
    if not isinstance(doc, dict) or not all(k in doc for k in SET_KEYS):
        raise InputError(
            f"{label} is not a SEAT test: it needs the keys {', '.join(SET_KEYS)}, each "
            '{"category": ..., "examples": [...]}.'
        )
    sets = {}
    for k in SET_KEYS:
        block = doc[k]
        if not isinstance(block, dict) or not isinstance(block.get("examples"), list):
            raise InputError(f"{label}: '{k}' needs an 'examples' list.")
        items = [str(x).strip() for x in block["examples"] if str(x).strip()]
        if len(items) < 2:
            raise InputError(f"{label}: '{k}' needs at least 2 examples (has {len(items)}).")
        if len(items) > MAX_ITEMS_PER_SET:
            raise InputError(f"{label}: '{k}' has {len(items)} examples; the limit is {MAX_ITEMS_PER_SET}.")
        sets[k] = (str(block.get("category", k)), items)
    return SeatTest(Path(name).stem, sets)


def load_seat_tests(paths: Sequence[str | Path]) -> list[SeatTest]:
    """Tests from files and folders (a folder: every ``*.jsonl`` / ``*.json`` in it, sorted by name)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".jsonl", ".json") and x.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"No SEAT file or folder at '{p.name}'. Check --tests.")
    if not files:
        raise InputError("No SEAT test files (*.jsonl or *.json) found.")
    if len(files) > MAX_TESTS:
        raise InputError(f"{len(files)} test files; the limit is {MAX_TESTS} per run.")
    return [parse_seat(read_bytes(f, f.name, MAX_FILE_BYTES), f.name) for f in files]


def run_test(
    loaded: LoadedModel,
    test: SeatTest,
    pooling: str = "mean",
    layers: str = "all",
    n_samples: int = W.N_SAMPLES,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    precision: str = EXACT,
) -> dict[str, Any]:
    """One report entry: {"file", "targ1", "targ2", "attr1", "attr2", "n", "layers": [{layer, d, p, exact}]}
    (and "precision", "deviation" for a fast mode)."""
    return run_test_full(loaded, test, pooling, layers, n_samples, seed, progress, precision)[0]


def first_item_deviation(loaded: LoadedModel, text: str, fast: np.ndarray, pooling: str = "mean") -> float:
    """Largest 1 − cosine over layers between ``fast`` ([layers, hidden]: ``text``'s embeddings from a fast
    run) and ``text`` embedded again in float32 on ``loaded`` (the same layers: the last ``len(fast)``)."""
    exact = W.embed_texts(loaded, [text], POOLINGS[pooling])[-len(fast) :, 0]
    num = (fast * exact).sum(-1)
    den = np.linalg.norm(fast, axis=-1) * np.linalg.norm(exact, axis=-1)
    return float(np.max(1.0 - num / np.where(den > 0, den, 1.0)))


def run_test_full(
    loaded: LoadedModel,
    test: SeatTest,
    pooling: str = "mean",
    layers: str = "all",
    n_samples: int = W.N_SAMPLES,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    precision: str = EXACT,
):
    """(report entry, (X items, Y items, s_x, s_y) at the last layer) — s(w, A, B) per target item.
    ``precision``: a mode of :mod:`llmviz.precision` (see the module doc)."""
    if pooling not in POOLINGS:
        raise InputError(f"Unknown pooling '{pooling}'; use {' or '.join(POOLINGS)}.")
    if layers not in LAYER_CHOICES:
        raise InputError(f"--layers must be {' or '.join(LAYER_CHOICES)}.")
    texts = [x for k in SET_KEYS for x in test.items(k)]
    emb = W.embed_texts(on_precision(loaded, precision), texts, POOLINGS[pooling], progress=progress)  # [L+1, n, d]
    if layers == "last":
        emb = emb[-1:]
    EX, EY, EA, EB = np.split(emb, np.cumsum(test.sizes[:3]), axis=1)
    d, p, sx, sy, exact, _ = W.weat_from_embeddings(EX, EY, EA, EB, n_samples, seed)
    first = loaded.facts.n_layers if layers == "last" else 0
    entry = {
        "file": test.name,
        **{k: test.category(k) for k in SET_KEYS},
        "n": test.sizes,
        "layers": [
            {"layer": first + i, "effect_size": float(d[i]), "p_value": float(p[i]), "exact": bool(exact)}
            for i in range(len(d))
        ],
    }
    if precision != EXACT:
        entry.update(precision=precision, deviation=first_item_deviation(loaded, texts[0], emb[:, 0], pooling))
    return entry, (test.items("targ1"), test.items("targ2"), sx[-1], sy[-1])


def call_shapes(loaded: LoadedModel, tests: Sequence[SeatTest]) -> list[tuple[int, int]]:
    """(rows, padded width) of every forward pass :func:`run_test_full` makes for ``tests`` (tokenises, runs no
    model): what ``llmviz.estimate.seat_work`` counts."""
    return [shape for test in tests for shape in W.embed_shapes(loaded, [x for k in SET_KEYS for x in test.items(k)])]


def run_suite(
    loaded: LoadedModel,
    tests: Sequence[SeatTest],
    pooling: str = "mean",
    layers: str = "all",
    n_samples: int = W.N_SAMPLES,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    precision: str = EXACT,
) -> list[dict[str, Any]]:
    """run_test over a list of tests, in order (tests are independent, so the list can be sharded)."""
    return [run_test(loaded, t, pooling, layers, n_samples, seed, progress, precision) for t in tests]


def suite_deviation(entries: Sequence[dict[str, Any]]) -> float | None:
    """A fast run's largest deviation over its tests' entries (None for an exact run, which has none)."""
    devs = [e["deviation"] for e in entries if e.get("deviation") is not None]
    return max(devs) if devs else None


def deviation_line(precision: str, deviation: float | None) -> str:
    """A fast SEAT run's deviation in words ("" for exact)."""
    return deviation_text(precision, deviation, "1 − cosine", "on each test's first item")


def stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _caption_lead(report: dict[str, Any]) -> str:
    """``Pooling mean; <date>. `` with only the parts the report has (nothing when it has neither); a fast run's
    report adds its precision and deviation."""
    parts = [f"Pooling {report['pooling']}" if report.get("pooling") else "", str(report.get("date") or "")]
    if report.get("deviation") is not None:
        parts.append(deviation_line(report.get("precision", EXACT), report["deviation"]))
    lead = "; ".join(html.escape(p) for p in parts if p.strip())
    return f"{lead}. " if lead else ""


def html_table(report: dict[str, Any]) -> str:
    """Standalone HTML: tests × layers, effect size d with p-value stars (* < .05, ** < .01, *** < .001)."""
    tests = report["tests"]
    layers = sorted({x["layer"] for t in tests for x in t["layers"]})
    head = "".join(f"<th>layer {x}</th>" for x in layers)
    body = []
    for t in tests:
        cells = {x["layer"]: x for x in t["layers"]}
        tds = "".join(
            f"<td title='p = {cells[x]['p_value']:.4g}'>{cells[x]['effect_size']:+.2f}{stars(cells[x]['p_value'])}</td>"
            if x in cells
            else "<td></td>"
            for x in layers
        )
        body.append(
            f"<tr><th>{html.escape(t['file'])}</th><td>{html.escape(' / '.join(map(str, t['n'])))}</td>{tds}</tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>SEAT</title><style>body{font-family:sans-serif;"
        "margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "</style></head><body>"
        f"<h1>SEAT: {html.escape(str(report.get('model', '')))}</h1>"
        f"<p>{_caption_lead(report)}"
        "Cells: effect size d (ddof = 1); one-sided permutation p: * &lt; 0.05, ** &lt; 0.01, *** &lt; 0.001 "
        "(not corrected for multiple tests). A large d says the embeddings associate the sets; it does not "
        "show what the model does in a task.</p>"
        f"<table><tr><th>test</th><th>n (X/Y/A/B)</th>{head}</tr>{''.join(body)}</table></body></html>"
    )
