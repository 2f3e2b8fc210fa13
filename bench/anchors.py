"""llmviz side by side with the tools a researcher would pick instead, in one process. Prints one JSON object.

Each comparison runs interleaved (llmviz, the alternative, llmviz, ...) and keeps the best of REPEATS
(``BENCH_ANCHOR_REPEATS``, default 3), so load from other processes hits both alike; the answers are checked
to agree before a ratio is reported (``*_agree`` keys; a ratio whose answers differ is not a speed-up).

- generation: smollm2, greedy, 64 new tokens, per-step probabilities: llmviz's GenerationStream (records on)
  vs ``transformers`` ``model.generate(output_scores=True)`` on the same ids. ``gen_ratio_vs_hf`` = llmviz
  tok/s / HF tok/s; the generated ids must be equal.
- integrated gradients: smollm2, 32 tokens, 64 Gauss–Legendre steps, pad baseline, 16 steps per pass:
  ``llmviz.explain.attribution`` vs Captum ``LayerIntegratedGradients`` on the embedding layer (baseline ids
  = the pad token, ``method="gausslegendre"``, ``internal_batch_size=16``; its forward keeps only the last
  position's logits, as llmviz's does). ``ig_time_ratio_vs_captum`` = llmviz time / Captum time;
  ``ig_max_rel_diff`` = max |Δ attribution| / max |attribution|. ``ig_fast_time_ratio_vs_captum``: the same
  llmviz IG under bf16 autocast (``precision="bf16"``) / Captum's float32 time, ``ig_fast_max_rel_diff`` its
  difference from llmviz float32 (null where the CPU has no bf16 units).
- activation patching: smollm2, residual stream entering each of the 30 layers at each of 16 positions:
  llmviz ``run_sites`` (32 sites per pass, shared prefix and suffix) vs nnsight (one trace per layer, one invoke per
  position, the documented way; ``lm_head`` output read at the last position). ``patch_speedup_vs_nnsight`` =
  nnsight time / llmviz time; ``patch_max_abs_diff`` = max |Δ normalised metric|.
- fast mode (``llmviz.precision``): the same llmviz sweep on the model's bf16 twin (linear layers in bfloat16),
  interleaved with the exact sweep in a pair of its own: ``sweep_fast_ratio_vs_exact`` = exact time / bf16 time,
  ``sweep_fast_s`` and ``sweep_fast_max_abs_diff`` (normalised); null with ``fast_mode_note`` where the CPU has
  no bf16 units. Generation's fast mode (int8 weights) is described at :func:`generation`.
- ``mlm_batched_speedup``: bench/bias.py's batched CrowS-Pairs PLL vs the metric.py loop (tiny BERT MLM).
- ``estimate_median_ratio``: median over the timed llmviz runs above of llmviz.estimate's estimate / the time
  taken, as the server computes it: calibrated, first cold (no job of that kind completed yet: IG at 64
  steps, the full sweep), then learnt from that job (IG at 32 steps, half the sweep); each in
  ``estimate_ratios``.
- ``fp32_matmul_gflops``: this machine's float32 matrix-product rate at transformer shapes; ``ig_gflop`` /
  ``ig_gflops_*``: the multiply-adds IG does (both tools do the same ones) and the rate each reached.
- ``load_avg``: /proc/loadavg before and after. Figures taken while other jobs run are not final.

``BENCH_ANCHOR_LAYERS`` (default: all) limits the patching sweep to the first N layers (a quick check).
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPEATS = int(os.environ.get("BENCH_ANCHOR_REPEATS", "3"))
GEN_TOKENS = 64
GEN_PROMPT = "Write a short story about a robot who learns to paint."
IG_STEPS, IG_BATCH = 64, 16
IG_TEXT = (
    "The history of the city began when a small group of farmers settled near the river, and over the "
    "next two centuries the village grew into a busy market town where traders from the north met"
)
PATCH_CLEAN = "When Mary and John went to the store, John gave a drink to the girl whose name was"
PATCH_CORRUPT = "When Mary and John went to the store, Mary gave a drink to the girl whose name was"
PATCH_TOKENS, PATCH_BATCH = 16, 32


def load_avg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_of(*fns):
    """Run the functions interleaved REPEATS times; (best seconds, last result) of each."""
    best = [float("inf")] * len(fns)
    last = [None] * len(fns)
    for _ in range(REPEATS):
        for i, fn in enumerate(fns):
            dt, last[i] = timed(fn)
            best[i] = min(best[i], dt)
    return list(zip(best, last))


# ---------------------------------------------------------------- generation
def generation(loaded) -> dict:
    """Exact llmviz vs ``transformers`` ``generate`` (ids must be equal), and the fast mode (int8 weights,
    records on as in the Playground) vs exact, all three interleaved; ``gen_fast_top1_agreement``: teacher-forced
    top-1 agreement of int8 with float32 over the Playground's preset prompts (32 float32 greedy tokens each),
    ``gen_fast_run_top1_agreement`` the same on the bench prompt's own fast run. Null with ``gen_fast_note``
    where the int8 kernel is off."""
    import torch

    from llmviz.generation.deviation import fast_agreement, with_deviation
    from llmviz.generation.generate import GenerationStream, SamplingParams, build_prompt
    from llmviz.precision import EXACT, INT8, int8_support

    prompt = build_prompt(loaded, GEN_PROMPT)
    ids = torch.tensor([prompt.ids], device=loaded.device)

    def run(precision=EXACT):
        stream = GenerationStream(
            loaded,
            prompt,
            SamplingParams(greedy=True, max_new_tokens=GEN_TOKENS),
            record=True,
            stop_at_eos=False,
            precision=precision,
        )
        for _ in stream:
            pass
        return stream.result()

    def hf():
        with torch.inference_mode():
            out = loaded.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=GEN_TOKENS,
                min_new_tokens=GEN_TOKENS,
                output_scores=True,
                return_dict_in_generate=True,
            )
            probs = [torch.softmax(s.float(), -1) for s in out.scores]  # per-step probabilities, as llmviz keeps
        assert len(probs) == GEN_TOKENS
        return out.sequences[0, ids.shape[1] :].tolist()

    fast_ok, fast_why = int8_support()
    fns = [run, hf] + ([lambda: run(INT8)] if fast_ok else [])
    for warm in (run, lambda: run(INT8)) if fast_ok else (run,):
        warm()  # warm-up (the first int8 run also builds the model's int8 twin)
    timed_runs = best_of(*fns)
    (t_ours, a), (t_hf, b) = timed_runs[:2]
    out = {
        "gen_tok_s": GEN_TOKENS / t_ours,
        "gen_hf_tok_s": GEN_TOKENS / t_hf,
        "gen_ratio_vs_hf": t_hf / t_ours,
        "gen_ids_equal": bool(a.token_ids == b),
        "gen_fast_ratio_vs_exact": None,
        "gen_fast_top1_agreement": None,
    }
    if not fast_ok:
        out["gen_fast_note"] = fast_why
        return out
    t_fast, fast_gen = timed_runs[2]
    run_dev = with_deviation(loaded, fast_gen, presets=False).deviation
    presets = fast_agreement(loaded, INT8)
    out.update(
        gen_fast_mode="int8 weights (per-channel scales), bf16 activations into each linear layer",
        gen_fast_tok_s=GEN_TOKENS / t_fast,
        gen_fast_ratio_vs_exact=t_ours / t_fast,
        gen_fast_top1_agreement=presets.fraction,
        gen_fast_top1_steps=[presets.agree, presets.total],
        gen_fast_max_abs_dlogprob=presets.max_abs_dlogprob,
        gen_fast_run_top1_agreement=run_dev.fraction,
        gen_fast_run_max_abs_dlogprob=run_dev.max_abs_dlogprob,
    )
    return out


# ---------------------------------------------------------------- integrated gradients
def integrated_gradients(loaded) -> tuple[dict, list]:
    import numpy as np
    import torch
    from captum.attr import LayerIntegratedGradients

    from llmviz import estimate as E
    from llmviz.explain.attribution import attribute
    from llmviz.explain.targets import Target, build_problem
    from llmviz.precision import BF16, bf16_support

    problem = build_problem(loaded, IG_TEXT, Target("next_token"), max_tokens=32)
    target = problem.target_id
    # weights one token passes through in the layers (every Linear but the head) and in the head
    head_w = loaded.model.get_output_embeddings().weight
    body = sum(m.weight.numel() for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)) - head_w.numel()
    head = head_w.numel()
    ids = torch.tensor([problem.token_ids], device=loaded.device)
    pad = loaded.tokenizer.pad_token_id
    model = loaded.model

    def forward(input_ids):
        mask = torch.ones_like(input_ids)
        return model(input_ids=input_ids, attention_mask=mask, use_cache=False, logits_to_keep=1).logits[:, -1, target]

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())

    def theirs():
        attr = lig.attribute(
            ids, baselines=torch.full_like(ids, pad), n_steps=IG_STEPS, method="gausslegendre",
            internal_batch_size=IG_BATCH,
        )  # fmt: skip
        return attr.sum(-1)[0].double().detach().numpy()

    def ours(steps=IG_STEPS, precision="exact"):
        res = attribute(
            problem, "integrated_gradients", steps=steps, baseline="pad", rule="gauss_legendre", batch_size=IG_BATCH,
            precision=precision,
        )  # fmt: skip
        return res.scores

    ours(4)  # warm-up
    E.calibrate(loaded, force=True)

    def est(steps):
        work = E.attribution_work(["integrated_gradients"], problem.n_tokens, {"integrated_gradients": {"steps": steps, "batch_size": IG_BATCH}})  # fmt: skip
        return E.estimate(loaded, "attribution", work)

    cold = est(IG_STEPS)  # what the Explain page shows before this server completed an IG job
    fast_ok = bf16_support()[0]
    runs = best_of(ours, theirs, *([lambda: ours(precision=BF16)] if fast_ok else []))
    (t_ours, a), (t_captum, b) = runs[0], runs[1]
    E.observe(cold, t_ours)  # the queue records the completed job
    rel = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
    fast = {"ig_fast_time_ratio_vs_captum": None, "ig_fast_max_rel_diff": None}
    if fast_ok:
        t_fast, c = runs[2]
        fast = {
            "ig_fast_time_ratio_vs_captum": t_fast / t_captum,
            "ig_fast_max_rel_diff": float(np.abs(c - a).max() / max(np.abs(a).max(), 1e-12)),
        }
    half = IG_STEPS // 2
    learnt = est(half)
    t_half, _ = timed(lambda: ours(half))
    estimates = [("ig_cold", cold, t_ours), ("ig_learnt", learnt, t_half)]
    return {
        "ig_s": t_ours,
        "ig_captum_s": t_captum,
        "ig_time_ratio_vs_captum": t_ours / t_captum,
        # multiply-adds both do: forward + input-gradient backward of every path point (2 × forward), the
        # LM head of the last position included
        "ig_gflop": (gflop := 2 * 2 * IG_STEPS * (problem.n_tokens * body + head) / 1e9),
        "ig_gflops_llmviz": gflop / t_ours,
        "ig_gflops_captum": gflop / t_captum,
        "ig_max_rel_diff": rel,
        "ig_agree": bool(rel < 1e-4),
        **fast,
    }, estimates


# ---------------------------------------------------------------- activation patching
def _cut(loaded, text: str) -> str:
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"][:PATCH_TOKENS]
    return loaded.tokenizer.decode(ids)


def patching(loaded) -> tuple[dict, list]:
    import numpy as np
    import torch
    from nnsight import LanguageModel

    from llmviz import estimate as E
    from llmviz.interventions import patching as P
    from llmviz.interventions.sites import RESID
    from llmviz.precision import BF16, bf16_support

    setup = P.prepare(loaded, _cut(loaded, PATCH_CLEAN), _cut(loaded, PATCH_CORRUPT))
    L = int(os.environ.get("BENCH_ANCHOR_LAYERS", loaded.facts.n_layers))
    T = setup.n_tokens
    sites = P.sweep_sites(L, T, loaded.facts.n_heads, (RESID,))
    clean = torch.tensor([setup.clean.token_ids])
    corrupt = torch.tensor([setup.corrupt.token_ids])
    good, bad = setup.correct_id, setup.wrong_id
    nn = LanguageModel(loaded.model, tokenizer=loaded.tokenizer)
    layers = nn.model.layers

    def theirs():  # variables a trace writes to are created outside it (nnsight runs the block's source)
        acts, saved = [], []
        with torch.inference_mode():
            with nn.trace(clean):
                for layer in range(L):
                    acts.append(layers[layer].input.save())
            for layer in range(L):
                row = []
                with nn.trace() as tracer:
                    for pos in range(T):
                        with tracer.invoke(corrupt):
                            h = layers[layer].input
                            h[:, pos] = acts[layer][:, pos]
                            logits = nn.lm_head.output[:, -1]
                            row.append((logits[:, good] - logits[:, bad]).save())
                saved.append([float(v) for v in row])
        return setup.normalise(np.array(saved).reshape(-1))

    def ours(precision="exact", n=None):
        return setup.normalise(P.run_sites(setup, sites[:n], PATCH_BATCH, precision=precision)[0])

    ours(n=PATCH_BATCH)  # warm-up
    E.calibrate(loaded, force=True)
    cold = E.estimate(loaded, "patching", P.sites_work(setup, sites, PATCH_BATCH))
    fast_ok, fast_note = bf16_support()
    (t_ours, a), (t_nn, b) = best_of(ours, theirs)
    out = {
        "patch_sites": len(sites),
        "patch_s": t_ours,
        "patch_nnsight_s": t_nn,
        "patch_speedup_vs_nnsight": t_nn / t_ours,
        "patch_max_abs_diff": float(np.abs(a - b).max()),
        "patch_agree": bool(np.abs(a - b).max() < 1e-5),
        "sweep_fast_ratio_vs_exact": None,
        "sweep_fast_max_abs_diff": None,
        "fast_mode_note": fast_note,
    }
    if fast_ok:  # its own interleaved pair: a run right after nnsight's long one was ~25 % slower (clocks, caches)
        (t_exact, _), (t_fast, c) = best_of(ours, lambda: ours(BF16))
        out["sweep_fast_s"] = t_fast
        out["sweep_fast_ratio_vs_exact"] = t_exact / t_fast
        out["sweep_fast_max_abs_diff"] = float(np.abs(c - a).max())
    E.observe(cold, t_ours)
    half = len(sites) // 2
    learnt = E.estimate(loaded, "patching", P.sites_work(setup, sites[:half], PATCH_BATCH))
    t_half, _ = timed(lambda: ours(n=half))
    estimates = [("patch_cold", cold, t_ours), ("patch_learnt", learnt, t_half)]
    return out, estimates


# ---------------------------------------------------------------- batched MLM scoring
def mlm() -> dict:
    from llmviz.bias.pairs import score_pairs
    from llmviz.bias.pairs_data import starter_pairs
    from llmviz.models.loading import load_model
    from tests.fixtures import tiny
    from tests.fixtures.crows_reference import reference_crows_scores

    frame = starter_pairs().frame.head(16)
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(str(tiny.build_tiny_bert_mlm(Path(tmp) / "mlm", layers=4, heads=4, hidden=256)))
        score_pairs(model, frame.head(2))  # warm-up

        def ours():
            res = score_pairs(model, frame)
            return list(res.score_more) + list(res.score_less)

        def theirs():
            ref = [
                reference_crows_scores(model.model, model.tokenizer, a, b)
                for a, b in frame[["sent_more", "sent_less"]].values
            ]
            return [r[0] for r in ref] + [r[1] for r in ref]

        (t_ours, a), (t_ref, b) = best_of(ours, theirs)
    diff = float(max(abs(x - y) for x, y in zip(a, b)))
    return {"mlm_batched_speedup": t_ref / t_ours, "mlm_max_abs_diff": diff, "mlm_agree": bool(diff < 1e-5)}


def fp32_gflops() -> float:
    """This machine's float32 matrix-product rate now (GFLOP/s, best of 5), at a transformer's shapes: the
    ceiling an exact-mode method doing the same multiplications as another cannot pass."""
    import torch

    a, w = torch.randn(2048, 576), torch.randn(576, 1536)
    a @ w
    best = min(timed(lambda: a @ w)[0] for _ in range(5))
    return 2 * 2048 * 576 * 1536 / best / 1e9


def main() -> dict:
    import torch

    from llmviz.models.loading import load_model

    out = {"load_avg_start": load_avg(), "torch_threads": torch.get_num_threads(), "repeats": REPEATS}
    out["fp32_matmul_gflops"] = fp32_gflops()
    loaded = load_model("smollm2")
    skip = set(os.environ.get("BENCH_ANCHOR_SKIP", "").split(","))
    estimates = []
    if "gen" not in skip:
        out.update(generation(loaded))
        print(json.dumps(out), file=sys.stderr, flush=True)  # partial results as each comparison ends
    if "ig" not in skip:
        res, est = integrated_gradients(loaded)
        out.update(res)
        estimates += est
        print(json.dumps(out), file=sys.stderr, flush=True)
    if "patch" not in skip:
        res, est = patching(loaded)
        out.update(res)
        estimates += est
        print(json.dumps(out), file=sys.stderr, flush=True)
    if "mlm" not in skip:
        out.update(mlm())
    ratios = {name: round(float(e) / t, 3) for name, e, t in estimates}
    out["estimate_ratios"] = ratios  # cold: calibration + prior only; learnt: after one completed job of that kind
    out["estimate_median_ratio"] = statistics.median(ratios.values()) if ratios else None
    out["load_avg"] = load_avg()
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
