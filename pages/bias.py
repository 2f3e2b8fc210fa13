"""Bias page (being built)."""
import streamlit as st

st.title("Bias")
st.info("This page is being built.")
