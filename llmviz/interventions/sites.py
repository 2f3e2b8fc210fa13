"""Where an intervention reads or writes: the modules behind each site kind.

Site kinds (all per layer ``l``):

- ``resid``: the residual stream *entering* layer ``l`` (input of the block), per position;
- ``attn``: the attention block's output (output of its out projection, before it is added back), per position;
- ``mlp``: the MLP block's output (before it is added back), per position;
- ``head``: one attention head's output (its slice of the out projection's input), all positions.

BERT is post-norm: its ``attn`` / ``mlp`` sites are the dense outputs before the ``LayerNorm(x + ·)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmviz.errors import UnsupportedModelError
from llmviz.models.anatomy import anatomy

RESID, ATTN, MLP, HEAD = "resid", "attn", "mlp", "head"
SITE_KINDS: dict[str, str] = {
    RESID: "Residual stream entering the layer (one position)",
    ATTN: "Attention output of the layer (one position)",
    MLP: "MLP output of the layer (one position)",
    HEAD: "One attention head's output (all positions)",
}
POSITION_KINDS = (RESID, ATTN, MLP)


@dataclass(frozen=True)
class Site:
    """One place to patch: ``index`` is a position (position kinds) or a head (``head``);
    ``None`` means every position (position kinds only; used for the full-residual check)."""

    kind: str
    layer: int
    index: int | None

    def label(self) -> str:
        where = "all" if self.index is None else (f"h{self.index}" if self.kind == HEAD else f"pos {self.index}")
        return f"{self.kind} L{self.layer} {where}"


@dataclass
class Modules:
    """The hookable modules of a model, by layer."""

    layers: list
    out_proj: list
    mlp: list
    n_heads: int

    def module(self, kind: str, layer: int):
        return {RESID: self.layers, ATTN: self.out_proj, HEAD: self.out_proj, MLP: self.mlp}[kind][layer]

    @staticmethod
    def is_pre(kind: str) -> bool:
        """Resid and head sites act on a module's input (pre-hook); attn and mlp on its output."""
        return kind in (RESID, HEAD)


def modules_of(model, n_heads: int) -> Modules:
    """The blocks, W^O and MLP modules of ``model``, from its :func:`~llmviz.models.anatomy.anatomy`."""
    anat = anatomy(model)
    layers = range(anat.n_layers)
    return Modules(anat.layers, [anat.o_proj(i) for i in layers], [anat.mlp(i) for i in layers], n_heads)


def first_tensor(value) -> Any:
    """A module's input/output tensor (some blocks return tuples)."""
    return value[0] if isinstance(value, (tuple, list)) else value


def replace_first(value, tensor):
    """``value`` with its first tensor replaced (tuple outputs keep their other members)."""
    if isinstance(value, tuple):
        return (tensor, *value[1:])
    if isinstance(value, list):
        return [tensor, *value[1:]]
    return tensor


def require_positional_input(kind: str, args) -> None:
    if not args:
        raise UnsupportedModelError(
            f"This model passes the hidden states to its layers by keyword, so the '{kind}' site cannot be hooked."
        )
