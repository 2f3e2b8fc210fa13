"""Attention page (being built)."""
import streamlit as st

st.title("Attention")
st.info("This page is being built.")
