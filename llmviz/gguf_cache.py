"""GGUF loading with a safetensors cache.

Dequantizing a GGUF file takes ~20-30 s on a laptop CPU. The first load writes the
float32 weights as safetensors (plus config without ``quantization_config`` and the
tokenizer) under ``cache_dir()/gguf/<sha256 prefix>/``; later loads read that folder
in about a second with identical logits.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from llmviz.errors import CorruptModelError, ModelNotFoundError
from llmviz.models import CAUSAL_LM, LoadedModel, _from_pretrained, cache_dir, model_facts

log = logging.getLogger(__name__)
_HASH_CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def gguf_cache_folder(gguf: Path) -> Path:
    return cache_dir() / "gguf" / f"{gguf.stem}-{file_sha256(gguf)[:16]}"


def is_cached(gguf: Path) -> bool:
    return (gguf_cache_folder(gguf) / "model.safetensors").is_file()


def _write_cache(model, tokenizer, target: Path) -> None:
    """Write config + tokenizer + safetensors into a temp folder, then rename atomically."""
    from safetensors.torch import save_model

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = [type(model).__name__]
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        tokenizer.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))  # handles tied embeddings
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_gguf(gguf: Path, device: str, model_id: str) -> LoadedModel:
    """Load a causal LM from a GGUF file, through the safetensors cache when present."""
    from transformers import AutoTokenizer

    if not gguf.is_file():
        raise ModelNotFoundError(f"GGUF file '{gguf}' not found.")
    folder = gguf_cache_folder(gguf)
    if not (folder / "model.safetensors").is_file():
        log.info("dequantizing %s once into %s", gguf.name, folder)
        try:
            model, _ = _from_pretrained(CAUSAL_LM, str(gguf.parent), "cpu", gguf_file=gguf.name)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except Exception as err:  # noqa: BLE001 - gguf reader raises many types
            raise CorruptModelError(f"Cannot read the GGUF file '{gguf.name}': {err}") from err
        _write_cache(model, tokenizer, folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model, label = _from_pretrained(CAUSAL_LM, str(folder), device)
    except Exception as err:  # noqa: BLE001 - a broken cache: drop it so the next load rebuilds
        shutil.rmtree(folder, ignore_errors=True)
        raise CorruptModelError(f"The cached copy of '{gguf.name}' was unreadable and has been removed; "
                                f"load again to rebuild it ({err}).") from err
    facts = model_facts(model, tokenizer, model_id, "registry", CAUSAL_LM, label)
    return LoadedModel(model_id, model, tokenizer, facts)
