"""Figures in the user's language and readable (issues 13, 21): the builders in llmviz.viz take a label
function (llmviz.i18n.labels) and build every label from the ``figures`` catalogue; nothing rewrites a
finished figure any more. Mitigation puts d and accuracy on separate axes."""

from pathlib import Path
from types import SimpleNamespace

from llmviz.i18n import catalogue, labels
from llmviz.viz.bias import mitigation_bars

ROOT = Path(__file__).resolve().parents[3]
CJK = range(0x4E00, 0xA000)


def test_figure_catalogue_is_key_to_text_in_both_languages():
    en, zh = catalogue("en", "figures"), catalogue("zh", "figures")
    assert set(en) == set(zh) and len(en) > 150
    assert all(k.isidentifier() and k.islower() for k in en)  # keys, not English phrases
    chinese = [k for k, v in zh.items() if any(ord(c) in CJK for c in v)]
    same = sorted(k for k in zh if zh[k] == en[k])
    assert len(chinese) >= 0.9 * len(zh), sorted(set(zh) - set(chinese))
    # the same in both languages only where the text is symbols, a formula or a name
    assert same == sorted(
        ["step_x_layernorm", "step_x_rmsnorm", "target_contrast", "target_token"]
        + ["flow_edge_mlp", "mech_mlp", "tr_bleu"]  # names: MLP, BLEU
        + ["tr_acc_suffix", "tr_pause", "tr_play"]  # symbols: " · {acc}", ❚❚, ▶
    )


def test_no_phrase_rewriting_of_finished_figures():
    assert not (ROOT / "llmviz" / "viz" / "labels.py").exists()
    code = [p for d in ("llmviz", "ui", "pages") for p in (ROOT / d).rglob("*.py")] + [ROOT / "app.py"]
    assert [p for p in code if "translate_figure" in p.read_text(encoding="utf-8")] == []
    assert [p for p in code if "localize_figure" in p.read_text(encoding="utf-8")] == []


def test_mitigation_d_and_accuracy_on_separate_axes():
    res = SimpleNamespace(effect_before=1.6, effect_after=0.2, recover_before=0.9, recover_after=0.55, layer=3)
    fig = mitigation_bars(res)
    axes = {tr.yaxis for tr in fig.data}
    assert axes == {"y", "y2"}
    d_vals = [tr.y[0] for tr in fig.data if tr.yaxis == "y"]
    acc_vals = [tr.y[0] for tr in fig.data if tr.yaxis == "y2"]
    assert d_vals == [1.6, 0.2] and acc_vals == [0.9, 0.55]
    assert tuple(fig.layout.yaxis2.range) == (0, 1.05)
    zh = mitigation_bars(res, labels=labels("zh"))
    assert "效应量 d" in [a.text for a in zh.layout.annotations]
