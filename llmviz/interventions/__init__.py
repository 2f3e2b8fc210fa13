"""Interventions: activation patching, direct logit attribution and steering vectors.

All three change or read the residual stream through the scoped hooks of
:mod:`llmviz.explain.hooks`; no hook outlives the call that registered it.
"""
