"""Interventions: activation patching, direct logit attribution and steering vectors.

All three change or read the residual stream through the scoped hooks of
:mod:`llmviz.models.hooks` on the modules named by :mod:`llmviz.models.anatomy`; no hook outlives the call
that registered it.
"""
