"""Shared page helpers: cached model loading, the sidebar picker, errors and exports."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from llmviz import serving
from llmviz.errors import LlmvizError
from llmviz.limits import MAX_PATH_CHARS
from llmviz.models.loading import (
    DEVICES,
    PROBES_BY_KIND,
    REGISTRY,
    SEQ2SEQ,
    LoadedModel,
    available_models,
    load_model,
    prepare_cache,
    slow_first_load,
)
from llmviz.precision import EXACT, GENERATION_MODES, bf16_facts, int8_facts
from llmviz.precision import MODES as PRECISION_MODES
from llmviz.report import csv_export, html_export, json_export, safe_stem
from ui.i18n import t
from ui.links import apply_presentation, fit_figure, high_contrast, presenter_mode
from ui.registry import MODEL_KEY
from ui.text import md_escape, show_error, show_info, show_notice, t_text  # noqa: F401  (the one text path)

LOCAL_FOLDER = "Local folder or GGUF file…"
HUB_ID = "Hub id…"
DEFAULT_MODEL = "minilm"
QP_MODEL_SEEN = "llmviz_qp_model_seen"  # the last ?model= this session applied
DEVICE_KEY = "llmviz_device"


# "local" (bundled, session or folder: never the hub; what a URL names) | "path" (sidebar folder box) |
# "hub" (the user chose "Hub id…" and pressed Load: the one way the app reaches the hub) | "hub-cache" (that
# hub model on later runs: the local Hugging Face cache only, no connection). llmviz.models.loading.load_model.
SOURCE_KEY = "llmviz_model_source"
OWNER_KEY = "llmviz_session_owner"  # random id: the models this session trained or added belong to it


# At most this many models stay loaded in the server (three float32 models are ~1.7 GB): LLMVIZ_MAX_MODELS.
MAX_CACHED_MODELS = max(1, int(os.environ.get("LLMVIZ_MAX_MODELS", "2") or 2))


@st.cache_resource(show_spinner=False, max_entries=MAX_CACHED_MODELS)
def _load_shared(spec: str, device: str, source: str, owner: str | None, _network: bool = True) -> LoadedModel:
    if source == "hub" and not _network:
        source = "hub-cache"
    return load_model(spec, device=device, source=source, owner=owner)


def session_owner() -> str:
    """This browser session's owner id (llmviz.models.loading registers trained models under it)."""
    if OWNER_KEY not in st.session_state:
        import uuid

        st.session_state[OWNER_KEY] = uuid.uuid4().hex
    return st.session_state[OWNER_KEY]


def session_models() -> dict:
    """The models this session may list: bundled, shared on purpose, and its own."""
    return available_models(session_owner())


def load_cached(spec: str, device: str = "cpu", source: str | None = None) -> LoadedModel:
    """One shared copy per (spec, device) for all sessions; a session's own models are keyed by its
    owner id, so no other session can load them from the cache."""

    entry = REGISTRY.get(spec)
    owner = session_owner() if entry is not None and entry.owner is not None else None
    if source is None:
        source = st.session_state.get(SOURCE_KEY, "local") if spec == st.session_state.get(MODEL_KEY) else "local"
    if source in ("hub", "hub-cache"):  # one cached copy whichever: a rerun finds it without a new download
        return _load_shared(spec, device, "hub", owner, _network=source == "hub")
    return _load_shared(spec, device, source, owner)


def _load_with_status(spec: str, device: str) -> LoadedModel | None:
    try:
        slow = spec in session_models() and slow_first_load(spec)
    except LlmvizError:
        slow = False
    label = t_text("app.loading", spec=spec) + (t("app.loading_slow") if slow else "")
    with st.sidebar.status(label, expanded=slow) as status:

        def progress(stage: str) -> None:  # cold GGUF load: concatenate, verify, dequantise, tokenizer...
            status.update(label=t_text("app.loading", spec=spec) + " " + t(f"app.stage_{stage}"))
            status.write(t(f"app.stage_{stage}"))

        try:
            if slow:  # the slow stages run outside the cached loader, so each can be shown as it starts
                prepare_cache(spec, progress)
                progress("load")
            loaded = load_cached(spec, device)
        except LlmvizError as err:
            status.update(label=t_text("app.load_failed", spec=spec), state="error")
            show_error(err, st.sidebar)
            return None
        status.update(label=t_text("app.loaded", spec=spec), state="complete")
    return loaded


PICKER_MODE = "llmviz_picker_mode"  # LOCAL_FOLDER / HUB_ID while the user types a path or hub id
PREV_MODEL_KEY = "llmviz_prev_model"  # the model a "switch to a model that can" button replaced
SOURCE_TO_OPTION = {"path": LOCAL_FOLDER, "hub": HUB_ID, "hub-cache": HUB_ID}


def _model_from_url(models) -> None:
    """One rule for the model: ``?model=`` in the URL wins over the session (a link or a reload asks
    for it); a URL without it (sidebar navigation) keeps the session's model and gets it back, so
    the URL always names the loaded bundled model and a reload keeps it."""
    qp_model = st.query_params.get("model")
    if qp_model and qp_model != st.session_state.get(MODEL_KEY):
        st.session_state[MODEL_KEY] = qp_model
        st.session_state[SOURCE_KEY] = "local"
        st.session_state.pop(PICKER_MODE, None)
    if MODEL_KEY not in st.session_state:
        st.session_state[MODEL_KEY] = DEFAULT_MODEL
        st.session_state[SOURCE_KEY] = "local"
    current = st.session_state[MODEL_KEY]
    if current in models and qp_model != current:
        st.query_params["model"] = current


def switch_model(spec: str, remember: bool = True) -> None:
    """Callback: load the bundled model ``spec`` (URL and picker follow); ``remember`` keeps the
    previous one for the sidebar's way back."""
    old = st.session_state.get(MODEL_KEY)
    st.session_state[MODEL_KEY] = spec
    st.session_state[SOURCE_KEY] = "local"
    st.session_state.pop(PICKER_MODE, None)
    st.query_params["model"] = spec
    if remember and old and old != spec:
        st.session_state[PREV_MODEL_KEY] = old
    else:
        st.session_state.pop(PREV_MODEL_KEY, None)


def _on_pick() -> None:
    choice = st.session_state.get("picker_choice")
    if choice in session_models():
        switch_model(choice, remember=False)
    else:
        st.session_state[PICKER_MODE] = choice


def path_box_problem(typed: str, empty_key: str) -> str | None:
    """The message for what a path box holds when it cannot be used (empty: the catalogue's ``empty_key``;
    longer than MAX_PATH_CHARS: its length, never the path itself), else None."""
    text = (typed or "").strip()
    if not text:
        return t(empty_key)
    if len(text) > MAX_PATH_CHARS:
        return t("app.path_too_long", n=f"{len(text):,}", limit=f"{MAX_PATH_CHARS:,}")
    return None


def model_picker() -> None:
    """Sidebar picker shared by every page; the choice lives in session state."""

    serving.set_server_address(st.get_option("server.address"))  # shared mode on a non-loopback address
    models = session_models()
    _model_from_url(models)
    hub = [] if serving.is_shared() else [HUB_ID]  # a shared server never reaches the hub
    options = list(models) + ([LOCAL_FOLDER] if serving.paths_allowed("model") else []) + hub
    current = st.session_state[MODEL_KEY]
    # The picker always shows the loaded model (set before the widget is drawn, every run).
    shown = st.session_state.get(PICKER_MODE) or (
        current if current in models else SOURCE_TO_OPTION.get(st.session_state.get(SOURCE_KEY), LOCAL_FOLDER)
    )
    st.session_state["picker_choice"] = shown if shown in options else options[0]
    sb = st.sidebar
    sb.markdown(f"### {t('app.model_heading')}")
    option_names = {LOCAL_FOLDER: t("app.opt_local"), HUB_ID: t("app.opt_hub")}
    choice = sb.selectbox(
        t("app.model_label"),
        options,
        key="picker_choice",
        on_change=_on_pick,
        format_func=lambda k: f"{k} — {models[k].title}" if k in models else option_names.get(k, k),
        help=t("app.model_help"),
    )
    device = sb.selectbox(t("app.device_label"), DEVICES, key=DEVICE_KEY, help=t("app.device_help"))
    if choice in models:
        st.session_state[MODEL_KEY] = choice
        st.session_state[SOURCE_KEY] = "local"
    else:
        placeholder = "/path/to/model-folder" if choice == LOCAL_FOLDER else "bert-base-uncased"
        default = current if current not in models else ""
        typed = sb.text_input(
            t("app.folder_path") if choice == LOCAL_FOLDER else t("app.hub_id"),
            value=default,
            placeholder=placeholder,
            key=f"picker_text_{choice == LOCAL_FOLDER}",
            help=t("app.path_help", n=f"{MAX_PATH_CHARS:,}"),
        )
        load = sb.button(t("app.load"), key="picker_load")
        problem = path_box_problem(typed, "app.path_empty" if choice == LOCAL_FOLDER else "app.hub_empty")
        if load and problem:  # empty or too long: say so (the model stays as it was)
            sb.error(problem, icon=":material/error:")
        elif load:
            st.session_state[MODEL_KEY] = typed.strip()
            st.session_state[SOURCE_KEY] = "path" if choice == LOCAL_FOLDER else "hub"
            if "model" in st.query_params:  # a folder or hub id is not put in shared links
                del st.query_params["model"]
    spec = st.session_state[MODEL_KEY]
    if spec not in models and choice in models:
        spec = choice
    if spec:
        loaded = _load_with_status(spec, device)
        st.session_state["llmviz_loaded_ok"] = loaded is not None
        if loaded is not None and st.session_state.get(SOURCE_KEY) == "hub":
            st.session_state[SOURCE_KEY] = "hub-cache"  # loaded: later runs never contact the hub again
        if loaded is not None:
            f = loaded.facts
            sb.caption(
                t_text(
                    "app.model_caption",
                    model=f.model_id,
                    kind=t(f"home.kind_{f.kind}"),
                    layers=f.n_layers,
                    heads=f.n_heads,
                    positional=t(f"app.pos_{f.positional}"),
                    params=f"{f.n_params / 1e6:.0f}",
                )
            )

    prev = st.session_state.get(PREV_MODEL_KEY)
    if prev and prev != spec:
        sb.button(
            t("app.switch_back", model=prev),
            key="picker_back",
            icon=":material/undo:",
            on_click=switch_model,
            args=(prev, False),
        )


def capable_model(probe: str) -> str | None:
    """The first bundled model that can do ``probe`` (None when none can)."""

    for mid, entry in session_models().items():
        if entry.source == "registry" and probe in PROBES_BY_KIND.get(entry.kind_hint, ()):
            return mid
    return None


def offer_switch(probe: str, where=None) -> bool:
    """No dead ends: a one-click button that loads a bundled model able to do ``probe`` (the
    sidebar then offers the way back). False when no bundled model can."""
    alt = capable_model(probe)
    if alt is None or alt == st.session_state.get(MODEL_KEY):
        return False
    (where or st).button(
        t("app.switch_to", model=alt),
        key=f"switch_{probe}",
        type="primary",
        icon=":material/swap_horiz:",
        on_click=switch_model,
        args=(alt,),
    )
    return True


def current_model(seq2seq: bool = False) -> LoadedModel:
    """The model chosen in the sidebar; stops the page with a message when none is loaded. The training lab's
    translator (kind seq2seq) reaches only pages that pass ``seq2seq=True`` (they draw its own views); any
    other page says so and offers a bundled model."""
    spec = st.session_state.get(MODEL_KEY) or DEFAULT_MODEL
    device = st.session_state.get(DEVICE_KEY, "cpu")
    try:
        loaded = load_cached(spec, device)
    except LlmvizError as err:
        show_error(err)
        st.info(t("app.pick_model"))
        st.stop()
    if loaded.facts.kind == SEQ2SEQ and not seq2seq:
        st.info(t_text("app.needs_hf_model", model=loaded.facts.model_id))
        offer_switch("attention")
        st.stop()
    return loaded


def require_probe(loaded: LoadedModel, probe: str, what: str) -> None:
    """Stop the page with an explanation when the model cannot do ``probe``."""
    if not loaded.facts.supports(probe):
        st.info(
            t_text(
                "app.needs_other_model",
                what=what,
                model=loaded.facts.model_id,
                kind=t(f"home.kind_a_{loaded.facts.kind}"),
                notes=t(f"home.probes_{loaded.facts.kind}"),
            )
        )
        offer_switch(probe)
        st.stop()


def export_buttons(
    key: str,
    fig=None,
    data: pd.DataFrame | dict | list | None = None,
    stem: str = "llmviz",
    meta: dict[str, Any] | None = None,
) -> None:
    """Download buttons: figure as standalone offline HTML (PNG via the chart's camera icon),
    data as CSV and/or JSON, every file with its provenance (llmviz.report: model, date, versions, the
    inputs and parameters in ``meta``; the session's model is added when ``meta`` does not name one). Files
    are built only when a button is clicked (the HTML inlines ~3.5 MB of plotly.js)."""

    session_model = st.session_state.get(MODEL_KEY) if in_session() else None
    meta = {**({"model": session_model} if session_model else {}), **(meta or {})}

    stem = safe_stem(stem)  # a safe file name; callers build it from the data (llmviz.report.export_name)
    cols = st.columns(3)

    fig = fit_figure(fig)  # built in the reader's language by its builder (labels=ui.i18n.fig_labels())
    if fig is not None:
        cols[0].download_button(
            t("app.export_html"),
            lambda: html_export(fig, meta),
            f"{stem}.html",
            "text/html",
            key=f"{key}_html",
            help=t("app.export_html_help"),
        )
    if data is None:
        return
    if isinstance(data, pd.DataFrame):
        cols[1].download_button(
            t("app.export_csv"), lambda: csv_export(data, meta), f"{stem}.csv", "text/csv", key=f"{key}_csv"
        )
    cols[2].download_button(
        t("app.export_json"), lambda: json_export(data, meta), f"{stem}.json", "application/json", key=f"{key}_json"
    )


PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def plot(fig, key: str | None = None, export_name: str | None = None, **kwargs):
    """st.plotly_chart with the PNG export button configured; in presenter mode fonts grow and with
    the high-contrast option colour scales become colour-blind safe (ui.links.apply_presentation).
    ``export_name``: the PNG's file name, built from the data (llmviz.report.export_name); without it
    plotly names the PNG after the figure's title."""

    fig = fit_figure(apply_presentation(fig, presenter=presenter_mode(), contrast=high_contrast()))
    return st.plotly_chart(fig, key=key, config=plot_config(export_name), **kwargs)


def plot_config(export_name: str | None = None) -> dict:
    """The plotly config of a chart; with ``export_name`` the camera button's PNG gets that (safe) file name.
    For a chart drawn in place without :func:`plot` (e.g. a live curve redrawn in an ``st.empty`` slot)."""
    if not export_name:
        return PLOTLY_CONFIG

    png = {**PLOTLY_CONFIG["toImageButtonOptions"], "filename": safe_stem(export_name)}
    return {**PLOTLY_CONFIG, "toImageButtonOptions": png}


def precision_choice(key: str, page: str, help_key: str = "precision_help") -> str:
    """Exact or fast (bf16) arithmetic for a batched run (:mod:`llmviz.precision`), exact by default: a radio
    worded by ``page``'s catalogue (``precision``, ``precision_exact``, ``precision_bf16``, ``help_key`` with
    ``{units}``); where the CPU lacks bf16 units, ``precision_off`` says why and the run stays exact."""
    facts = bf16_facts()
    units = ", ".join(facts["units"]) or "—"
    if not facts["available"]:
        st.caption(t(f"{page}.precision_off", units=units, capability=facts["capability"]))
        return EXACT
    return st.radio(
        t(f"{page}.precision"),
        list(PRECISION_MODES),
        key=key,
        horizontal=True,
        format_func=lambda m: t(f"{page}.precision_{m}"),
        help=t(f"{page}.{help_key}", units=units),
    )


def generation_precision_choice(loaded: LoadedModel, key: str) -> str:
    """Exact or fast (int8 weights) generation (the Playground, steered generation on Intervene); where the int8
    kernel fails here, or the model is on a GPU, the choice is off with the reason."""
    facts = int8_facts()
    on_cpu = str(loaded.device) == "cpu"
    off = not (facts["available"] and on_cpu)
    mode = st.radio(
        t("playground.precision"),
        list(GENERATION_MODES),
        key=key,
        horizontal=True,
        format_func=lambda m: t(f"playground.precision_{m}"),
        help=t("playground.precision_help"),
        disabled=off,
    )
    if off:
        if not on_cpu:
            st.caption(t_text("playground.precision_off_device", device=str(loaded.device)))
        elif facts["error"]:
            st.caption(t_text("playground.precision_off_error", torch=facts["torch"], error=facts["error"]))
        else:
            st.caption(t_text("playground.precision_off_wrong", torch=facts["torch"]))
        return EXACT
    return mode


def generation_deviation_caption(gen) -> str:
    """Which mode ran and, for the fast one, how far it moved from float32."""
    mode = t(f"playground.precision_{gen.precision}")
    dev = gen.deviation
    if dev is None:
        return t("playground.deviation_none", mode=mode)
    text = t(
        "playground.deviation_run",
        mode=mode,
        pct=100 * dev.fraction,
        agree=dev.agree,
        n=dev.total,
        dlogp=dev.max_abs_dlogprob,
    )
    if dev.presets is not None and dev.presets.total:
        text += " " + t(
            "playground.deviation_presets",
            pct=100 * dev.presets.fraction,
            k=len(dev.presets.per_preset),
            n=dev.presets.n_tokens,
        )
    return text


def in_session() -> bool:
    """True inside a script run of a browser (or AppTest) session; False in bare mode (a plain import, where
    ``st.session_state`` is one dict shared by every caller)."""
    return get_script_run_ctx(suppress_warning=True) is not None


def running_under_test() -> bool:
    return os.environ.get("LLMVIZ_TESTING") == "1"
