"""Model basics shared by loading and the GGUF cache: kinds, facts, the loaded-model object,
the cache root, the device rule and the transformers loader (no registry here, so
``gguf_cache`` can import it without an import circle)."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmviz.errors import UnsupportedModelError
from llmviz.models.anatomy import anatomy

log = logging.getLogger(__name__)


ENCODER, MASKED_LM, CAUSAL_LM = "encoder", "masked_lm", "causal_lm"
SEQ2SEQ = "seq2seq"  # the training lab's translator (llmviz.train.seq2seq): not a Hugging Face model


KINDS = (ENCODER, MASKED_LM, CAUSAL_LM, SEQ2SEQ)


DEVICES = ("cpu", "cuda", "auto")


PROBES_BY_KIND: dict[str, tuple[str, ...]] = {
    ENCODER: ("attention", "positional", "embedding_bias", "explain_similarity"),
    MASKED_LM: (
        "attention",
        "positional",
        "embedding_bias",
        "fill_mask",
        "mlm_bias",
        "explain_masked",
        "explain_similarity",
    ),
    CAUSAL_LM: (
        "attention",
        "positional",
        "embedding_bias",
        "generate",
        "fill_mask_scoring",
        "causal_bias",
        "counterfactual",
        "explain_next_token",
        "logit_lens",
    ),
    # the translator's own views: its three attentions, the decoder's logit lens, patching a source word
    SEQ2SEQ: ("seq2seq_attention", "decoder_lens", "source_patching"),
}


PROBE_NOTES: dict[str, str] = {
    ENCODER: "Encoder without a language-model head: attention, positions, embedding "
    "association tests (WEAT/SEAT) and sentence-similarity explanations. "
    "Fill-mask and generation need a masked or causal LM.",
    MASKED_LM: "Masked language model: fill-mask, CrowS-Pairs pseudo-log-likelihood, "
    "template probes, attention and explanations of the masked token.",
    CAUSAL_LM: "Causal language model: generation with per-token probabilities, "
    "sentence log-likelihood bias probes, counterfactual generations, "
    "logit lens and next-token explanations.",
    SEQ2SEQ: "Encoder-decoder translator trained in the lab: encoder, decoder and cross-attention, the "
    "decoder's logit lens and patching a source word. Pages built for Hugging Face models need another model.",
}


@dataclass(frozen=True)
class ModelFacts:
    """What every page needs to know about a loaded model."""

    model_id: str
    source: str  # "registry" | "folder" | "hub" | "trained"
    kind: str  # one of KINDS
    architecture: str  # e.g. "BertModel", "LlamaForCausalLM"
    model_type: str  # config.model_type, e.g. "bert", "llama"
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int
    positional: str  # "learned" | "sinusoidal" | "rope" | "none"
    rope_theta: float | None
    max_positions: int
    vocab_size: int
    n_params: int
    has_chat_template: bool
    mask_token: str | None
    device: str
    dtype: str
    probes: tuple[str, ...] = field(default_factory=tuple)
    probe_notes: str = ""
    # Gemma-3-style details (defaults describe a plain model: every layer global, one RoPE base)
    layer_types: tuple[str, ...] = ()  # per layer "sliding_attention" | "full_attention"; () = all full
    sliding_window: int | None = None  # tokens a sliding-window layer's query sees (itself included)
    rope_theta_local: float | None = None  # RoPE base of the sliding-window layers (rope_theta: the global ones)
    query_pre_attn_scalar: float | None = None  # scores scaled by query_pre_attn_scalar^-1/2 instead of d_k^-1/2
    qk_norm: bool = False  # RMSNorm on every query and key head vector before RoPE
    embed_scale: float | None = None  # token embeddings multiplied by this (Gemma: sqrt(hidden_size))
    license: str = ""

    def supports(self, probe: str) -> bool:
        return probe in self.probes

    def is_sliding(self, layer: int) -> bool:
        return bool(self.layer_types) and self.layer_types[int(layer)] == "sliding_attention"

    def layer_window(self, layer: int) -> int | None:
        """Attention window of ``layer`` in tokens, None for a global (full) layer."""
        return self.sliding_window if self.is_sliding(layer) else None

    def layer_rope_theta(self, layer: int) -> float | None:
        return self.rope_theta_local if self.is_sliding(layer) and self.rope_theta_local else self.rope_theta

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    """A model ready for inspection: eval mode, eager attention, float32."""

    spec: str
    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers tokenizer
    facts: ModelFacts

    @property
    def device(self):
        return next(self.model.parameters()).device


def cache_dir() -> Path:
    """Root of llmviz's on-disk cache (``LLMVIZ_CACHE``, default ``~/.cache/llmviz``)."""
    return Path(os.environ.get("LLMVIZ_CACHE", Path.home() / ".cache" / "llmviz")).expanduser()


def resolve_device(device: str = "cpu") -> tuple[str, dict[str, Any]]:
    """The one place that picks a device. Returns (device label, from_pretrained kwargs)."""
    import torch

    if device not in DEVICES:
        raise UnsupportedModelError(f"Unknown device '{device}'. Choose one of {', '.join(DEVICES)}.")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UnsupportedModelError("CUDA was requested but no GPU is visible; choose 'cpu'.")
        return "cuda", {}
    if device == "auto" and torch.cuda.is_available():
        return "auto", {"device_map": "auto"}  # accelerate spreads layers over all GPUs
    return "cpu", {}


def kind_from_architecture(arch: str) -> str:
    if arch.endswith("ForMaskedLM") or arch.endswith("ForPreTraining"):
        return MASKED_LM
    if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
        return CAUSAL_LM
    if arch.endswith("Model"):
        return ENCODER
    raise UnsupportedModelError(
        f"Architecture '{arch}' is not supported. llmviz inspects base encoders (*Model), "
        "masked LMs (*ForMaskedLM) and causal LMs (*ForCausalLM)."
    )


def _auto_class(kind: str):
    import transformers as tf

    return {ENCODER: tf.AutoModel, MASKED_LM: tf.AutoModelForMaskedLM, CAUSAL_LM: tf.AutoModelForCausalLM}[kind]


def _from_pretrained(kind: str, where: str, device: str, **extra):
    import torch

    label, dev_kwargs = resolve_device(device)
    model = _auto_class(kind).from_pretrained(
        where,
        attn_implementation="eager",
        dtype=torch.float32,
        trust_remote_code=False,
        use_safetensors=True,
        **dev_kwargs,
        **extra,
    )
    if label == "cuda":
        model = model.to("cuda")
    model.eval()
    return model, label


def model_facts(model, tokenizer, model_id: str, source: str, kind: str, device: str) -> ModelFacts:
    """Read the facts from a loaded model's config (works for any HF architecture)."""
    cfg = model.config
    n_layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    anat = anatomy(model)
    n_heads, n_kv, hidden, head_dim = anat.n_heads, anat.n_kv_heads, anat.hidden_size, anat.head_dim
    rope_params = getattr(cfg, "rope_parameters", None) or {}
    rope_theta_local = None
    if isinstance(rope_params, dict) and isinstance(rope_params.get("full_attention"), dict):
        # one RoPE per layer type (Gemma 3): global layers' base is "the" theta, local layers' kept apart
        rope_theta = rope_params["full_attention"].get("rope_theta")
        rope_theta_local = (rope_params.get("sliding_attention") or {}).get("rope_theta")
    else:
        rope_theta = rope_params.get("rope_theta") if isinstance(rope_params, dict) else None
    rope_theta = rope_theta or getattr(cfg, "rope_theta", None)
    layer_types = tuple(getattr(cfg, "layer_types", None) or ())
    sliding = getattr(cfg, "sliding_window", None) if "sliding_attention" in layer_types else None
    embed_scale = getattr(anat.embed, "scalar_embed_scale", None)
    qpas = getattr(cfg, "query_pre_attn_scalar", None)
    positional = getattr(cfg, "llmviz_positional", None)  # set by the training lab
    if positional is None:
        if rope_theta is not None:
            positional = "rope"
        elif getattr(cfg, "position_embedding_type", "absolute") == "absolute" or getattr(cfg, "n_positions", None):
            positional = "learned"
        else:
            positional = str(cfg.position_embedding_type)
    max_pos = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 0)
    first = next(model.parameters())
    return ModelFacts(
        model_id=model_id,
        source=source,
        kind=kind,
        architecture=(cfg.architectures or [type(model).__name__])[0] if kind != ENCODER else type(model).__name__,
        model_type=cfg.model_type,
        n_layers=int(n_layers),
        n_heads=int(n_heads),
        n_kv_heads=int(n_kv),
        head_dim=int(head_dim),
        hidden_size=int(hidden),
        positional=positional,
        rope_theta=float(rope_theta) if rope_theta is not None else None,
        max_positions=int(max_pos),
        vocab_size=int(cfg.vocab_size),
        n_params=sum(p.numel() for p in model.parameters()),
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        mask_token=getattr(tokenizer, "mask_token", None) if kind == MASKED_LM else None,
        device=device,
        dtype=str(first.dtype).replace("torch.", ""),
        probes=PROBES_BY_KIND[kind],
        probe_notes=PROBE_NOTES[kind],
        layer_types=layer_types if "sliding_attention" in layer_types else (),
        sliding_window=int(sliding) if sliding else None,
        rope_theta_local=float(rope_theta_local) if rope_theta_local is not None else None,
        query_pre_attn_scalar=float(qpas) if qpas is not None else None,
        qk_norm=anat.qk_norm,
        embed_scale=float(embed_scale) if embed_scale is not None and float(embed_scale) != 1.0 else None,
    )
