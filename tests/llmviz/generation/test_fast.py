"""Fast generation (weight-only int8): the quantised product equals the dequantised one, the twin leaves the
shared model untouched, a run says which mode ran and its measured agreement with float32 equals one computed
here independently; the mode switches off with a reason where the kernel fails."""

from __future__ import annotations

import json
import math

import pytest
import torch

import llmviz as lv
from llmviz import precision
from llmviz.errors import InputError
from llmviz.generation.deviation import fast_agreement, with_deviation
from llmviz.generation.generate import (
    GenerationStream,
    SamplingParams,
    branch,
    build_prompt,
    continue_generation,
    generate,
)
from llmviz.generation.presets import PRESETS
from llmviz.generation.quantize import Int8Linear, dequantise, int8_twin, linear_count, quantise
from llmviz.generation.transcript import transcript_json

GREEDY = SamplingParams(greedy=True, max_new_tokens=6)


@pytest.mark.parametrize("k", [64, 40])  # 40: a width the kernel gets wrong, multiplied by the dequantised weight
def test_int8_linear_equals_the_dequantised_product(k):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, k, generator=g) * torch.linspace(0.01, 3.0, 24)[:, None]  # rows of very different size
    b = torch.randn(24, generator=g)
    q, s = quantise(w)
    deq = dequantise(q, s)
    assert q.dtype == torch.int8 and s.shape == (24,) and int(q.abs().max()) <= 127
    assert torch.all((w - deq).abs() <= s.float()[:, None] / 2 * (1 + 1e-6))  # within half a step, none clipped
    lin = Int8Linear(w, b)
    x = torch.randn(2, 5, k, generator=g)
    y = lin(x)
    ref = x.to(torch.bfloat16).float() @ deq.T + b  # what the layer stands for, activations in bf16
    assert y.shape == (2, 5, 24) and y.dtype == torch.float32
    torch.testing.assert_close(y, ref, rtol=1e-2, atol=1e-2 * float(ref.abs().max()))


def test_twin_shares_weights_and_leaves_the_model_unchanged(tiny_llama):
    model = tiny_llama.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    types = [type(m) for m in model.modules()]
    twin = int8_twin(model)
    assert int8_twin(model) is twin  # built once per model
    n_int8, n_float = linear_count(twin)
    assert n_int8 == 2 * 7 + 1 and n_float == 0  # q, k, v, o, gate, up, down per layer + the LM head
    assert linear_count(model) == (0, n_int8)
    emb = model.get_input_embeddings().weight
    assert twin.get_input_embeddings().weight is emb  # shared, float32
    gen = generate(tiny_llama, build_prompt(tiny_llama, "the cat sat"), GREEDY, precision="int8", stop_at_eos=False)
    assert gen.precision == "int8" and len(gen.steps) == 6
    assert [type(m) for m in model.modules()] == types
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_int8_run_reports_its_agreement_with_float32(tiny_llama):
    prompt = build_prompt(tiny_llama, "the cat sat on the mat and")
    params = SamplingParams(greedy=True, max_new_tokens=8, n_alternatives=3)
    gen = generate(tiny_llama, prompt, params, precision="int8", stop_at_eos=False)
    exact = generate(tiny_llama, prompt, params, stop_at_eos=False)
    assert (gen.precision, exact.precision) == ("int8", "exact")
    assert with_deviation(tiny_llama, exact) is exact  # nothing to measure on a float32 run
    measured = with_deviation(tiny_llama, gen, presets=False)
    dev = measured.deviation
    # independently: float32 and the twin, each one full forward over the int8 run's sequence
    ids = torch.tensor([prompt.ids + gen.token_ids])
    n, chosen = len(prompt.ids), torch.tensor(gen.token_ids)
    with torch.no_grad():
        lp32 = tiny_llama.model(input_ids=ids).logits[0, n - 1 : -1].log_softmax(-1)
        lp8 = int8_twin(tiny_llama.model)(input_ids=ids).logits[0, n - 1 : -1].float().log_softmax(-1)
    assert gen.token_ids == lp8.argmax(-1).tolist()  # greedy on the twin
    agree = int((lp32.argmax(-1) == lp8.argmax(-1)).sum())
    assert (dev.precision, dev.agree, dev.total) == ("int8", agree, 8)
    assert dev.fraction == agree / 8
    d = (lp32.gather(1, chosen[:, None]) - lp8.gather(1, chosen[:, None])).abs().max()
    assert dev.max_abs_dlogprob == pytest.approx(float(d), abs=1e-4)
    assert dev.presets is None
    (out,) = json.loads(transcript_json([measured]))["branches"]  # the export says which mode ran and how far
    assert out["precision"] == "int8" and out["deviation_from_float32"]["agree"] == agree


def test_preset_agreement_is_teacher_forced_and_kept(tiny_llama):
    agreement = fast_agreement(tiny_llama, n_tokens=3)
    assert fast_agreement(tiny_llama, n_tokens=3) is agreement  # once per process and model
    assert set(agreement.per_preset) == set(PRESETS)
    assert agreement.total == sum(n for _, n in agreement.per_preset.values()) and 0 < agreement.total <= 15
    assert 0.0 <= agreement.fraction <= 1.0 and math.isfinite(agreement.max_abs_dlogprob)


def test_continuations_and_branches_keep_the_mode(tiny_llama):
    prompt = build_prompt(tiny_llama, "the dog ran")
    gen = generate(tiny_llama, prompt, SamplingParams(greedy=True, max_new_tokens=3), precision="int8")
    stream = continue_generation(tiny_llama, gen, 2)
    assert stream.precision == "int8"
    assert branch(tiny_llama, gen, 1, 5).precision == "int8"


def test_int8_off_where_the_kernel_fails_says_why(monkeypatch, tiny_llama, fresh_support):
    def missing():
        raise AttributeError("'_OpNamespace' 'aten' object has no attribute '_weight_int8pack_mm'")

    monkeypatch.setattr(precision, "int8_kernel", missing)
    ok, why = precision.int8_support()
    assert not ok and "fast generation mode is off" in why and "AttributeError" in why
    prompt = build_prompt(tiny_llama, "the cat")
    with pytest.raises(InputError, match="fast generation mode is off"):
        GenerationStream(tiny_llama, prompt, GREEDY, precision="int8")
    assert GenerationStream(tiny_llama, prompt, GREEDY).precision == "exact"  # exact is unaffected
    with pytest.raises(InputError, match="exact, int8"):
        precision.check_generation_mode("int4")


def test_int8_is_for_models_on_the_cpu():
    with pytest.raises(InputError, match="CPU only"):
        precision.check_generation_mode("int8", "cuda:0")
    assert precision.check_generation_mode("exact", "cuda:0") == "exact"


def test_int8_off_where_the_kernel_gives_wrong_numbers(monkeypatch, fresh_support):
    monkeypatch.setattr(precision, "int8_kernel", lambda: lambda x, w, s: torch.zeros(x.shape[0], w.shape[0]))
    ok, why = precision.int8_support()
    assert not ok and "wrong numbers" in why
    assert precision.int8_facts()["error"] == "" and not precision.int8_facts()["available"]


@pytest.mark.slow
def test_smollm2_int8_agrees_with_float32(smollm2):
    """The bundled model: teacher-forced on float32's greedy answer to one preset, int8 picks the same next
    token at least 90 % of the time (measured: 97-99 % over the five presets, 32 tokens each)."""
    preset = PRESETS["qa"]
    prompt = build_prompt(smollm2, preset.user, preset.system)
    exact = generate(smollm2, prompt, SamplingParams(greedy=True, max_new_tokens=16), stop_at_eos=False)
    ids = torch.tensor([prompt.ids + exact.token_ids])
    n = len(prompt.ids)
    with torch.inference_mode():
        top32 = smollm2.model(input_ids=ids).logits[0, n - 1 : -1].argmax(-1)
        top8 = int8_twin(smollm2.model)(input_ids=ids).logits[0, n - 1 : -1].argmax(-1)
    assert float((top32 == top8).float().mean()) >= 0.9


def test_api_generate_in_int8_carries_its_deviation(tiny_llama_dir):
    view = lv.load(str(tiny_llama_dir)).generate("the cat sat", max_new_tokens=2, precision="int8")
    assert view.result.precision == "int8" and view.result.deviation.total == 2
    assert view.parameters["precision"] == "int8"
