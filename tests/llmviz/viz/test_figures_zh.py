"""Figures built in the reader's language (issue 21): EVERY figure builder in llmviz.viz (found with inspect,
so a new builder without a case here fails) is rendered with the 中文 label function and must show no Latin
word in any string a reader sees — title, axis / legend / colour-bar titles, trace names, hover templates
and texts, annotations, subplot titles, tick and category labels, HTML text and tooltips — outside ALLOW.
The inputs are Chinese or symbols (tokens, groups, occupations come from the caller's data), so every
Latin word found is the builder's own. In English no figure shows a ⟦missing-key⟧ marker.

On the old code (English builders + llmviz.viz.labels.translate_figure with the old phrase catalogue)
this walk finds 306 Latin words in 47 of the 74 figures; now 0.
"""

from __future__ import annotations

import html
import inspect
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from llmviz import i18n
from llmviz.viz import attention, benchmarks, bias, explain, generate, interventions, positional, sliding, train

MODULES = (attention, benchmarks, bias, explain, generate, interventions, positional, sliding, train)

# Latin words a Chinese figure may show: math functions and symbols, units and acronyms written in Latin
# letters in Chinese texts too, cited authors and tools, the model id of the inputs, and the pronouns of
# the (English) training corpus that the Training lab's figures count.
ALLOW = {
    "softmax",
    "logit",
    "log",
    "cos",
    "sin",
    "mod",
    "max",
    "RoPE",
    "PE",
    "FFT",
    "MLP",
    "DLA",
    "WEAT",
    "SEAT",
    "SS",
    "LM",
    "ICAT",
    "NN",  # k-NN
    "RoFormer",
    "Abnar",
    "Zuidema",
    "Kurita",
    "Caliskan",
    "Spearman",
    "VADER",
    "StereoSet",
    "minilm",
    "he",
    "she",
}
ALLOW_LOWER = {w.lower() for w in ALLOW}
WORD = re.compile(r"[A-Za-z]{2,}")
MODEL = "minilm"
TOKENS = ["我", "喜欢", "猫", "。", "🙂", "，"]


# ---------------------------------------------------------------- what a reader sees
def _texts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [x for v in np.asarray(value, dtype=object).ravel() for x in _texts(v)]
    return []


def _title(obj) -> list[str]:
    t = (obj or {}).get("title")
    return _texts(t.get("text") if isinstance(t, dict) else t)


def figure_strings(fig) -> list[str]:
    """Every reader-visible string of a plotly figure (plotly placeholders and tags taken out later)."""
    spec = fig.to_plotly_json()
    lay = spec.get("layout", {})
    out = _title(lay) + _title(lay.get("legend")) + _title((lay.get("coloraxis") or {}).get("colorbar"))
    axes = [v for k, v in lay.items() if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)]
    for scene in (v for k, v in lay.items() if k.startswith("scene") and isinstance(v, dict)):
        axes += [v for k, v in scene.items() if k.endswith("axis") and isinstance(v, dict)]
    for ax in axes:
        out += _title(ax) + _texts(ax.get("ticktext"))
    out += [a.get("text") for a in lay.get("annotations", []) if a.get("text")]
    for tr in spec.get("data", []):
        out += _texts(tr.get("name")) + _texts(tr.get("hovertemplate")) + _texts(tr.get("hovertext"))
        out += _texts(tr.get("text")) + _texts(tr.get("texttemplate"))
        out += _title(tr.get("colorbar")) + _title((tr.get("marker") or {}).get("colorbar"))
        out += _texts((tr.get("legendgrouptitle") or {}).get("text"))
        for axis in ("x", "y"):  # category labels
            out += _texts(tr.get(axis))
    return out


def html_strings(page: str) -> list[str]:
    """The text and the tooltips of an HTML page (style and script blocks left out)."""
    body = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.findall(r'title="([^"]*)"', body) + [body]


def strings(built) -> list[str]:
    out = []
    for item in built if isinstance(built, list) else [built]:
        out += html_strings(item) if isinstance(item, str) else figure_strings(item)
    return out


def latin_words(texts: list[str]) -> list[str]:
    found = []
    for s in texts:
        s = re.sub(r"%\{[^}]*\}", " ", s)  # plotly placeholders
        s = html.unescape(re.sub(r"<[^>]+>", " ", s))  # tags (<br>, <extra>, <b>), then entities
        found += [w for w in WORD.findall(s) if w.lower() not in ALLOW_LOWER]
    return found


# ---------------------------------------------------------------- small inputs, Chinese or symbols
def _attribution(method: str, scores):
    from llmviz.explain.attribution import Attribution

    parts = {"fn": "logit", "token": "猫", "contrast": None, "position": 2, "top": True, "splits": []}
    return Attribution(
        method, TOKENS[:4], np.array(scores, float), np.array([0, 0, 0, 1], bool), "x", {}, label_parts=parts
    )


def _lens():
    from llmviz.explain.logit_lens import LogitLensResult

    n = 3
    return LogitLensResult(
        tokens=TOKENS[:3],
        layer_names=["embed", "1", "2"],
        top_ids=np.zeros((n, 3), int),
        top_tokens=[TOKENS[:3]] * n,
        top_probs=np.full((n, 3), 0.3),
        target_id=1,
        target_token="猫",
        target_probs=np.array([0.1, 0.2, 0.6]),
        target_ranks=np.array([40, 3, 1]),
        last_probs=np.zeros((n, 5), np.float32),
        topk_tokens=[TOKENS[:2]] * n,
        topk_probs=np.zeros((n, 2)),
        truncated=False,
        text="我喜欢猫",
    )


def _ablation(contrast: bool):
    from llmviz.explain.ablation import AblationResult

    parts = {"fn": "log p", "token": "猫", "contrast": "狗" if contrast else None, "position": 2, "top": False}
    parts["splits"] = [{"raw": "猫咪", "pieces": ["猫", "咪"]}]
    return AblationResult(
        tokens=TOKENS[:3],
        label="x",
        base_score=1.0,
        head_delta=np.arange(6, dtype=float).reshape(2, 3),
        layer_delta=np.array([0.5, -0.2]),
        seconds=0.1,
        batch_size=4,
        label_parts=parts,
    )


def _generation():
    from llmviz.generation.generate import Alternative, Generation, StepRecord

    alts = [Alternative(1, "猫", 0.6, 0.7), Alternative(2, "狗", 0.3, 0.3)]
    steps = [
        StepRecord(i, 1, tok, 0.7, 0.6, 1.0, 1.2, 1, alts, forced=i == 1)
        for i, tok in enumerate(["猫", " ", "\n", "。"])
    ]
    return Generation(MODEL, None, None, steps, "", "猫 \n。")


def _learned():
    from llmviz.positional.model import LearnedPositions, analyse_learned

    rng = np.random.default_rng(0)
    return analyse_learned(LearnedPositions(MODEL, "embeddings.position_embeddings", rng.normal(size=(24, 8))))


def _encoder_ablation():
    rng = np.random.default_rng(0)
    att = {r: rng.random((2, 2, 4, 4)) for r in ("with_a", "with_b", "without_a", "without_b")}
    shuffle = SimpleNamespace(tokens_a=TOKENS[:4], tokens_b=TOKENS[:4][::-1], order=np.array([3, 2, 1, 0]))
    return SimpleNamespace(
        shuffle=shuffle, layer_cos_with=np.array([1.0, 0.9]), layer_cos_without=np.array([1.0, 1.0]), attention=att
    )


def _causal_ablation():
    rows = [{"token": tok, "with_a": 0.5, "with_b": 0.2, "without_a": 0.3, "without_b": 0.3} for tok in TOKENS[:3]]
    return SimpleNamespace(top_table=lambda tokenizer, k: rows)


def _template_result():
    score = np.array([[0.1, -0.4], [0.3, 0.2]])
    return SimpleNamespace(
        score=score,
        log_prob=score - 1,
        method="mlm_kurita",
        targets=["医生", "护士"],
        groups=["他", "她"],
        skew=lambda: score - score.mean(axis=0),
        log_ratio=lambda a, b: score[a] - score[b],
    )


def _pair_detail(changed: float):
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        token_diff=np.array([0.2, -0.1, 0.05]),
        lp_more=np.array([-1.0, -2.0, -3.0]),
        lp_less=np.array([-1.1, -1.9, -3.1]),
        shared_more=[0, 1, 2],
        shared_less=[0, 1, 2],
        shared_tokens=TOKENS[:3],
        changed_diff=changed,
        attention_diff=rng.normal(size=(2, 2, 3, 3)),
        attention_tokens=TOKENS[:3],
    )


def _history():
    from llmviz.train.loop import History

    return History(step=[1, 2, 3], train_loss=[3.0, 2.0, 1.0], val_loss=[3.1, 2.5, 2.6], total_steps=3)


def _steps_title(L) -> str:
    return L("step_wq", head=0)


def _cases():
    """builder -> (label function -> one figure / HTML page or a list of them)."""
    from llmviz.attention.extract import STATISTICS
    from llmviz.positional import encodings as P
    from llmviz.positional.encodings import METRICS

    T = len(TOKENS)
    att = np.full((T, T), 1 / T)
    pe = P.sinusoidal(20, 16, 10000.0)
    inv_freq = 1.0 / 10000.0 ** (np.arange(0, 8, 2) / 8)
    positions = np.arange(1, 12)
    angles = P.rope_angles(positions, inv_freq)
    stats = np.random.default_rng(0).random((2, 3))
    return {
        # attention
        "attention.attention_heatmap": lambda L: [
            attention.attention_heatmap(TOKENS, att, L("layer_head_title", layer=0, head=1), labels=L),
            attention.attention_heatmap(
                TOKENS * 20, np.zeros((6 * 20, 6 * 20)), "第 0 层", labels=L
            ),  # hover: positions
        ],
        "attention.layer_small_multiples": lambda L: [
            attention.layer_small_multiples(TOKENS, np.stack([att] * 4), 0, labels=L),
            attention.layer_small_multiples(TOKENS * 10, np.zeros((2, 60, 60)), 0, labels=L),
        ],
        "attention.rollout_heatmap": lambda L: attention.rollout_heatmap(TOKENS, att, labels=L),
        "attention.statistic_heatmap": lambda L: [
            attention.statistic_heatmap(stats, name, selected=(0, 1), labels=L) for name in STATISTICS
        ],
        "attention.matrix_heatmap": lambda L: attention.matrix_heatmap(
            np.array([[1.0, -np.inf], [0.5, 2.0]]), _steps_title(L), TOKENS[:2], ["0", "1"], labels=L
        ),
        "attention.neuron_figure": lambda L: attention.neuron_figure(
            TOKENS, np.ones((T, 4)), np.ones(T), np.full(T, 1 / T), "猫", labels=L
        ),
        # sliding window
        "sliding.mark_window": lambda L: sliding.mark_window(
            attention.attention_heatmap(TOKENS, att, "第 0 层", labels=L), T, 2, labels=L
        ),
        "sliding.mark_sliding_layers": lambda L: sliding.mark_sliding_layers(
            attention.statistic_heatmap(stats, "entropy", labels=L),
            ["sliding_attention", "full_attention"],
            512,
            labels=L,
        ),
        # positional
        "positional.waves": lambda L: [
            positional.waves(pe, [0, 2], labels=L),
            positional.waves(pe, list(range(10)), labels=L),
        ],
        "positional.heatmap": lambda L: positional.heatmap(
            np.zeros((600, 600)), L("rope_angle_title"), L("pair_j"), L("position_m"), labels=L
        ),
        "positional.pe_heatmap": lambda L: positional.pe_heatmap(pe, labels=L),
        "positional.distance_curves": lambda L: [
            positional.distance_curves(P.distance_similarity(pe, m), [0, 5], labels=L) for m in METRICS
        ],
        "positional.shift_map_figure": lambda L: positional.shift_map_figure(P.shift_map(pe, 3), labels=L),
        "positional.pca_trajectory": lambda L: [
            positional.pca_trajectory(_learned(), dims, labels=L) for dims in (2, 3)
        ],
        "positional.spectrum": lambda L: positional.spectrum(_learned(), labels=L),
        "positional.dominant_histogram": lambda L: positional.dominant_histogram(_learned(), labels=L),
        "positional.rope_angle_heatmap": lambda L: positional.rope_angle_heatmap(angles, labels=L),
        "positional.rope_angle_lines": lambda L: positional.rope_angle_lines(positions, angles, [0, 1], labels=L),
        "positional.rope_rotation": lambda L: positional.rope_rotation(
            np.array([[1.0, 0.0], [0.5, 0.8]]), [0, 1], 0, labels=L
        ),
        "positional.rope_decay_figure": lambda L: positional.rope_decay_figure(P.rope_decay(inv_freq, 64), labels=L),
        "positional.layer_cosine": lambda L: positional.layer_cosine(_encoder_ablation(), labels=L),
        "positional.attention_pair": lambda L: positional.attention_pair(_encoder_ablation(), 1, 0, labels=L),
        "positional.next_token_bars": lambda L: positional.next_token_bars(_causal_ablation(), None, labels=L),
        # bias
        "bias.template_heatmap": lambda L: [
            bias.template_heatmap(_template_result(), labels=L),
            bias.template_heatmap(SimpleNamespace(**{**vars(_template_result()), "method": "causal"}), labels=L),
        ],
        "bias.template_ratio_bars": lambda L: bias.template_ratio_bars(_template_result(), labels=L),
        "bias.pairs_summary": lambda L: bias.pairs_summary(
            {
                "n": 10,
                "pct_stereotype": 60.0,
                "ci95": (40.0, 80.0),
                "by_bias_type": {"性别": {"n": 4, "pct_stereotype": 50.0, "ci95": (10.0, 90.0)}},
            },
            labels=L,
        ),
        "bias.score_diff_hist": lambda L: bias.score_diff_hist(
            SimpleNamespace(frame=pd.DataFrame({"bias_type": ["性别", "年龄"]}), diff=np.array([0.1, -0.2])), labels=L
        ),
        "bias.pair_token_bars": lambda L: [bias.pair_token_bars(_pair_detail(c), labels=L) for c in (0.0, 0.4)],
        "bias.attention_diff_heatmap": lambda L: [
            bias.attention_diff_heatmap(_pair_detail(0.0), 1, h, labels=L) for h in (None, 1)
        ],
        "bias.counterfactual_box": lambda L: bias.counterfactual_box(
            SimpleNamespace(groups=["他", "她"], sentiment=[np.array([0.1, 0.5]), np.array([-0.2, 0.0])]), labels=L
        ),
        "bias.weat_layers": lambda L: bias.weat_layers(
            SimpleNamespace(effect_size=np.array([0.2, 1.1]), p_value=np.array([0.3, 0.01]), mode="seat"), labels=L
        ),
        "bias.mitigation_bars": lambda L: bias.mitigation_bars(
            SimpleNamespace(effect_before=1.6, effect_after=0.2, recover_before=0.9, recover_after=0.55, layer=3),
            labels=L,
        ),
        # benchmarks
        "benchmarks.stereoset_bars": lambda L: [
            benchmarks.stereoset_bars(
                [
                    {
                        "split": "句内",
                        "bias_type": "性别",
                        "Count": 5,
                        m: 55.0,
                        f"{m} CI low": 50.0,
                        f"{m} CI high": 60.0,
                    }
                ],
                m,
                labels=L,
            )
            for m in ("SS Score", "LM Score", "ICAT Score")
        ],
        "benchmarks.paired_diff": lambda L: benchmarks.paired_diff(
            {
                "a": {"id": 1},
                "b": {"id": 2},
                "by_group": {"性别": {"mean_diff": 0.1, "ci95": (0.0, 0.2), "n": 4}},
                "overall": {"mean_diff": 0.1, "ci95": (0.0, 0.2), "n": 4},
            },
            labels=L,
        ),
        # explain
        "explain.token_html": lambda L: explain.token_html(
            [_attribution("grad_x_input", [1, -1, 0.5, 0]), _attribution("occlusion", [0, 1, 2, 0])], labels=L
        ),
        "explain.method_heatmap": lambda L: explain.method_heatmap(
            [_attribution(m, [1, -1, 0.5, 0]) for m in explain.METHODS], labels=L
        ),
        "explain.spearman_figure": lambda L: explain.spearman_figure(
            [_attribution(m, [1, -1, 0.5, 0]) for m in ("grad_x_input", "occlusion")],
            np.array([[1.0, np.nan], [np.nan, 1.0]]),
            labels=L,
        ),
        "explain.logit_lens_heatmap": lambda L: explain.logit_lens_heatmap(_lens(), labels=L),
        "explain.target_across_layers": lambda L: explain.target_across_layers(_lens(), labels=L),
        "explain.ablation_heatmap": lambda L: [explain.ablation_heatmap(_ablation(c), labels=L) for c in (False, True)],
        "explain.layer_ablation_bar": lambda L: explain.layer_ablation_bar(_ablation(False), labels=L),
        # generation
        "generate.probability_chart": lambda L: generate.probability_chart(_generation(), selected=0, labels=L),
        "generate.alternatives_chart": lambda L: generate.alternatives_chart(_generation().steps[0], labels=L),
        "generate.tokens_html": lambda L: generate.tokens_html(_generation(), selected=1, labels=L),
        "generate.fill_mask_chart": lambda L: [
            generate.fill_mask_chart(
                SimpleNamespace(candidates=["猫", "狗"], probs=np.array([0.7, 0.3]), mask_number=1), method, labels=L
            )
            for method in ("masked_lm", "candidates")
        ],
        # interventions (titles and axis names are the caller's, translated by the page)
        "interventions.patch_heatmap": lambda L: [
            interventions.patch_heatmap(
                np.zeros((2, 3)), kind, TOKENS[:3], ["我", "爱", "猫"], "修补", "位置", labels=L
            )
            for kind in (interventions.HEAD, "resid")
        ],
        "interventions.dla_waterfall": lambda L: interventions.dla_waterfall(
            ["embed", "attn 0", "mlp 0", "biases"], np.array([0.1, 0.2, -0.1, 0.05]), 0.25, "直接贡献", "总计", labels=L
        ),
        "interventions.head_heatmap": lambda L: interventions.head_heatmap(np.ones((2, 3)), "各头", labels=L),
        "interventions.dla_vs_patching": lambda L: interventions.dla_vs_patching(
            np.ones((2, 3)), np.ones((2, 3)), "对比", "直接贡献", "修补", labels=L
        ),
        "interventions.alpha_curve": lambda L: interventions.alpha_curve(
            np.array([0.0, 1.0]), ["猫"], np.zeros((2, 1)), "曲线", labels=L
        ),
        "interventions.probe_before_after": lambda L: interventions.probe_before_after(
            {"value": 0.1, "ci95": (0.0, 0.2)},
            {"value": 0.3, "ci95": (None, None)},
            ("之前", "之后"),
            "探针",
            "值",
            labels=L,
        ),
        # training lab
        "train.loss_curves": lambda L: [
            train.loss_curves(_history(), labels=L),
            train.loss_curves(_history(), "损失", labels=L),
        ],
        "train.gap_bars": lambda L: train.gap_bars(
            [{"preset": "过拟合", "train_loss": 1.0, "val_loss": 2.0, "best_val": 1.8}], labels=L
        ),
        "train.transfer_figure": lambda L: train.transfer_figure(
            SimpleNamespace(accuracy={"finetune": [0.6, 0.9], "scratch": [0.5, 0.7]}, sizes=[8, 64], n_test=40),
            {"finetune": "微调", "scratch": "从零训练"},
            labels=L,
        ),
        "train.bias_figure": lambda L: train.bias_figure(
            SimpleNamespace(
                stereotype=["female", "male"], occupations=["护士", "工程师"], log_ratio={"skewed": [0.5, -0.3]}
            ),
            {"skewed": "偏斜模型"},
            labels=L,
        ),
        "train.counts_figure": lambda L: train.counts_figure({"护士": {"he": 1, "she": 5}}, "语料计数", labels=L),
        "train.exposure_figure": lambda L: train.exposure_figure(
            [SimpleNamespace(repeats=r, exposure=e, name=f"秘密{r}", leaked=r > 5) for r, e in ((0, 1.0), (10, 9.0))],
            1000,
            labels=L,
        ),
    }


def builders() -> dict[str, object]:
    """Every public function of llmviz.viz that builds a figure (returns go.Figure) or an HTML page."""
    out = {}
    for mod in MODULES:
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__ or name.startswith("_"):
                continue
            ret = inspect.signature(fn).return_annotation
            if ret in ("go.Figure", go.Figure) or (ret in ("str", str) and name.endswith("html")):
                out[f"{mod.__name__.rsplit('.', 1)[1]}.{name}"] = fn
    return out


CASES = _cases()


def test_every_builder_has_a_case_and_takes_labels():
    found = builders()
    assert len(found) >= 50  # the scan finds the builders (guards against a vacuous pass)
    assert sorted(set(found) - set(CASES)) == [], "a new figure builder needs a case here"
    assert sorted(set(CASES) - set(found)) == []
    assert [n for n, fn in found.items() if "labels" not in inspect.signature(fn).parameters] == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_figure_in_chinese_has_no_latin_word(name):
    words = latin_words(strings(CASES[name](i18n.labels("zh"))))
    assert not words, (name, sorted(set(words)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_figure_in_english_has_no_missing_key(name):
    for lang in ("en", "zh"):
        shown = strings(CASES[name](i18n.labels(lang)))
        assert not [s for s in shown if "⟦" in s], (name, lang)


def test_default_language_is_used_without_labels():
    try:
        i18n.set_language("zh")
        assert train.loss_curves(_history()).layout.xaxis.title.text == "训练步数"
    finally:
        i18n.set_language("en")
    assert train.loss_curves(_history()).layout.xaxis.title.text == "training step"


def test_every_literal_key_of_the_builders_exists():
    from pathlib import Path

    src = Path(attention.__file__).parent
    keys = set()
    for path in src.glob("*.py"):
        keys |= set(re.findall(r'\bL\(\s*"([a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    assert len(keys) > 100
    for lang in ("en", "zh"):
        assert sorted(keys - set(i18n.catalogue(lang, "figures"))) == [], lang


def test_the_walk_finds_latin_words():
    """The check can fail: an English figure and a Chinese one with a stray English word are caught."""
    english = train.loss_curves(_history(), labels=i18n.labels("en"))
    assert {"training", "step", "validation", "loss"} <= set(latin_words(strings(english)))
    fig = go.Figure(go.Heatmap(z=[[1]], hovertemplate="层 %{y}<br>weight %{z}<extra></extra>"))
    fig.update_layout(title="熵 (nats)", xaxis={"ticktext": ["一", "GLOBAL"], "tickvals": [0, 1]})
    assert sorted(latin_words(strings(fig))) == ["GLOBAL", "nats", "weight"]
