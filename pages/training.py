"""Training lab page (being built)."""
import streamlit as st

st.title("Training lab")
st.info("This page is being built.")
