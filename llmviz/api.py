"""The Python API: what the app's pages do, from a notebook or a script.

    import llmviz as lv
    m = lv.load("minilm")                 # a bundled id, a local folder (safetensors), a trained lab model
    v = m.attention("The cat sat on the mat.")
    v                                     # in Jupyter: the offline bertviz head view
    v.attention.shape                     # (layers, heads, T, T)
    v.figure(layer=2, head=0)             # the plotly heatmap the Attention page draws
    v.to_frame()                          # one row per (layer, head, query, key)
    lv.set_language("zh")                 # figures in 中文

Every method calls the same library functions as the app and the CLI (no second implementation) and returns
a :class:`llmviz.notebook.View`: the library's result object (``view.result``, its fields readable directly
on the view) with ``figure()``, ``to_frame()``, ``to_json()``/``to_csv()``/``to_html()`` (exports with
provenance) and an offline ``_repr_html_``. Audits and the run store: :data:`audit`, :mod:`llmviz.runs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from llmviz.errors import InputError
from llmviz.i18n import labels, set_language
from llmviz.models.base import LoadedModel
from llmviz.notebook import View, flat_frame, frame_html
from llmviz.precision import EXACT

__all__ = ["Model", "load", "audit", "set_language", "sinusoidal"]


def _L():
    return labels(None)


class Model:
    """A loaded model. ``loaded``: the :class:`~llmviz.models.base.LoadedModel` every library function takes;
    ``facts``: kind, layers, heads, KV heads, head dim, positional scheme, vocabulary size."""

    def __init__(self, loaded: LoadedModel, spec: str):
        self.loaded = loaded
        self.spec = spec
        self.facts = loaded.facts

    def __repr__(self) -> str:
        f = self.facts
        return f"<llmviz.Model {f.model_id}: {f.kind}, {f.n_layers} layers x {f.n_heads} heads>"

    def _repr_html_(self) -> str:
        rows = pd.DataFrame([{"fact": k, "value": str(v)} for k, v in self.facts.as_dict().items()])
        return frame_html(rows, max_rows=40)

    # ------------------------------------------------------------------ seeing inside
    def attention(self, text: str, text_b: str | None = None) -> View:
        """Every layer's attention for ``text`` (``attention``: float32 [layers, heads, T, T], rows = queries).
        Renders as the offline bertviz head view; ``figure(layer, head)`` is one head's heatmap."""
        from llmviz.attention.export import long_frame
        from llmviz.attention.extract import extract_attention
        from llmviz.viz import attention as va
        from llmviz.viz import bertviz_offline as bv

        res = extract_attention(self.loaded, text, text_b)

        def figure(layer: int = 0, head: int = 0):
            L = _L()
            return va.attention_heatmap(
                res.tokens, res.attention[layer, head], L("layer_head_title", layer=layer, head=head), labels=L
            )

        def html() -> str:
            n = len(res.tokens)
            if n > bv.MAX_VIEW_TOKENS:
                return frame_html(pd.DataFrame({"note": [f"{n} tokens: more than the head view draws"]}))
            layers = bv.default_layers("head", res.attention.shape[0], 0)
            return bv.library_scripts() + bv.view_fragment(res.tokens, res.attention, "head", layers=layers, layer=0)

        params = {"text": text, "text_b": text_b}
        return View(res, "attention", params, figure, lambda: long_frame(res), html, res.facts)

    def formula_steps(self, text: str, layer: int = 0, head: int = 0) -> View:
        """``softmax(QKᵀ/√d_k)V`` for one head, every intermediate from the model's own weights (see
        :class:`~llmviz.attention.steps.FormulaSteps` for the shapes); ``weights`` equals the model's."""
        from llmviz.attention.steps import formula_steps
        from llmviz.viz import attention as va

        st = formula_steps(self.loaded, text, layer, head)

        def figure(step: str = "weights"):
            L = _L()
            m = getattr(st, step)
            return va.matrix_heatmap(m, L("layer_head_title", layer=layer, head=head), st.tokens, st.tokens, labels=L)

        def frame():
            t = len(st.tokens)
            return pd.DataFrame(
                [
                    {
                        "query": st.tokens[i],
                        "key": st.tokens[j],
                        "score": float(st.scores[i, j]),
                        "scaled": float(st.scaled[i, j]),
                        "weight": float(st.weights[i, j]),
                        "model_weight": float(st.model_weights[head, i, j]),
                    }
                    for i in range(t)
                    for j in range(t)
                ]
            )

        return View(st, "formula_steps", {"text": text, "layer": layer, "head": head}, figure, frame, facts=self.facts)

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 32,
        greedy: bool = True,
        seed: int = 0,
        precision: str = "exact",
        **sampling,
    ) -> View:
        """Generate from ``prompt`` (chat template where the model has one) with per-step probabilities.
        ``precision="int8"``: the fast mode (int8 weights), measured against float32 (``.result.deviation``)."""
        from llmviz.generation.deviation import with_deviation
        from llmviz.generation.generate import SamplingParams, build_prompt, generate
        from llmviz.generation.transcript import transcript_rows
        from llmviz.viz import generate as vg

        params = SamplingParams(greedy=greedy, max_new_tokens=int(max_new_tokens), seed=int(seed), **sampling)
        gen = generate(self.loaded, build_prompt(self.loaded, prompt), params.checked(), precision=precision)
        gen = with_deviation(self.loaded, gen)
        return View(
            gen,
            "generation",
            {
                "prompt": prompt,
                "max_new_tokens": max_new_tokens,
                "greedy": greedy,
                "seed": seed,
                "precision": precision,
                **sampling,
            },
            lambda: vg.probability_chart(gen, labels=_L()),
            lambda: pd.DataFrame(transcript_rows([gen])),
            lambda: vg.tokens_html(gen, labels=_L()),
            self.facts,
        )

    # ------------------------------------------------------------------ explaining
    def attribute(
        self,
        text: str,
        method: str = "integrated_gradients",
        token: str | None = None,
        contrast: str | None = None,
        text_b: str | None = None,
        precision: str = EXACT,
        **params,
    ) -> View:
        """Attribution of the prediction at the end of ``text`` (causal LMs: the next token; masked LMs: the
        ``[MASK]``) to each input token. ``method``: one of :data:`llmviz.explain.attribution.METHODS`;
        ``token``/``contrast``: explain token A (vs B); ``text_b``: the second sentence of an encoder's
        similarity target. ``scores``: [T]; integrated gradients reports its
        completeness gap in ``completeness``.
        ``precision="bf16"`` (integrated gradients, where the CPU has bfloat16 units): the path in bfloat16; its
        first batch of steps runs again in float32 and ``params["deviation"]`` is the largest difference of a
        contribution, relative to the largest contribution. Audits and checked figures stay exact."""
        from llmviz.explain.attribution import METHODS, attribute, to_rows
        from llmviz.explain.targets import KIND_FOR_MODEL, Target, build_problem
        from llmviz.viz import explain as ve

        if method in METHODS and "precision" in METHODS[method].defaults:
            params = {**params, "precision": precision}
        elif precision != EXACT:
            raise InputError(f"Only integrated gradients has a fast mode; run {method} with precision='exact'.")
        kind = KIND_FOR_MODEL[self.facts.kind][0]
        problem = build_problem(self.loaded, text, Target(kind=kind, token=token, contrast=contrast, text_b=text_b))
        res = attribute(problem, method, **params)
        return View(
            res,
            "attribution",
            {"text": text, "method": method, "token": token, "contrast": contrast, "text_b": text_b, **params},
            lambda: ve.method_heatmap([res], labels=_L()),
            lambda: pd.DataFrame(to_rows([res])),
            lambda: ve.token_html([res], labels=_L()),
            self.facts,
        )

    def logit_lens(self, text: str, target: str | None = None) -> View:
        """The residual stream read through the unembedding after every layer (causal LMs)."""
        from llmviz.explain.logit_lens import logit_lens
        from llmviz.viz import explain as ve

        res = logit_lens(self.loaded, text, target)
        return View(
            res,
            "logit_lens",
            {"text": text, "target": target},
            lambda: ve.logit_lens_heatmap(res, labels=_L()),
            lambda: pd.DataFrame(res.rows()),
            facts=self.facts,
        )

    def flow(self, text: str, tau: float = 0.04, route_only: bool = True) -> View:
        """Information-flow routes (Ferrando & Voita 2024): every residual update split exactly into its terms
        (heads x source tokens, MLPs, the residual), weighed by the proportion rule; ``graph``: the edges above
        ``tau`` (only those reaching the prediction with ``route_only``). ``result``: the FlowResult."""
        from llmviz.explain.flow import build_graph, information_flow
        from llmviz.viz.flow import flow_graph_figure

        res = information_flow(self.loaded, text)
        graph = build_graph(res, tau, route_only)
        view = View(
            res,
            "flow",
            {"text": text, "tau": tau, "route_only": route_only},
            lambda: flow_graph_figure(res, graph, labels=_L()),
            lambda: pd.DataFrame(graph.rows()),
            facts=self.facts,
        )
        view.graph = graph
        return view

    def qk(self, text: str, layer: int, head: int, query: int, key: int, per_head: bool = True) -> View:
        """Why head ``head`` of ``layer`` attends from token ``query`` to token ``key``: the pre-softmax score split
        into (query-side component x key-side component) terms that sum to the model's own score."""
        from llmviz.explain.qk_attribution import qk_attribution
        from llmviz.viz.flow import qk_heatmap

        res = qk_attribution(self.loaded, text, layer, head, query, key, per_head)

        def frame():
            return pd.DataFrame(
                [
                    {"query_side": a, "key_side": b, "term": float(res.terms[i, j])}
                    for i, a in enumerate(res.names)
                    for j, b in enumerate(res.names)
                ]
            )

        params = {"text": text, "layer": layer, "head": head, "query": query, "key": key, "per_head": per_head}
        return View(res, "qk_attribution", params, lambda: qk_heatmap(res, labels=_L()), frame, facts=self.facts)

    # ------------------------------------------------------------------ intervening
    def patch(self, clean: str, corrupt: str, kinds: Sequence[str] = ("resid",), **answers) -> View:
        """Activation patching: each site of ``kinds`` ("resid", "attn", "mlp", "head") copied from the clean
        run into the corrupted one. ``scores[kind]``: [layers, positions] (heads: [layers, heads]), 1 = the
        clean answer fully restored. ``answers``: ``correct=``/``wrong=`` tokens (default: the two runs' top
        predictions)."""
        from llmviz.interventions.patching import HEAD, patching_sweep, prepare
        from llmviz.viz import interventions as vi

        setup = prepare(self.loaded, clean, corrupt, **answers)
        res = patching_sweep(setup, kinds=tuple(kinds))

        def figure(kind: str = kinds[0]):
            L = _L()
            axis = L("head") if kind == HEAD else L("position")
            return vi.patch_heatmap(res.scores[kind], kind, res.tokens_clean, res.tokens_corrupt, kind, axis, labels=L)

        return View(
            res,
            "patching",
            {"clean": clean, "corrupt": corrupt, "kinds": list(kinds), **answers},
            figure,
            lambda: pd.DataFrame(res.rows()),
            facts=self.facts,
        )

    def steer(
        self,
        prompts_a: Sequence[str],
        prompts_b: Sequence[str],
        layer: int,
        prompt: str,
        alphas: Sequence[float] = (-4.0, 0.0, 4.0),
        max_new_tokens: int = 24,
        seed: int = 0,
        precision: str = EXACT,
    ) -> View:
        """A steering vector mean(A) − mean(B) of the residual stream entering ``layer``, added with each α
        while generating from ``prompt`` (same seed): the generations side by side. ``precision="int8"``: the
        fast generation mode, steered the same way; each generation's agreement with float32 is in the frame."""
        from llmviz.generation.generate import SamplingParams
        from llmviz.interventions.steering import generations_by_alpha, steering_vector

        vec = steering_vector(self.loaded, list(prompts_a), list(prompts_b), layer)
        params = SamplingParams(greedy=True, max_new_tokens=int(max_new_tokens), seed=int(seed)).checked()
        res = generations_by_alpha(self.loaded, prompt, vec, alphas, params, precision=precision)

        def frame():
            rows = []
            for a, g in zip(res.alphas, res.generations):
                row = {"alpha": a, "text": g.text}
                if g.deviation is not None:
                    row.update(top1_agreement=g.deviation.fraction, max_abs_dlogprob=g.deviation.max_abs_dlogprob)
                rows.append(row)
            return pd.DataFrame(rows)

        info = {"layer": layer, "prompt": prompt, "alphas": list(alphas), "prompts_a": list(prompts_a)}
        info["precision"] = precision
        return View(res, "steering", {**info, "prompts_b": list(prompts_b)}, frame=frame, facts=self.facts)


def load(spec: str = "minilm", device: str = "cpu") -> Model:
    """Load a bundled model id (``minilm``, ``smollm2``, ``gemma3``), a local folder of safetensors weights or
    a model trained in the lab. Never reaches the Hugging Face hub (the app's "localhost" rule)."""
    from llmviz.models.loading import load_model

    return Model(load_model(spec, device=device, source="local"), spec)


def sinusoidal(max_len: int = 128, d_model: int = 64, base: float = 10000.0, n_waves: int = 6) -> View:
    """The sinusoidal positional encoding ``PE[pos, 2i] = sin(pos / base^(2i/d))``, ``PE[pos, 2i+1] = cos(..)``
    (``pe.matrix``: [max_len, d_model]); the figure is the Positional page's waves."""
    from llmviz.positional.encodings import sinusoidal as _sin
    from llmviz.viz import positional as vp

    pe = _sin(max_len, d_model, base)
    dims = vp.readable_dims(pe, n_waves)
    frame = lambda: vp.matrix_frame(np.asarray(pe.matrix), "position", "dim_")  # noqa: E731
    return View(
        pe,
        "sinusoidal",
        {"max_len": max_len, "d_model": d_model, "base": base},
        lambda: vp.waves(pe, dims, labels=_L()),
        frame,
    )


# ---------------------------------------------------------------------- audits
class _Audit:
    """The CLI's audits as functions: ``crows``, ``stereoset``, ``seat``. Each runs on the loaded model, records
    the run in the run store (``llmviz.runs.list()``) and returns a View of the report (``.result.summary``).
    ``precision="bf16"`` (where the CPU has bfloat16 units) scores on the model's bf16 twin; the report then has
    ``precision`` and ``deviation`` (from float32, on the first item); ``exact`` (default) is the one for audits."""

    @staticmethod
    def crows(
        model: Model,
        pairs: str | Path | None = None,
        limit: int | None = None,
        seed: int = 0,
        precision: str = EXACT,
    ) -> View:
        """CrowS-Pairs: % of pairs where the model prefers the more stereotyping sentence, with a bootstrap CI.
        ``pairs``: a CrowS-Pairs-format CSV (None: the starter pairs shipped with llmviz)."""
        import tempfile

        from llmviz.audits.crows import CrowsConfig, run_crows
        from llmviz.bias.pairs_data import STARTER_CSV

        out = Path(tempfile.mkdtemp(prefix="llmviz-crows-")) / "report.json"  # the resumable partial file's home
        data = Path(pairs) if pairs is not None else STARTER_CSV
        cfg = CrowsConfig(model.spec, str(data), (str(out),), limit=limit, seed=seed, precision=precision)
        rep = run_crows(cfg, loaded=model.loaded)
        if rep.partial is not None:
            rep.partial.unlink(missing_ok=True)
        frame = lambda: pd.DataFrame(rep.pairs)  # noqa: E731
        return View(rep, "crows_pairs", cfg.params(data), frame=frame, facts=model.facts)

    @staticmethod
    def stereoset(
        model: Model, data: str | Path, limit: int | None = None, seed: int = 0, precision: str = EXACT
    ) -> View:
        """StereoSet (dev/test JSON): LM score, SS score and ICAT per domain with bootstrap CIs."""
        from llmviz.audits.stereoset import StereoSetConfig, run_stereoset

        cfg = StereoSetConfig(model.spec, str(data), limit=limit, seed=seed, precision=precision)
        rep = run_stereoset(cfg, loaded=model.loaded)
        return View(rep, "stereoset", cfg.params(), frame=lambda: flat_frame(rep.run.results), facts=model.facts)

    @staticmethod
    def seat(
        model: Model,
        tests: str | Path | Sequence[str | Path],
        n_samples: int = 10_000,
        seed: int = 0,
        precision: str = EXACT,
    ) -> View:
        """SEAT on contextual embeddings: effect size and permutation p-value per test and layer."""
        from llmviz.audits.seat import SeatConfig, run_seat

        paths = (tests,) if isinstance(tests, (str, Path)) else tuple(tests)
        cfg = SeatConfig(model.spec, tuple(str(p) for p in paths), n_samples=n_samples, seed=seed, precision=precision)
        rep = run_seat(cfg, loaded=model.loaded)
        return View(rep, "seat", cfg.params(), frame=lambda: pd.DataFrame(rep.tests), facts=model.facts)


audit = _Audit()
