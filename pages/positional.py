"""Positional encoding page (being built)."""
import streamlit as st

st.title("Positional encoding")
st.info("This page is being built.")
