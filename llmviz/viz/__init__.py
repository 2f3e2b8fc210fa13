"""Figure builders: plotly figures and self-contained HTML views (no streamlit)."""
