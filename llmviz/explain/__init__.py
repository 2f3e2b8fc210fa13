"""Explanations of one prediction.

- :mod:`~llmviz.explain.targets`: what is explained (next token, masked token, sentence similarity,
  contrastive logit(A) − logit(B)) as a :class:`~llmviz.explain.targets.Problem`.
- :mod:`~llmviz.explain.attribution`: the method registry ``METHODS`` (gradient × input, integrated
  gradients with its completeness gap, occlusion, attention rollout, last-layer attention) and ``attribute``.
- :mod:`~llmviz.explain.logit_lens`: the residual stream after each layer through the final norm and unembedding.
- :mod:`~llmviz.explain.ablation`: zero each head (batched) and measure the change in the target.
- module lookup and scoped, thread-local hooks live in :mod:`llmviz.models.anatomy` and :mod:`llmviz.models.hooks`.
"""
