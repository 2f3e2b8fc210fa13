"""llmviz entry point: page config, navigation and the shared sidebar model picker."""
import streamlit as st

from ui.common import model_picker

st.set_page_config(page_title="llmviz", page_icon="static/icon.png", layout="wide")  # local file: no CDN

# (file, title, icon, url path). Pages are added here as they land.
PAGES = [
    ("pages/home.py", "Home / Learn", ":material/school:", "home"),
    ("pages/playground.py", "Playground", ":material/play_circle:", "playground"),
    ("pages/attention.py", "Attention", ":material/visibility:", "attention"),
    ("pages/positional.py", "Positional encoding", ":material/waves:", "positional"),
    ("pages/bias.py", "Bias", ":material/balance:", "bias"),
    ("pages/explain.py", "Explain", ":material/lightbulb:", "explain"),
    ("pages/training.py", "Training lab", ":material/model_training:", "training"),
]

nav = st.navigation([st.Page(f, title=t, icon=i, url_path=u, default=(u == "home")) for f, t, i, u in PAGES])
model_picker()
nav.run()
