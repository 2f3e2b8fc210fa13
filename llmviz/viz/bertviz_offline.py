"""bertviz head view and model view rendered fully offline, with a small payload.

Stock ``bertviz.head_view(..., html_action="return")`` loads require.js, d3 and jQuery from a CDN and
embeds every attention weight as a full-precision float. Here:

- d3 5.7.0, jQuery 3.7.1 and RequireJS 2.3.6 are vendored from npm under ``llmviz/viz/static/`` (license
  files kept, versions and sha256 in ``static/VENDORED.json``) and inlined **once** per document;
  bertviz's own view scripts (Apache-2.0) are vendored too, with their CDN ``require.config`` removed.
- The payload stores weights as integers (``round(w * 10**decimals)``), optionally only some layers
  (and heads in the model view), optionally without special tokens; a sentence pair ships one matrix and
  the browser slices the A→A/B→B/A→B/B→A filters from it.
- Tokens travel only inside JSON (``</`` and ``<!--`` escaped, non-ASCII as ``\\uXXXX``) and bertviz
  draws them with d3 ``.text()``, so ``</script>`` or ``<img onerror=...>`` in the text stays text.

``view_fragment`` returns the view's HTML without the libraries (what the payload bench measures);
``standalone_html`` wraps fragments into one offline HTML document (for ``st.iframe`` and download).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from llmviz.errors import InputError

STATIC = Path(__file__).resolve().parent / "static"
LIBRARIES = ("d3/d3.min.js", "jquery/jquery.min.js", "requirejs/require.js")
VIEWS = {"head": "bertviz/head_view.js", "model": "bertviz/model_view.js"}
DEFAULT_DECIMALS = 3
MAX_VIEW_TOKENS = 96  # bertviz draws T² lines per head; beyond this the browser stalls
# The model view draws T² lines in every thumbnail (layers × heads of them); Chromium on a busy 2-core
# machine needs ~10 s per 155k lines. The budget is minilm's 6 × 12 heads at 40 tokens: a model with more
# layers gets fewer tokens, so that all its layers can be shown by default (smollm2: 30 × 9 heads at 20 tokens).
MAX_MODEL_VIEW_LINES = 6 * 12 * 40 * 40
MAX_HEAD_VIEW_LAYERS = 12  # the head view ships every layer up to this many, else only the chosen one
MODEL_VIEW_SCROLL_PX = 640  # the page shows the model view in a scroll area this tall
# The model view draws a fixed 970 px wide SVG; a viewBox lets it shrink to its frame (it never grows).
_MODEL_SVG = '.attr("width", DIV_WIDTH)\n                .attr("height", config.divHeight)'
_MODEL_SVG_FIT = (
    '.attr("viewBox", "0 0 " + DIV_WIDTH + " " + config.divHeight)'
    '.attr("preserveAspectRatio", "xMinYMin meet")'
    '.attr("width", DIV_WIDTH)\n                .attr("height", config.divHeight)'
)

# Runs after the libraries: hands the globals to RequireJS under the names bertviz asks for, and
# defines the decoder that turns integer weights back into floats and builds the pair filters.
_PRELUDE = r"""
define('d3', [], function () { return window.d3; });
define('jquery', [], function () { return window.jQuery; });
window.llmvizDecode = function (p) {
  var s = p.scale;
  function dec(a) { return a.map(function (l) { return l.map(function (h) { return h.map(function (r) {
    return r.map(function (v) { return v / s; }); }); }); }); }
  function cut(a, r, c) { return a.map(function (l) { return l.map(function (h) {
    return h.slice(r[0], r[1]).map(function (row) { return row.slice(c[0], c[1]); }); }); }); }
  var all = p.attention[0];
  p.attention.forEach(function (a) { a.attn = dec(a.attn); });  // one entry, or encoder/decoder/cross
  if (p.sentence_b_start !== null && p.sentence_b_start !== undefined) {
    var b = p.sentence_b_start, n = all.left_text.length, A = [0, b], B = [b, n];
    var parts = [["Sentence A -> Sentence A", A, A], ["Sentence B -> Sentence B", B, B],
                 ["Sentence A -> Sentence B", A, B], ["Sentence B -> Sentence A", B, A]];
    parts.forEach(function (q) {
      p.attention.push({name: q[0], attn: cut(all.attn, q[1], q[2]),
                        left_text: all.left_text.slice(q[1][0], q[1][1]),
                        right_text: all.right_text.slice(q[2][0], q[2][1])});
    });
  }
  return p;
};
"""
_FILTER_NAMES = (
    "All",
    "Sentence A -> Sentence A",
    "Sentence B -> Sentence B",
    "Sentence A -> Sentence B",
    "Sentence B -> Sentence A",
)


def _read(rel: str) -> str:
    return (STATIC / rel).read_text(encoding="utf-8")


def vendored_manifest() -> dict:
    """Pinned versions and sha256 of the vendored files (``static/VENDORED.json``)."""
    return json.loads(_read("VENDORED.json"))


def verify_vendored() -> None:
    """Raise if a vendored file differs from its pinned sha256."""
    for rel, entry in vendored_manifest()["files"].items():
        digest = hashlib.sha256((STATIC / rel).read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            raise RuntimeError(f"Vendored file {rel} does not match its pinned sha256.")


def script_json(obj) -> str:
    """JSON safe to place inside ``<script>``: no ``</``, no ``<!--``, ASCII only."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--").replace("-->", "--\\u003e")


@lru_cache(maxsize=4)
def _view_js(view: str) -> str:
    js = _read(VIEWS[view])
    js = re.sub(r"require\.config\(\{.*?\}\);\s*", "", js, count=1, flags=re.S)
    if "cdnjs" in js or "https://" in js.split("requirejs(", 1)[1]:
        raise RuntimeError(f"bertviz {view} view still references a CDN after stripping its config.")
    if view == "model":
        if js.count(_MODEL_SVG) != 1:
            raise RuntimeError("bertviz model view: the SVG size code changed; cannot make it fit its frame.")
        js = js.replace(_MODEL_SVG, _MODEL_SVG_FIT)
    return js


def default_layers(view: str, n_layers: int, layer: int) -> list[int]:
    """Layers a view ships by default: the model view all of them (it is the overview of every layer
    and head); the head view all up to :data:`MAX_HEAD_VIEW_LAYERS`, else only ``layer``."""
    if view == "model" or n_layers <= MAX_HEAD_VIEW_LAYERS:
        return list(range(n_layers))
    return [min(max(int(layer), 0), n_layers - 1)]


def view_token_limit(view: str, n_layers: int, n_heads: int) -> int:
    """Most tokens a view draws: :data:`MAX_VIEW_TOKENS` for the head view; for the model view as many as
    keep layers × heads × T² lines within :data:`MAX_MODEL_VIEW_LINES` (at least 8)."""
    if view != "model":
        return MAX_VIEW_TOKENS
    fit = int((MAX_MODEL_VIEW_LINES / max(1, n_layers * n_heads)) ** 0.5)
    return max(8, min(MAX_VIEW_TOKENS, fit))


@lru_cache(maxsize=1)
def library_scripts() -> str:
    """The vendored libraries as inline ``<script>`` tags (include once per document)."""
    parts = []
    for rel in LIBRARIES:
        code = _read(rel)
        if "</script" in code.lower():  # would end the inline script early
            raise RuntimeError(f"{rel} contains '</script'; cannot inline it safely.")
        if rel != "requirejs/require.js":
            # Hide any AMD/CommonJS loader already on the page (a notebook, a second render) so d3 and
            # jQuery always install plain globals; the prelude then hands them to RequireJS by name.
            code = f"(function (define, module, exports) {{\n{code}\n}}).call(window);"
        parts.append(f"<script>/* {rel} (vendored, see static/VENDORED.json) */\n{code}\n</script>")
    parts.append(f"<script>{_PRELUDE}</script>")
    return "\n".join(parts)


def encode_weights(attention: np.ndarray, decimals: int = DEFAULT_DECIMALS) -> list:
    """``attention`` [layers, heads, T, T] -> nested lists of ints ``round(w * 10**decimals)``."""
    scale = 10 ** int(decimals)
    return np.rint(np.asarray(attention, dtype=np.float64) * scale).astype(np.int64).tolist()


def view_fragment(
    tokens: Sequence[str],
    attention: np.ndarray,
    view: str = "head",
    sentence_b_start: int | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    layer: int | None = None,
    decimals: int = DEFAULT_DECIMALS,
    root_id: str | None = None,
) -> str:
    """HTML of one bertviz view (``view`` = "head" | "model"), without the libraries.

    ``attention``: [layers, heads, T, T] for all layers of the model; ``layers`` picks which to ship
    (default all); ``heads``: head view = heads shown at start, model view = heads shipped;
    ``layer``: the head view's initial layer. Weights are rounded to ``decimals`` places.
    """
    if view not in VIEWS:
        raise InputError(f"Unknown bertviz view '{view}'. Choose one of {', '.join(VIEWS)}.")
    att = np.asarray(attention)
    if att.ndim != 4 or att.shape[2] != len(tokens) or att.shape[3] != len(tokens):
        raise InputError(f"Attention of shape {att.shape} does not match {len(tokens)} tokens.")
    n_layers, n_heads = att.shape[:2]
    layers = sorted({int(i) for i in (layers if layers is not None else range(n_layers))})
    if not layers or not all(0 <= i < n_layers for i in layers):
        raise InputError(f"Choose layers between 0 and {n_layers - 1}.")
    head_list = sorted({int(h) for h in (heads if heads is not None else range(n_heads))})
    if not head_list or not all(0 <= h < n_heads for h in head_list):
        raise InputError(f"Choose heads between 0 and {n_heads - 1}.")
    if layer is not None and int(layer) not in layers:
        layer = layers[0]
    shipped = att[layers]
    if view == "model":
        shipped = shipped[:, head_list]
    if sentence_b_start is not None and not 0 < int(sentence_b_start) < len(tokens):
        sentence_b_start = None
    root_id = root_id or f"bertviz-{uuid.uuid4().hex}"
    params = {
        "attention": [
            {
                "name": "All" if sentence_b_start is not None else None,
                "attn": encode_weights(shipped, decimals),
                "left_text": list(tokens),
                "right_text": list(tokens),
            }
        ],
        "scale": 10 ** int(decimals),
        "sentence_b_start": sentence_b_start,
        "default_filter": "0",
        "root_div_id": root_id,
        "include_layers": layers,
    }
    if view == "head":
        params.update(layer=None if layer is None else int(layer), heads=None if heads is None else head_list)
    else:
        params.update(display_mode="light", include_heads=head_list, total_heads=len(head_list))
    select = ""
    if sentence_b_start is not None:
        options = "".join(f'<option value="{i}">{html.escape(name)}</option>' for i, name in enumerate(_FILTER_NAMES))
        select = f'Attention: <select id="filter">{options}</select>'
    layer_select = 'Layer: <select id="layer"></select>' if view == "head" else ""
    js = _view_js(view).replace("PYTHON_PARAMS", f"llmvizDecode({script_json(params)})", 1)
    # The model view's SVG (970 px wide, with a viewBox) shrinks to the frame's width, keeping its shape.
    fit = (
        '<style>.llmviz-bertviz[data-view="model"] svg{max-width:100%;height:auto;}</style>' if view == "model" else ""
    )
    return (
        f"{fit}"
        f'<div id="{html.escape(root_id)}" class="llmviz-bertviz" data-view="{view}" '
        f'style="font-family:Helvetica,Arial,sans-serif;">'
        f'<span style="user-select:none">{layer_select} {select}</span><div id="vis"></div></div>\n'
        f"<script>\n{js}\n</script>"
    )


def encdec_fragment(
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    enc_self: np.ndarray,
    dec_self: np.ndarray,
    cross: np.ndarray,
    names: Sequence[str],
    layer_label: str,
    filter_label: str,
    decimals: int = DEFAULT_DECIMALS,
    root_id: str | None = None,
) -> str:
    """bertviz's head view of an encoder-decoder: a select switches between the encoder's self-attention
    ``enc_self`` [L, H, S, S], the decoder's ``dec_self`` [L, H, T, T] and the cross-attention ``cross``
    [L, H, T, S] (decoder positions on the left, source words on the right), as bertviz does for a
    pretrained seq2seq model. ``names``: the three options' names; the labels come from the caller's
    catalogue. Same payload rules as :func:`view_fragment` (integer weights, tokens only in JSON)."""
    src, tgt = list(src_tokens), list(tgt_tokens)
    parts = ((enc_self, src, src), (dec_self, tgt, tgt), (cross, tgt, src))
    for att, left, right in parts:
        if (
            np.ndim(att) != 4
            or np.shape(att)[2:] != (len(left), len(right))
            or np.shape(att)[:2] != np.shape(cross)[:2]
        ):
            raise InputError(f"Attention of shape {np.shape(att)} does not match {len(left)} x {len(right)} tokens.")
    root_id = root_id or f"bertviz-{uuid.uuid4().hex}"
    n_layers = int(np.shape(cross)[0])
    params = {
        "attention": [
            {"name": name, "attn": encode_weights(att, decimals), "left_text": left, "right_text": right}
            for name, (att, left, right) in zip(names, parts)
        ],
        "scale": 10 ** int(decimals),
        "sentence_b_start": None,
        "default_filter": "2",
        "root_div_id": root_id,
        "include_layers": list(range(n_layers)),
        "layer": n_layers - 1,
        "heads": None,
    }
    options = "".join(
        f'<option value="{i}"{" selected" if i == 2 else ""}>{html.escape(n)}</option>' for i, n in enumerate(names)
    )
    js = _view_js("head").replace("PYTHON_PARAMS", f"llmvizDecode({script_json(params)})", 1)
    return (
        f'<div id="{html.escape(root_id)}" class="llmviz-bertviz" data-view="head" '
        f'style="font-family:Helvetica,Arial,sans-serif;">'
        f'<span style="user-select:none">{html.escape(layer_label)} <select id="layer"></select> '
        f'{html.escape(filter_label)} <select id="filter">{options}</select></span><div id="vis"></div></div>\n'
        f"<script>\n{js}\n</script>"
    )


def standalone_html(fragments: str | Sequence[str], title: str = "llmviz attention", note: str = "") -> str:
    """A complete offline HTML document: libraries inlined once, then the view fragments."""
    if isinstance(fragments, str):
        fragments = [fragments]
    body = "\n".join(fragments)
    note_html = f'<p style="font:12px sans-serif;color:#555">{html.escape(note)}</p>' if note else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">"
        f"</head><body>\n{library_scripts()}\n{note_html}\n{body}\n</body></html>"
    )
