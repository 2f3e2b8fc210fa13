"""The training lab's translator as a session model.

A trained :class:`llmviz.train.seq2seq.Seq2Seq` is saved as ``model.safetensors`` + ``translator.json``
(its config, both vocabularies, the target language) and loaded back as a
:class:`llmviz.models.base.LoadedModel` of kind ``seq2seq``: ``model`` is the Seq2Seq, ``tokenizer`` a
:class:`TranslatorVocab`. ``llmviz.models.loading`` recognises such a folder, so the sidebar picker, the
per-session registry and the model cache treat the translator like any lab model; the Attention, Explain
and Intervene pages draw its own views (``llmviz.train.translator_probes``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from llmviz.errors import CorruptModelError, LlmvizError
from llmviz.models.base import PROBE_NOTES, PROBES_BY_KIND, SEQ2SEQ, LoadedModel, ModelFacts
from llmviz.safe_io import load_json_file
from llmviz.train import seq2seq as S

FORMAT = "llmviz-translator"
CONFIG_FILE = "translator.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 10**6


@dataclass(frozen=True)
class TranslatorVocab:
    """The "tokenizer" of a loaded translator: source and target vocabularies and the target language
    (a key of ``llmviz.train.translator.PAIRS``)."""

    src: S.Vocab
    tgt: S.Vocab
    pair: str


def save_seq2seq(model: S.Seq2Seq, vocab: TranslatorVocab, folder: str | Path, meta: dict | None = None) -> Path:
    """Write the weights (safetensors, never pickle) and ``translator.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / WEIGHTS_FILE)
    doc = {
        "format": FORMAT,
        "config": model.cfg.as_dict(),
        "pair": vocab.pair,
        "src_vocab": vocab.src.itos,
        "tgt_vocab": vocab.tgt.itos,
        "meta": meta or {},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return folder


def is_seq2seq_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding a saved translator."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def _vocab(itos) -> S.Vocab:
    if not isinstance(itos, list) or list(itos[: len(S.SPECIALS)]) != list(S.SPECIALS):
        raise CorruptModelError("translator.json holds no valid vocabulary.")
    vocab = S.Vocab([str(w) for w in itos[len(S.SPECIALS) :]])
    if vocab.itos != itos:
        raise CorruptModelError("translator.json holds a vocabulary with repeated words.")
    return vocab


def load_seq2seq(path: str | Path, model_id: str, source: str = "trained") -> LoadedModel:
    """The translator saved in ``path`` as a LoadedModel (CPU, float32, eval mode). Raises CorruptModelError
    for a file that does not hold one."""
    path = Path(path)
    try:
        doc = load_json_file(path / CONFIG_FILE, CONFIG_FILE, MAX_CONFIG_BYTES)
    except LlmvizError as err:
        raise CorruptModelError(str(err)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("config"), dict):
        raise CorruptModelError(f"{CONFIG_FILE} does not describe an llmviz translator.")
    vocab = TranslatorVocab(_vocab(doc.get("src_vocab")), _vocab(doc.get("tgt_vocab")), str(doc.get("pair", "")))
    try:
        cfg = S.Seq2SeqConfig(**doc["config"]).validate()
        model = S.Seq2Seq(cfg)
        model.load_state_dict(load_file(path / WEIGHTS_FILE), strict=True)
    except (TypeError, ValueError, RuntimeError, OSError, LlmvizError) as err:
        raise CorruptModelError(f"Cannot load the translator's weights ({type(err).__name__}).") from err
    if (cfg.src_vocab, cfg.tgt_vocab) != (len(vocab.src), len(vocab.tgt)):
        raise CorruptModelError("The translator's vocabularies do not match its weights.")
    model.eval()
    return LoadedModel(str(path), model, vocab, seq2seq_facts(model, vocab, model_id, source))


def seq2seq_facts(model: S.Seq2Seq, vocab: TranslatorVocab, model_id: str, source: str) -> ModelFacts:
    """The common facts of a translator (layers and heads of each stack; vocabulary size of the target side)."""
    cfg = model.cfg
    return ModelFacts(
        model_id=model_id,
        source=source,
        kind=SEQ2SEQ,
        architecture="Seq2Seq",
        model_type="llmviz-seq2seq",
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_heads,
        head_dim=cfg.d_model // cfg.n_heads,
        hidden_size=cfg.d_model,
        positional=cfg.positional,
        rope_theta=None,
        max_positions=cfg.max_len,
        vocab_size=len(vocab.tgt),
        n_params=S.count_params(model),
        has_chat_template=False,
        mask_token=None,
        device="cpu",
        dtype=str(next(model.parameters()).dtype).replace("torch.", ""),
        probes=PROBES_BY_KIND[SEQ2SEQ],
        probe_notes=PROBE_NOTES[SEQ2SEQ],
    )


def is_seq2seq(loaded: LoadedModel) -> bool:
    """True for a translator loaded by :func:`load_seq2seq`."""
    return loaded.facts.kind == SEQ2SEQ
