"""Streamlit-side helpers shared by app.py and pages (the only place besides pages that imports streamlit)."""
