"""Shared page helpers: cached model loading, the sidebar picker, errors and exports."""
from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd
import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.models import DEVICES, LoadedModel, available_models, load_model

LOCAL_FOLDER = "Local folder or GGUF file…"
HUB_ID = "Hub id…"
DEFAULT_MODEL = "minilm"
MODEL_KEY = "llmviz_model_spec"  # session_state key holding the active model spec
DEVICE_KEY = "llmviz_device"


@st.cache_resource(show_spinner=False, max_entries=4)
def load_cached(spec: str, device: str = "cpu") -> LoadedModel:
    """One shared copy per (spec, device) for all sessions."""
    return load_model(spec, device=device)


def show_error(err: Exception, where=None) -> None:
    """Show an LlmvizError as a user message (never a traceback)."""
    (where or st).error(str(err), icon=":material/error:")


def _load_with_status(spec: str, device: str) -> LoadedModel | None:
    try:
        from llmviz.gguf_cache import is_cached
        entry = available_models().get(spec)
        slow = entry is not None and entry.locate().suffix == ".gguf" and not is_cached(entry.locate())
    except LlmvizError:
        slow = False
    label = f"Loading {spec}…" + (" (first time: dequantizing GGUF to a safetensors cache, ~30 s)" if slow else "")
    with st.sidebar.status(label, expanded=False) as status:
        try:
            loaded = load_cached(spec, device)
        except LlmvizError as err:
            status.update(label=f"Could not load {spec}", state="error")
            show_error(err, st.sidebar)
            return None
        status.update(label=f"Loaded {spec}", state="complete")
    return loaded


def model_picker() -> None:
    """Sidebar picker shared by every page; the choice lives in session state."""
    models = available_models()
    qp_model = st.query_params.get("model")
    if MODEL_KEY not in st.session_state:
        st.session_state[MODEL_KEY] = qp_model if qp_model else DEFAULT_MODEL
    options = list(models) + [LOCAL_FOLDER, HUB_ID]
    current = st.session_state[MODEL_KEY]
    index = options.index(current) if current in options else options.index(LOCAL_FOLDER)
    sb = st.sidebar
    sb.markdown("### Model")
    choice = sb.selectbox("Model", options, index=index, key="picker_choice",
                          format_func=lambda k: f"{k} — {models[k].title}" if k in models else k,
                          help="Bundled models run offline. A local folder needs config.json, tokenizer "
                               "files and *.safetensors weights (or give a .gguf file).")
    device = sb.selectbox("Device", DEVICES, key=DEVICE_KEY,
                          help="cpu everywhere; cuda for one GPU; auto spreads a large model over all GPUs.")
    if choice in models:
        st.session_state[MODEL_KEY] = choice
    else:
        placeholder = "/path/to/model-folder" if choice == LOCAL_FOLDER else "bert-base-uncased"
        default = current if current not in models else ""
        typed = sb.text_input("Folder path" if choice == LOCAL_FOLDER else "Hub id", value=default,
                              placeholder=placeholder, key=f"picker_text_{choice == LOCAL_FOLDER}")
        if sb.button("Load", key="picker_load"):
            st.session_state[MODEL_KEY] = typed.strip()
    spec = st.session_state[MODEL_KEY]
    if spec not in models and choice in models:
        spec = choice
    if spec:
        loaded = _load_with_status(spec, device)
        st.session_state["llmviz_loaded_ok"] = loaded is not None
        if loaded is not None:
            f = loaded.facts
            sb.caption(f"**{f.model_id}** · {f.kind.replace('_', ' ')} · {f.n_layers} layers × "
                       f"{f.n_heads} heads · {f.positional} positions · {f.n_params / 1e6:.0f}M params")


def current_model() -> LoadedModel:
    """The model chosen in the sidebar; stops the page with a message when none is loaded."""
    spec = st.session_state.get(MODEL_KEY) or DEFAULT_MODEL
    device = st.session_state.get(DEVICE_KEY, "cpu")
    try:
        return load_cached(spec, device)
    except LlmvizError as err:
        show_error(err)
        st.info("Pick a model in the sidebar to use this page.")
        st.stop()


def require_probe(loaded: LoadedModel, probe: str, what: str) -> None:
    """Stop the page with an explanation when the model cannot do ``probe``."""
    if not loaded.facts.supports(probe):
        st.info(f"{what} needs a different kind of model: **{loaded.facts.model_id}** is a "
                f"{loaded.facts.kind.replace('_', ' ')}. {loaded.facts.probe_notes}")
        st.stop()


def export_buttons(key: str, fig=None, data: pd.DataFrame | dict | list | None = None,
                   stem: str = "llmviz", meta: dict[str, Any] | None = None) -> None:
    """Download buttons: figure as standalone offline HTML (PNG via the chart's camera icon),
    data as CSV and/or JSON with provenance."""
    cols = st.columns(3)
    if fig is not None:
        html = fig.to_html(include_plotlyjs=True, full_html=True)
        cols[0].download_button("Figure (HTML)", html, f"{stem}.html", "text/html", key=f"{key}_html",
                                help="Standalone, works offline. For PNG use the camera icon on the chart.")
    if data is not None:
        if isinstance(data, pd.DataFrame):
            cols[1].download_button("Data (CSV)", data.to_csv(index=False), f"{stem}.csv", "text/csv",
                                    key=f"{key}_csv")
            payload: Any = data.to_dict(orient="records")
        else:
            payload = data
        from llmviz.report import provenance

        doc = {"provenance": provenance(meta or {}), "data": payload}
        cols[2].download_button("Data (JSON)", json.dumps(doc, indent=1, default=str), f"{stem}.json",
                                "application/json", key=f"{key}_json")


PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def plot(fig, key: str | None = None, **kwargs):
    """st.plotly_chart with the PNG export button configured."""
    return st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, **kwargs)


def running_under_test() -> bool:
    return os.environ.get("LLMVIZ_TESTING") == "1"
