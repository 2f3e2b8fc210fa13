"""AppTest entry for the sidebar picker alone.

AppTest 1.67 drops the entrypoint's sidebar elements on reruns when st.navigation has file
pages (the real app in a browser keeps them; tests/browser checks that), so the picker's
logic is tested here without navigation.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

from ui.common import current_model, model_picker  # noqa: E402

model_picker()
st.markdown(f"active model: {current_model().facts.model_id}")
