"""Home: what llmviz is and the facts of the loaded model."""
import streamlit as st

from ui.common import current_model

st.title("llmviz")
st.markdown(
    "Run small language models, **see** how they work — attention heads, positional-encoding "
    "waves, the attention formula step by step — and **probe** what they output for bias and "
    "explanations. Everything runs offline on this machine.")

loaded = current_model()
f = loaded.facts
st.subheader(f"Loaded model: {f.model_id}")
c = st.columns(4)
c[0].metric("Kind", f.kind.replace("_", " "))
c[1].metric("Layers × heads", f"{f.n_layers} × {f.n_heads}")
c[2].metric("KV heads", f.n_kv_heads, help="Fewer KV heads than query heads means grouped-query attention (GQA).")
c[3].metric("Parameters", f"{f.n_params / 1e6:.1f} M")
c = st.columns(4)
c[0].metric("Positions", f.positional + (f" (θ={f.rope_theta:g})" if f.rope_theta else ""))
c[1].metric("Max positions", f.max_positions)
c[2].metric("Hidden size / head dim", f"{f.hidden_size} / {f.head_dim}")
c[3].metric("Vocabulary", f"{f.vocab_size:,}")
st.info(f.probe_notes)
with st.expander("All model facts"):
    st.json(f.as_dict())
