"""The lab's translator saved and loaded back as a session model (kind seq2seq): same outputs, facts, and a clear
error for a damaged folder."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from llmviz.errors import CorruptModelError
from llmviz.models.loading import REGISTRY, SEQ2SEQ, load_model
from llmviz.train import seq2seq as S
from llmviz.train import translator as TR
from llmviz.train import translator_probes as probes

TINY = replace(TR.DEFAULT, n_train=60, n_test=10, steps=3, d_model=16, d_ff=32, n_heads=2, n_layers=1, eval_every=3)


@pytest.fixture(scope="module")
def trained():
    return TR.run_translator(TINY)


def test_registered_translator_loads_with_the_same_outputs(trained, tmp_path):
    mid = trained.register("t", owner="me", root=tmp_path)
    try:
        with pytest.raises(Exception, match="No model called"):
            load_model(mid, owner="someone else")
        loaded = load_model(mid, owner="me")
        assert loaded.facts.kind == SEQ2SEQ and loaded.facts.n_layers == 1 and loaded.facts.n_heads == 2
        assert loaded.facts.supports("decoder_lens") and not loaded.facts.supports("attention")
        src = torch.tensor([trained.src_vocab.encode(["a", "dog", "slept"])])
        assert torch.equal(S.greedy(loaded.model, src), S.greedy(trained.model, src))
        pair = probes.sentence_pair(loaded.model, loaded.tokenizer, "a dog slept")
        assert pair.target == trained.translate("a dog slept").greedy and not pair.typed_target
        typed = probes.sentence_pair(loaded.model, loaded.tokenizer, "a dog slept", " ".join(pair.target))
        assert typed.typed_target and typed.target == pair.target
        with pytest.raises(Exception, match="no word zzz"):
            probes.sentence_pair(loaded.model, loaded.tokenizer, "a dog slept", "zzz")
        # a folder path loads it too (never through transformers)
        assert load_model(str(tmp_path / mid), source="path").facts.kind == SEQ2SEQ
    finally:
        REGISTRY.pop(mid, None)


def test_a_damaged_translator_folder_is_refused_in_words(trained, tmp_path):
    mid = trained.register("t", owner="me", root=tmp_path)
    REGISTRY.pop(mid, None)
    doc = tmp_path / mid / "translator.json"
    data = json.loads(doc.read_text())
    data["tgt_vocab"] = data["tgt_vocab"][:-1]
    doc.write_text(json.dumps(data))
    with pytest.raises(CorruptModelError):
        load_model(str(tmp_path / mid), source="path")
    doc.write_text("{not json")
    with pytest.raises(CorruptModelError):
        load_model(str(tmp_path / mid), source="path")
