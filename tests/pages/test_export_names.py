"""Issue 13: every chart's PNG and every export is named from what it shows (page, model, view, layer/head,
method, settings; llmviz.report.export_name), never after a (truncated) title; exported HTML keeps full
axis labels. The pages are run under AppTest and the names read from the charts' plotly config
(tests.fixtures.apptest_util.chart_exports); tests.fixtures.apptest_util.assert_ok checks in every page test that no chart
is left without a name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import ui.common as common
from llmviz.report import export_name
from tests.fixtures.apptest_util import assert_charts_named, assert_ok, chart_exports, open_page


def _names(at) -> list[str]:
    assert_ok(at)
    return [name for name, _ in chart_exports(at)]


def _slug(folder) -> str:
    return export_name(str(folder))  # a local model folder is named by its folder: tiny_llama0 -> tiny-llama0


# ---------------------------------------------------------------- the check itself can fail
class _Chart:
    def __init__(self, config: str, spec: str):
        self.proto = type("P", (), {"config": config, "spec": spec})()


class _Run:
    def __init__(self, *charts):
        self.charts = charts

    def get(self, kind):
        return list(self.charts) if kind == "plotly_chart" else []


def test_a_chart_without_a_name_or_named_after_its_title_fails_the_check():
    spec = '{"layout": {"title": {"text": "Layer 3, head 2"}}}'
    assert_charts_named(_Run(_Chart('{"toImageButtonOptions": {"filename": "attention_smollm2_layer3-head2"}}', spec)))
    with pytest.raises(AssertionError, match="without an export name"):
        assert_charts_named(_Run(_Chart('{"displaylogo": false}', spec)))
    with pytest.raises(AssertionError, match="is the title"):
        assert_charts_named(_Run(_Chart('{"toImageButtonOptions": {"filename": "layer-3-head"}}', spec)))


def test_plot_config_names_the_png_and_leaves_the_default_alone():
    assert common.plot_config()["toImageButtonOptions"] == {"format": "png", "scale": 2}
    png = common.plot_config("training_live_overfit_causal_loss-curves")["toImageButtonOptions"]
    assert png["filename"] == "training_live_overfit_causal_loss-curves" and png["scale"] == 2
    assert common.plot_config("a/b c")["toImageButtonOptions"]["filename"] == "a-b-c"  # made file-safe
    assert "filename" not in common.PLOTLY_CONFIG["toImageButtonOptions"]


# ---------------------------------------------------------------- names per page
def test_attention_views_are_named_by_model_layer_and_head(tiny_llama_dir):
    m = _slug(tiny_llama_dir)
    at = open_page("pages/attention.py", str(tiny_llama_dir), query={"view": "stats", "layer": "1", "head": "2"})
    assert set(_names(at)) == {f"attention_{m}_entropy-by-head", f"attention_{m}_layer1-head2"}
    expected = {
        "head": [f"attention_{m}_layer1-head2"],
        "layer": [f"attention_{m}_layer1-all-heads"],
        "rollout": [f"attention_{m}_rollout"],
        "neuron": [f"attention_{m}_layer1-head2_neuron-query1"],
    }
    for view, names in expected.items():
        at.segmented_control(key="att_view").set_value(view).run()
        assert _names(at) == names, view
    at.segmented_control(key="att_view").set_value("formula").run()
    steps = _names(at)
    assert len(steps) > 10 and len(set(steps)) == len(steps)  # one name per step, none repeated
    assert steps[0] == f"attention_{m}_layer1-head2_step1-x-rmsnorm-h"
    assert f"attention_{m}_layer1-head2_step{len(steps)}-block-output-before-residual" == steps[-1]


def test_explain_names_say_model_and_methods(tiny_llama_dir):
    m = _slug(tiny_llama_dir)
    at = open_page("pages/explain.py", str(tiny_llama_dir), query={"text": "the doctor said that"})
    at.multiselect(key="ex_methods").set_value(["integrated_gradients"]).run()
    at.button(key="ex_attr_start").click().run()
    assert _names(at) == [f"explain_{m}_integrated-gradients"]
    at.multiselect(key="ex_methods").set_value(["grad_x_input", "occlusion"]).run()
    at.button(key="ex_attr_start").click().run()
    assert _names(at) == [f"explain_{m}_grad-x-input_occlusion", f"explain_{m}_method-agreement"]
    at.segmented_control(key="ex_section").set_value("logit_lens").run()
    lens, by_layer = _names(at)
    assert lens.startswith(f"explain_{m}_logit-lens_target-") and by_layer == f"{lens}_by-layer"
    at.segmented_control(key="ex_section").set_value("ablation").run()
    at.button(key="ex_abl_start").click().run()
    assert _names(at) == [f"explain_{m}_head-ablation", f"explain_{m}_layer-ablation"]


def test_playground_names_say_model_preset_and_step(tiny_llama_dir, tiny_mlm_dir):
    m = _slug(tiny_llama_dir)
    at = open_page("pages/playground.py", str(tiny_llama_dir), query={"preset": "creative"})
    at.slider(key="pg_max_creative").set_value(2).run()
    at.button(key="pg_generate").click().run()
    assert _names(at) == [
        f"playground_{m}_creative_probabilities",
        f"playground_{m}_creative_step-0-alternatives",
    ]
    at = open_page("pages/playground.py", str(tiny_mlm_dir), query={"preset": "fill_mask"})
    at.text_area(key="pg_fill_text").input("The [MASK] and the [MASK].").run()
    mlm = _slug(tiny_mlm_dir)
    assert _names(at) == [f"playground_{mlm}_fill-mask_mask-1", f"playground_{mlm}_fill-mask_mask-2"]


def test_intervene_names_say_model_section_and_site(tiny_llama_dir):
    from tests.pages.test_page_intervene import CLEAN, CORRUPT

    m = _slug(tiny_llama_dir)
    at = open_page("pages/intervene.py", str(tiny_llama_dir), query={"section": "patching", "text": CLEAN})
    at.text_input(key="iv_corrupt_next_token").input(CORRUPT).run()
    at.multiselect(key="iv_sites").set_value(["resid", "head"]).run()
    next(b for b in at.button if b.key == "iv_run_patch").click().run()
    assert _names(at) == [f"intervene_{m}_patching-resid", f"intervene_{m}_patching-head"]
    at.segmented_control(key="iv_section").set_value("dla").run()
    next(b for b in at.button if b.key == "iv_run_dla").click().run()
    assert _names(at) == [
        f"intervene_{m}_dla_by-component",
        f"intervene_{m}_dla_by-head",
        f"intervene_{m}_dla_vs-patching",
    ]
    at.segmented_control(key="iv_section").set_value("steering").run()
    next(b for b in at.button if b.key == "iv_run_vec").click().run()
    assert _names(at) == [f"intervene_{m}_steering-layer-1_log-prob-curve"]  # 2 layers: layer 1 by default


def test_training_names_say_experiment_and_settings():
    at = open_page("pages/training.py", query={"preset": "bias"})
    assert _names(at) == ["training_bias_skew100pct_corpus-counts"]  # the corpus preview, before any run
    at = open_page("pages/training.py", query={"preset": "overfit"})
    for key, value in (("trn_stories", 8), ("trn_epochs", 2), ("trn_d_model", 32), ("trn_d_ff", 64)):
        at.number_input(key=key).set_value(value)
    at.button(key="trn_run").click().run()
    assert _names(at) == ["training_live_custom_causal_loss-curves"]  # settings changed: no preset's name


def test_positional_names_say_section_model_and_settings(tiny_llama_dir):
    q = {"section": "sinusoidal", "d_model": "16", "max_len": "40", "base": "100"}
    at = open_page("pages/positional.py", str(tiny_llama_dir), query=q)
    s = "d16-len40-base100"
    assert _names(at) == [
        f"positional_waves_{s}",
        f"positional_heatmap_{s}",
        f"positional_distance_{s}-cosine",
        f"positional_dmatrix_{s}-cosine",
        f"positional_shift_{s}-shift5",
    ]
    m = _slug(tiny_llama_dir)
    at.segmented_control(key="pos_section").set_value("rope").run()
    names = _names(at)
    assert names and all(n.startswith(f"positional_{m}_rope-") and "_hd" in n for n in names), names
    at.segmented_control(key="pos_section").set_value("ablation").run()
    assert _names(at) == [f"positional_{m}_ablation-next_seed0"]


# ---------------------------------------------------------------- exported HTML keeps full labels
def _html_layout(html: str) -> dict:
    """The layout object of the exported page's ``Plotly.newPlot(id, data, layout, config)`` call."""
    import json

    dec = json.JSONDecoder()
    rest = html[html.rindex("Plotly.newPlot(") + len("Plotly.newPlot(") :]
    _, i = dec.raw_decode(rest.lstrip())  # the div id
    rest = rest.lstrip()[i:].lstrip(" ,\n")
    _, i = dec.raw_decode(rest)  # the traces
    layout, _ = dec.raw_decode(rest[i:].lstrip(" ,\n"))
    return layout


def _figures() -> dict:
    import numpy as np

    from llmviz.explain.attribution import Attribution
    from llmviz.train.loop import History
    from llmviz.viz import attention as VA
    from llmviz.viz import explain as VE
    from llmviz.viz import generate as VG
    from llmviz.viz import interventions as VI
    from llmviz.viz import train as VT

    toks = ["The", "nationality (n=8) of a very long token label", "sat"]
    slot = type("Slot", (), {"candidates": ["a very long candidate word"], "probs": np.array([1.0]), "mask_number": 1})
    attr = Attribution("integrated_gradients", toks, np.array([0.1, -0.5, 0.4]), np.zeros(3, bool), "logit", {})
    hist = History(step=[1, 2], train_loss=[3.0, 2.0], val_loss=[3.1, 2.5], total_steps=2, best_index=1)
    return {
        "attention_heatmap": lambda: VA.attention_heatmap(toks, np.full((3, 3), 1 / 3), "Layer 0, head 0"),
        "attention_layer": lambda: VA.layer_small_multiples(toks, np.full((4, 3, 3), 1 / 3), 0),
        "patch_heatmap": lambda: VI.patch_heatmap(np.zeros((2, 3)), "resid", toks, toks, "restored", "position"),
        "fill_mask": lambda: VG.fill_mask_chart(slot(), "masked_lm"),
        "explain_heatmap": lambda: VE.method_heatmap([attr]),
        "loss_curves": lambda: VT.loss_curves(hist, "Training and validation loss"),
    }


@pytest.mark.parametrize(
    "builder",
    ["explain_heatmap", "attention_heatmap", "attention_layer", "patch_heatmap", "loss_curves", "fill_mask"],
)
def test_exported_html_of_page_figures_has_automargin_on_every_axis(builder, monkeypatch):
    """export_buttons passes every figure through ui.links.fit_figure: every axis of the exported HTML
    (subplots included) keeps its long labels (automargin)."""
    fig = _figures()[builder]()
    files = {}

    class _Col:
        def download_button(self, label, data, file_name, mime, key, **kw):
            files[file_name] = data

    monkeypatch.setattr(common.st, "columns", lambda n: [_Col() for _ in range(n)])
    common.export_buttons("k", fig=fig, stem="x_y", data=pd.DataFrame({"a": [1]}))
    layout = _html_layout(files["x_y.html"]())
    axes = {k: v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))}
    assert {"xaxis", "yaxis"} <= set(axes), sorted(layout)
    assert all(v.get("automargin") is True for v in axes.values()), {k: v.get("automargin") for k, v in axes.items()}


def test_export_names_of_positional_settings_are_readable():
    from ui.views.positional import _name

    assert _name("waves", {"d_model": 128, "max_len": 100, "base": 10000.0}) == "positional_waves_d128-len100-base10000"
    assert _name("rope_angles", {"model": "/home/me/models/SmolLM2 135M/", "head_dim": 64, "theta": 1e6}) == (
        "positional_smollm2-135m_rope-angles_hd64-theta1000000"
    )
    assert _name("ablation_att", {"model": "minilm", "text": "ignored", "layer": 3, "head": 2, "seed": 0}) == (
        "positional_minilm_ablation-att_layer3-head2-seed0"
    )
    assert Path(_name("x", {"model": "a/b:c"})).name == _name("x", {"model": "a/b:c"})  # no separators
