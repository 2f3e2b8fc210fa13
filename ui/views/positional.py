"""Views of the positional-encoding page: the header, the sinusoidal controls and the four sections
(widgets, cached llmviz calls, figures, formulas). pages/positional.py is the router."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from llmviz.errors import LlmvizError, UnsupportedModelError
from llmviz.positional import ablation as pos_ablation
from llmviz.positional import encodings
from llmviz.positional import model as pos_model
from llmviz.positional.encodings import DEFAULT_BASE, MAX_BASE, MAX_D_MODEL, MAX_LEN
from llmviz.report import csv_export, export_name
from llmviz.viz import positional as viz
from ui.common import export_buttons, plot
from ui.i18n import fig_labels, t
from ui.links import presenter_mode, to_url
from ui.text import md_escape, show_error, t_text

DEFAULT_TEXT = "The dog chased the cat across the garden."
LAZY_CELLS = 50_000  # bigger tables are written only when their download button is clicked
RELATIVE_TOL = 1e-5
SHIFT_TOL = 1e-6


DEFAULTS = {"d_model": 128, "max_len": 100, "base": DEFAULT_BASE}
LIMITS = {"d_model": (1, MAX_D_MODEL), "max_len": (1, MAX_LEN), "base": (1.0, MAX_BASE)}


def header(loaded) -> None:
    """Title, introduction and the loaded model's positional scheme."""
    f = loaded.facts
    st.title(t("positional.title"))
    st.markdown(t("positional.intro"))
    st.caption(
        t_text(
            "positional.model_scheme",
            model=f.model_id,
            scheme=t(f"app.pos_{f.positional}"),
            theta=f" (θ = {f.rope_theta:g})" if f.rope_theta else "",
            max_pos=f.max_positions,
        )
    )


def url_fields(qp) -> dict:
    """The sinusoidal settings a link carries (``?d_model=&max_len=&base=``), clamped to their limits with a
    notice when a value was out of range."""

    def linked(name: str, cast):
        lo, hi = LIMITS[name]
        raw = qp(name, DEFAULTS[name], cast)
        value = min(max(raw, lo), hi)
        if value != raw:
            st.warning(t_text("positional.clamped", name=name, raw=raw, value=value, lo=lo, hi=hi))
        return value

    return {
        "pos_d_model": int(linked("d_model", int)),
        "pos_max_len": int(linked("max_len", int)),
        "pos_base": float(linked("base", float)),
    }


def sinusoidal_controls() -> dict:
    """The three settings of the sinusoidal section (each kept in the URL)."""
    c = st.columns(3)
    d_model = c[0].slider(
        t("positional.d_model"),
        *LIMITS["d_model"],
        key="pos_d_model",
        help=t("positional.d_model_help"),
        on_change=to_url("pos_d_model", "d_model", "positional"),
    )
    max_len = c[1].slider(
        t("positional.max_len"),
        *LIMITS["max_len"],
        key="pos_max_len",
        help=t("positional.max_len_help", n=MAX_LEN),
        on_change=to_url("pos_max_len", "max_len", "positional"),
    )
    base = c[2].number_input(
        t("positional.base"),
        *LIMITS["base"],
        step=1000.0,
        format="%g",
        key="pos_base",
        help=t("positional.base_help"),
        on_change=to_url("pos_base", "base", "positional"),
    )
    return {"d_model": int(d_model), "max_len": int(max_len), "base": float(base)}


@st.cache_data(max_entries=8, show_spinner=False)
def _sinusoidal(max_len: int, d_model: int, base: float) -> encodings.SinusoidalPE:
    return encodings.sinusoidal(max_len, d_model, base)


@st.cache_data(max_entries=8, show_spinner=False)
def _distance(max_len: int, d_model: int, base: float, metric: str) -> encodings.DistanceSimilarity:
    return encodings.distance_similarity(encodings.sinusoidal(max_len, d_model, base), metric)


@st.cache_data(max_entries=4, show_spinner=False)
def _learned(_loaded, spec: str) -> pos_model.LearnedAnalysis:
    return pos_model.analyse_learned(pos_model.learned_positions(_loaded))


@st.cache_data(max_entries=16, show_spinner=False)
def _encoder_ablation(_loaded, spec: str, text: str, seed: int, mode: str) -> pos_ablation.EncoderAblation:
    return pos_ablation.encoder_ablation(_loaded, text, seed, mode)


@st.cache_data(max_entries=16, show_spinner=False)
def _rope_ablation(_loaded, spec: str, text: str, seed: int) -> pos_ablation.CausalAblation:
    return pos_ablation.rope_ablation(_loaded, text, seed)


# settings that tell one figure from another, in file names: (meta key, prefix)
_NAME_PARAMS = (
    ("d_model", "d"),
    ("max_len", "len"),
    ("base", "base"),
    ("metric", ""),
    ("k", "shift"),
    ("head_dim", "hd"),
    ("theta", "theta"),
    ("layer", "layer"),
    ("head", "head"),
    ("mode", ""),
    ("seed", "seed"),
)


def _name(key: str, meta=None) -> str:
    """Export-name stem from the model and the settings in ``meta``, e.g.
    ``positional_waves_d128-len100-base10000`` or ``positional_smollm2_rope-angles_hd64-theta100000``."""
    m = meta or {}

    def num(v) -> str:
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    details = "-".join(f"{p}{num(m[k])}" for k, p in _NAME_PARAMS if m.get(k) is not None)
    return export_name("positional", m.get("model"), key, details)


def _exports(key: str, fig=None, data: pd.DataFrame | None = None, meta=None) -> None:
    """Figure HTML + data CSV/JSON; a large table becomes one CSV written on click (JSON of it would be huge)."""
    if data is not None and data.size > LAZY_CELLS:
        export_buttons(key, fig=fig, stem=_name(key, meta), meta=meta)
        st.download_button(
            t("positional.big_csv", rows=data.shape[0], cols=data.shape[1] - 1),
            lambda: csv_export(data, meta),
            f"{_name(key, meta)}.csv",
            "text/csv",
            key=f"{key}_bigcsv",
        )
    else:
        export_buttons(key, fig=fig, data=data, stem=_name(key, meta), meta=meta)


def _side_by_side(fig, formula: str, note: str, key: str, data: pd.DataFrame | None = None, meta=None) -> None:
    """A figure with its formula and explanation beside it, then its export buttons."""
    left, right = st.columns([3, 2])
    with left:
        plot(fig, key=f"{key}_fig", export_name=_name(key, meta))
    with right:
        st.latex(formula)
        st.markdown(note)  # a catalogue text (markdown on purpose), no user input
    _exports(key, fig, data, meta)


def _index(label: str, hi: int, key: str) -> int:
    """A slider from 0 to ``hi``; nothing to choose (and no widget) when ``hi`` is 0."""
    return int(st.slider(label, 0, hi, 0, key=key)) if hi > 0 else 0


def _check(ok: bool, text: str) -> None:
    (st.success if ok else st.error)(text, icon=":material/check_circle:" if ok else ":material/cancel:")


# ------------------------------------------------------------------ sinusoidal
def sinusoidal_section(d_model: int, max_len: int, base: float) -> None:
    try:
        pe = _sinusoidal(max_len, d_model, base)
    except LlmvizError as err:
        show_error(err)
        return
    for note in pe.notes:
        st.warning(md_escape(note))
    meta = {"d_model": d_model, "max_len": max_len, "base": base}

    st.subheader(t("positional.waves_header"))
    pairs = int(pe.wavelengths.size)
    c = st.columns([1, 3])
    n_waves = viz.DEFAULT_WAVES
    if min(viz.MAX_WAVES, pairs) > 1:
        n_waves = int(
            c[0].slider(
                t("positional.n_waves"),
                1,
                min(viz.MAX_WAVES, pairs),
                min(viz.DEFAULT_WAVES, pairs),
                key="pos_n_waves",
                help=t("positional.n_waves_help"),
            )
        )
    shown = viz.readable_dims(pe, n_waves)
    # keyed by the parameters: a new d_model / length / base / count starts from its own readable choice
    dims = c[1].multiselect(
        t("positional.dims"),
        list(range(d_model)),
        default=shown,
        key=f"pos_dims_{d_model}_{max_len}_{base:g}_{n_waves}",
        help=t("positional.dims_help"),
    )
    lam = [float(pe.wavelengths[d // 2]) for d in dims or [0]]
    st.caption(t("positional.dims_shown", n=len(dims or [0]), d=d_model, lo=min(lam), hi=max(lam)))
    _side_by_side(
        viz.waves(pe, dims or [0], labels=fig_labels()),
        r"\begin{aligned}PE_{(pos,2i)}&=\sin\!\left(\frac{pos}{%s^{2i/d}}\right)\\"
        r"PE_{(pos,2i+1)}&=\cos\!\left(\frac{pos}{%s^{2i/d}}\right)\end{aligned}" % (f"{base:g}", f"{base:g}"),
        t("positional.waves_note"),
        "waves",
        viz.matrix_frame(pe.matrix, "position", "dim"),
        meta,
    )
    _side_by_side(
        viz.pe_heatmap(pe, labels=fig_labels()),
        r"PE \in \mathbb{R}^{%d \times %d}" % (max_len, d_model),
        t("positional.heatmap_note"),
        "heatmap",
        viz.matrix_frame(pe.matrix, "position", "dim"),
        meta,
    )

    st.subheader(t("positional.wavelength_header"))
    left, right = st.columns([3, 2])
    table = pd.DataFrame(encodings.wavelength_table(pe))
    left.dataframe(table, hide_index=True, height=260)
    right.latex(r"\lambda_i = \frac{2\pi}{\omega_i} = 2\pi \cdot %s^{2i/d}" % f"{base:g}")
    right.markdown(
        t(
            "positional.wavelength_note",
            lo=float(pe.wavelengths.min()),
            hi=float(pe.wavelengths.max()),
            top=2 * np.pi * base,
        )
    )
    export_buttons("wavelengths", data=table, stem=_name("wavelengths", meta), meta=meta)

    st.subheader(t("positional.distance_header"))
    if max_len < 2:
        st.info(t("positional.need_two"))
    else:
        metric = st.radio(
            t("positional.metric"),
            encodings.METRICS,
            horizontal=True,
            key="pos_metric",
            format_func=lambda m: t(f"positional.metric_{m}"),
            help=t("positional.metric_help"),
        )
        ds = _distance(max_len, d_model, base, metric)
        refs = sorted({0, max_len // 4, max_len // 2})
        _side_by_side(
            viz.distance_curves(ds, refs, labels=fig_labels()),
            r"PE(p)\cdot PE(p+d)=\sum_{i}\cos(\omega_i d)",
            t("positional.distance_note"),
            "distance",
            viz.distance_frame(ds),
            {**meta, "metric": metric},
        )
        _check(ds.max_spread < 1e-9, t("positional.distance_check", spread=ds.max_spread))
        with st.expander(t("positional.distance_matrix")):
            L = fig_labels()
            fig = viz.heatmap(ds.matrix, L(f"pair_similarity_{metric}"), L("position_q"), L("position_p"), labels=L)
            plot(fig, key="pos_dmatrix_fig", export_name=_name("dmatrix", {**meta, "metric": metric}))
            _exports("dmatrix", fig, viz.matrix_frame(ds.matrix, "position", "pos"), {**meta, "metric": metric})

    st.subheader(t("positional.shift_header"))
    k = st.number_input(
        t("positional.shift_k"), 0, max_len - 1, min(5, max_len - 1), key="pos_k", help=t("positional.shift_k_help")
    )
    sm = encodings.shift_map(pe, int(k))
    _side_by_side(
        viz.shift_map_figure(sm, labels=fig_labels()),
        r"\begin{pmatrix}\sin\omega_i(p+k)\\ \cos\omega_i(p+k)\end{pmatrix}="
        r"\begin{pmatrix}\cos\omega_i k & \sin\omega_i k\\ -\sin\omega_i k & \cos\omega_i k\end{pmatrix}"
        r"\begin{pmatrix}\sin\omega_i p\\ \cos\omega_i p\end{pmatrix}",
        t("positional.shift_note"),
        "shift",
        viz.matrix_frame(sm.matrix, "row", "col"),
        {**meta, "k": int(k)},
    )
    if sm.note:
        st.info(md_escape(sm.note))
    if np.isfinite(sm.max_error):
        _check(
            sm.max_error <= SHIFT_TOL,
            t("positional.shift_check", err=sm.max_error, n=sm.n_positions, k=int(k), tol=SHIFT_TOL),
        )


# ------------------------------------------------------------------ learned
def learned_section(loaded) -> None:
    try:
        with st.spinner(t("positional.working")):
            an = _learned(loaded, loaded.spec)
    except UnsupportedModelError as err:
        f = loaded.facts
        if f.positional == "rope":  # the usual case, in the reader's language
            st.info(
                t_text("positional.learned_is_rope", model=f.model_id, theta=f"{f.rope_theta:g}"),
                icon=":material/info:",
            )
        else:
            st.info(md_escape(err), icon=":material/info:")
        return
    n, h = an.positions.matrix.shape
    st.markdown(t_text("positional.learned_intro", model=an.positions.model_id, n=n, h=h, module=an.positions.module))
    meta = {"model": loaded.spec, "module": an.positions.module}
    L = fig_labels()
    _side_by_side(
        viz.heatmap(an.similarity, L("learned_similarity_title", n=n), L("position_q"), L("position_p"), labels=L),
        r"\mathrm{sim}(p,q)=\frac{P_p\cdot P_q}{\lVert P_p\rVert\,\lVert P_q\rVert}",
        t("positional.learned_sim_note"),
        "learned_sim",
        viz.matrix_frame(an.similarity, "position", "pos"),
        meta,
    )

    c = st.columns(2)
    dims = c[0].radio(t("positional.pca_dims"), (2, 3), horizontal=True, key="pos_pca_dims")
    limit = c[1].slider(t("positional.pca_limit"), 2, n, n, key="pos_pca_limit", help=t("positional.pca_limit_help"))
    pca_df = pd.DataFrame(an.pca, columns=[f"pc{i + 1}" for i in range(an.pca.shape[1])])
    pca_df.insert(0, "position", np.arange(n))
    _side_by_side(
        viz.pca_trajectory(an, int(dims), int(limit), labels=fig_labels()),
        r"P - \bar P = U \Sigma V^\top,\ \ z_p = U_p\Sigma",
        t(
            "positional.pca_note",
            ev=float(an.explained[: int(dims)].sum()),
            turn=an.pc_turn_deg,
            period=360 / max(an.pc_turn_deg, 1e-9),
            ratio=an.neighbour_ratio,
        ),
        "learned_pca",
        pca_df,
        meta,
    )

    spec_df = pd.DataFrame(
        {"frequency": an.freq, "power_learned": an.power_learned, "power_sinusoidal": an.power_sinusoidal}
    )
    _side_by_side(
        viz.spectrum(an, labels=fig_labels()),
        r"\hat P_d(f)=\sum_{p} (P_{p,d}-\bar P_d)\,e^{-2\pi i f p}",
        t(
            "positional.fft_note",
            learned=an.low_frequency_share("learned"),
            sin=an.low_frequency_share("sinusoidal"),
            period=360 / max(an.pc_turn_deg, 1e-9),
        ),
        "learned_fft",
        spec_df,
        meta,
    )
    fig = viz.dominant_histogram(an, labels=fig_labels())
    plot(fig, key="pos_dominant_fig", export_name=_name("learned_dominant", meta))
    _exports(
        "learned_dominant",
        fig,
        pd.DataFrame(
            {
                "dimension": np.arange(h),
                "dominant_learned": an.dominant_learned,
                "dominant_sinusoidal": an.dominant_sinusoidal,
            }
        ),
        meta,
    )


# ------------------------------------------------------------------ RoPE
REL_PAIRS, REL_SHIFTS = [(5, 2), (40, 10), (100, 99), (7, 30)], [0, 1, 50, 1000]


def _rope_bases(loaded, types) -> None:
    """Models with one RoPE base per layer type (Gemma 3): both bases side by side, each with its relative check."""
    st.subheader(t("positional.bases_header"))
    q, k = pos_model.real_qk_pair(loaded)
    rows = []
    for lt in types:
        cfg = pos_model.rope_config(loaded, lt)
        check = encodings.rope_relative_check(q, k, cfg.inv_freq, REL_PAIRS, REL_SHIFTS)
        window = loaded.facts.sliding_window if lt == "sliding_attention" else None
        rows.append(
            {
                t("positional.col_layer_type"): t(f"positional.lt_{lt}"),
                t("positional.col_layers"): ", ".join(map(str, cfg.layers)),
                t("positional.col_base"): f"{cfg.theta:g}",
                t("positional.col_window"): str(window) if window else t("positional.window_all"),
                t("positional.col_longest"): f"{2 * np.pi * cfg.theta:,.0f}",
                t("positional.col_relative"): f"{check.max_error:.2e}",
                "ok": check.max_error <= RELATIVE_TOL,
            }
        )
    table = pd.DataFrame(rows)
    st.dataframe(table.drop(columns="ok"), hide_index=True)
    st.markdown(t("positional.bases_note"))
    _check(bool(table["ok"].all()), t("positional.bases_check", tol=RELATIVE_TOL))
    export_buttons(
        "rope_bases",
        data=table.drop(columns="ok"),
        stem=_name("rope_bases", {"model": loaded.spec}),
        meta={"model": loaded.spec},
    )


def rope_section(loaded) -> None:
    layer_type = None
    types = pos_model.rope_layer_types(loaded)
    if len(types) > 1:
        _rope_bases(loaded, types)
        layer_type = st.radio(
            t("positional.rope_layer_type"),
            types,
            horizontal=True,
            key="pos_rope_lt",
            format_func=lambda lt: t(f"positional.lt_{lt}"),
        )
    try:
        cfg = pos_model.rope_config(loaded, layer_type)
    except UnsupportedModelError as err:
        cfg = None
        if loaded.facts.rope_theta is None:  # no rotary module: say it in the reader's language
            st.info(
                t_text(
                    "positional.not_rotary",
                    model=loaded.facts.model_id,
                    scheme=t(f"app.pos_{loaded.facts.positional}"),
                    scheme_id=loaded.facts.positional,
                ),
                icon=":material/info:",
            )
        else:
            st.info(md_escape(err), icon=":material/info:")
    c = st.columns(3)
    head_dim = c[0].number_input(
        t("positional.head_dim"),
        2,
        512,
        cfg.head_dim if cfg else 64,
        step=2,
        key="pos_head_dim",
        disabled=cfg is not None,
        help=t("positional.head_dim_help"),
    )
    theta = c[1].number_input(
        t("positional.theta"),
        1.0,
        1e8,
        cfg.theta if cfg else 10000.0,
        format="%g",
        key="pos_theta" if layer_type is None else f"pos_theta_{layer_type}",
        disabled=cfg is not None,
    )
    n_pos = c[2].number_input(
        t("positional.rope_positions"),
        2,
        encodings.MAX_ROPE_POSITIONS,
        256,
        key="pos_rope_n",
        help=t("positional.rope_positions_help"),
    )
    try:
        inv_freq = encodings.rope_inv_freq(int(head_dim), float(theta))
    except LlmvizError as err:
        show_error(err)
        return
    positions = np.arange(int(n_pos))
    meta = {"model": loaded.spec, "head_dim": int(head_dim), "theta": float(theta)}
    if cfg is not None:
        st.markdown(
            t_text(
                "positional.rope_from_model",
                model=cfg.model_id,
                module=cfg.module,
                hd=cfg.head_dim,
                theta=cfg.theta,
                kind=cfg.rope_type,
            )
        )
        freq_err = float(np.abs(inv_freq - cfg.model_inv_freq).max())
        if cfg.rope_type != "default" or freq_err > 1e-6:  # scaled variants (llama3, yarn...) change the formula
            st.info(t("positional.rope_scaled", kind=cfg.rope_type, freq=freq_err))
            inv_freq = cfg.model_inv_freq
        cos_m, sin_m = pos_model.model_rope_cos_sin(loaded, positions, cfg.layer_type)
        scale = cfg.attention_scaling
        cos_e, sin_e = encodings.rope_cos_sin(positions, inv_freq)
        cos_32, sin_32 = encodings.rope_cos_sin(positions, cfg.model_inv_freq, float32=True)
        exact = float(max(np.abs(scale * cos_e - cos_m).max(), np.abs(scale * sin_e - sin_m).max()))
        f32 = float(max(np.abs(scale * cos_32 - cos_m).max(), np.abs(scale * sin_32 - sin_m).max()))
        _check(f32 < 1e-6, t("positional.rope_match", freq=freq_err, exact=exact, f32=f32, n=int(n_pos) - 1))
    angles = encodings.rope_angles(positions, inv_freq)
    ang_df = viz.matrix_frame(angles, "position", "pair")
    _side_by_side(
        viz.rope_angle_heatmap(angles, labels=fig_labels()),
        r"\theta_j=%s^{-2j/d},\quad \text{angle}(m,j)=m\,\theta_j" % f"{theta:g}",
        t("positional.rope_angle_note", pairs=int(head_dim) // 2),
        "rope_angles",
        ang_df,
        meta,
    )
    pairs = sorted({0, 1, int(head_dim) // 8, int(head_dim) // 4, int(head_dim) // 2 - 1})
    fig = viz.rope_angle_lines(positions[1:], angles[1:], pairs, labels=fig_labels())
    plot(fig, key="pos_rope_lines_fig", export_name=_name("rope_lines", meta))
    _exports("rope_lines", fig, ang_df[["position"] + [f"pair{j}" for j in pairs]], meta)

    st.subheader(t("positional.rotation_header"))
    if cfg is not None and pos_model.real_qk_available(loaded):
        q, k = pos_model.real_qk_pair(loaded)
        st.caption(t("positional.real_qk"))
    else:
        rng = np.random.default_rng(0)
        q, k = rng.standard_normal(int(head_dim)), rng.standard_normal(int(head_dim))
        st.caption(t("positional.random_qk"))
    c = st.columns(2)
    with c[0]:
        pair = _index(t("positional.pair"), int(head_dim) // 2 - 1, "pos_pair")
    steps = c[1].slider(t("positional.steps"), 1, 16, 6, key="pos_steps")
    half = int(head_dim) // 2
    pts = encodings.rotating_vector(np.array([q[pair], q[pair + half]]), list(range(steps)), float(inv_freq[pair]))
    rot_df = pd.DataFrame({"position": range(steps), "x": pts[:, 0], "y": pts[:, 1]})
    _side_by_side(
        viz.rope_rotation(pts, list(range(steps)), int(pair), labels=fig_labels()),
        r"\begin{pmatrix}q'_j\\ q'_{j+d/2}\end{pmatrix}=\begin{pmatrix}\cos m\theta_j & -\sin m\theta_j\\"
        r" \sin m\theta_j & \cos m\theta_j\end{pmatrix}\begin{pmatrix}q_j\\ q_{j+d/2}\end{pmatrix}",
        t("positional.rotation_note", deg=float(np.degrees(inv_freq[pair]))),
        "rope_rotation",
        rot_df,
        meta,
    )

    st.subheader(t("positional.relative_header"))
    st.latex(r"(R_m q)^\top (R_n k) = q^\top R_{n-m}\, k")
    check = encodings.rope_relative_check(q, k, inv_freq, REL_PAIRS, REL_SHIFTS)
    rel = pd.DataFrame(check.scores, columns=[f"(m={m}, n={n})" for m, n in check.pairs])
    rel.insert(0, "shift s", check.shifts)
    st.dataframe(rel, hide_index=True)
    _check(check.max_error <= RELATIVE_TOL, t("positional.relative_check", err=check.max_error, tol=RELATIVE_TOL))
    export_buttons("rope_relative", data=rel, stem=_name("rope_relative", meta), meta=meta)

    st.subheader(t("positional.decay_header"))
    max_d = st.slider(t("positional.decay_max"), 16, encodings.MAX_ROPE_POSITIONS, 1024, key="pos_decay_max")
    decay = encodings.rope_decay(inv_freq, int(max_d), step=max(1, int(max_d) // 2000))
    _side_by_side(
        viz.rope_decay_figure(decay, labels=fig_labels()),
        r"\begin{aligned}|q^\top R_{n-m}k| &\le \max_j|h_j - h_{j+1}| \cdot \tfrac{1}{d/2}\sum_{j}|S_j|\\"
        r"S_j&=\textstyle\sum_{i<j} e^{i(m-n)\theta_i}\end{aligned}",
        t("positional.decay_note"),
        "rope_decay",
        pd.DataFrame({"distance": decay.distances, "bound": decay.bound, "ones_score": decay.ones_score}),
        meta,
    )


# ------------------------------------------------------------------ ablation
def ablation_section(loaded) -> None:
    f = loaded.facts
    rope = f.positional == "rope"
    text = st.text_input(
        t("positional.ablation_text"),
        DEFAULT_TEXT,
        key="pos_abl_text",
        help=t("positional.ablation_text_help", n=pos_ablation.MAX_ABLATION_TOKENS),
    )
    seed, mode = 0, "zero"
    if not presenter_mode():
        c = st.columns(2)
        seed = int(c[0].number_input(t("positional.seed"), 0, 10_000, 0, key="pos_seed"))
        if not rope:
            mode = c[1].radio(
                t("positional.mode"),
                tuple(pos_ablation.ENCODER_MODES),
                horizontal=True,
                key="pos_mode",
                format_func=lambda m: t(f"positional.ablation_mode_{m}"),
            )
    try:
        with st.spinner(t("positional.working")):
            if rope:
                res = _rope_ablation(loaded, loaded.spec, text, seed)
            else:
                res = _encoder_ablation(loaded, loaded.spec, text, seed, mode)
    except UnsupportedModelError as err:
        st.info(md_escape(err), icon=":material/info:")
        return
    except LlmvizError as err:
        show_error(err)
        return
    sh = res.shuffle
    if sh.truncated:
        st.warning(t("positional.truncated", n=pos_ablation.MAX_ABLATION_TOKENS))
    st.caption(t("positional.shuffled"))
    st.code(sh.text_b, language=None, wrap_lines=True)  # shown literally: no markdown or HTML
    with st.expander(t("positional.tokens")):
        st.dataframe(
            pd.DataFrame({"original": sh.tokens_a, "shuffled": sh.tokens_b, "came from position": sh.order}),
            hide_index=True,
        )
    meta = {"model": loaded.spec, "text": text, "shuffled": sh.text_b, "seed": seed}
    if rope:
        _rope_ablation_view(loaded, res, meta)
    else:
        _encoder_ablation_view(res, {**meta, "mode": mode})


def _encoder_ablation_view(res: pos_ablation.EncoderAblation, meta) -> None:
    c = st.columns(2)
    c[0].metric(t("positional.cos_with"), f"{res.cos_with:.4f}")
    c[1].metric(t("positional.cos_without"), f"{res.cos_without:.6f}")
    _check(
        res.cos_with < 0.99 and res.cos_without > 0.999, t("positional.bag_check", w=res.cos_with, wo=res.cos_without)
    )
    _side_by_side(
        viz.layer_cosine(res, labels=fig_labels()),
        r"e=\tfrac1T\sum_{t} h_t,\quad \cos(e_{\text{orig}}, e_{\text{shuf}})",
        t("positional.encoder_note"),
        "ablation_layers",
        viz.encoder_frame(res),
        meta,
    )
    att = res.attention["with_a"]
    c = st.columns(2)
    with c[0]:
        layer = _index(t("positional.layer"), att.shape[0] - 1, "pos_abl_layer")
    with c[1]:
        head = _index(t("positional.head"), att.shape[1] - 1, "pos_abl_head")
    fig = viz.attention_pair(res, int(layer), int(head), labels=fig_labels())
    name = _name("ablation_att", {**meta, "layer": int(layer), "head": int(head)})
    plot(fig, key="pos_abl_att_fig", export_name=name)
    st.latex(r"\text{without positions:}\quad A(\Pi X) = \Pi\, A(X)\, \Pi^\top")
    st.markdown(t("positional.attention_note", w=res.attn_diff_with, wo=res.attn_diff_without))
    rows = [
        {
            "run": viz.RUN_LABELS[r],
            "tokens": " ".join(res.shuffle.tokens_a if r.endswith("a") else res.shuffle.tokens_b),
        }
        for r in pos_ablation.RUNS
    ]
    export_buttons(
        "ablation_att",
        fig=fig,
        data=pd.DataFrame(rows),
        stem=name,
        meta={**meta, "layer": int(layer), "head": int(head)},
    )


def _rope_ablation_view(loaded, res: pos_ablation.CausalAblation, meta) -> None:
    c = st.columns(3)
    c[0].metric(t("positional.kl_off"), f"{res.kl_rope_off:.3f} bits")
    c[1].metric(t("positional.js_with"), f"{res.js_with:.3f} bits")
    c[2].metric(t("positional.js_without"), f"{res.js_without:.3f} bits")
    fig = viz.next_token_bars(res, loaded.tokenizer, labels=fig_labels())
    table = pd.DataFrame(res.top_table(loaded.tokenizer, 6))
    _side_by_side(
        fig,
        r"\cos(m\theta_j)=1,\ \sin(m\theta_j)=0\ \Rightarrow\ R_m = I",
        t("positional.rope_ablation_note"),
        "ablation_next",
        table,
        meta,
    )
    _check(
        res.layer1_diff_without < 1e-3 < res.layer1_diff_with,
        t("positional.layer1_check", wo=res.layer1_diff_without, w=res.layer1_diff_with),
    )
