"""AppTest of the bias page: each probe section runs with a model that supports it, and explains
itself when the model cannot run it."""

import pytest

from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape

PAGE = "pages/bias.py"


def _section(model, section):
    at = open_page(PAGE, model, query={"section": section})
    assert_ok(at)
    return at


def test_templates_on_tiny_mlm_and_encoder_message(tiny_mlm_dir):
    at = _section(str(tiny_mlm_dir), "templates")
    assert "Kurita" in texts(at)
    ranking = at.dataframe[0].value
    assert len(ranking) == 10 and set(ranking["highest for"]) <= {"man", "woman"}
    at.text_area(key="bias_tpl_targets").set_value("nurse\ncardiologist").run()
    assert_ok(at)
    assert set(at.dataframe[0].value["target"]) == {"nurse", "cardiologist"}
    at.text_input(key="bias_tpl").set_value("No slots here").run()
    assert any("exactly one {group}" in unescape(e.value) for e in at.error)
    enc = _section("minilm", "templates")
    assert "encoder without" in texts(enc) and "smollm2" in texts(enc)


def test_pairs_on_tiny_llama_with_drill_down(tiny_llama_dir):
    at = _section(str(tiny_llama_dir), "pairs")
    assert "illustrative" in texts(at).lower()
    at.button(key="bias_pairs_run").click().run()
    assert_ok(at)
    table = at.dataframe[0].value
    assert len(table) == 72 and {"score_more", "score_less"} <= set(table.columns)
    pct = [m for m in at.metric if m.label == "Stereotype preferred"][0].value
    assert float(pct.split()[0]) == pytest.approx(100 * (table["score_more"] > table["score_less"]).mean(), abs=0.06)
    assert at.slider(key="bias_pairs_layer").value == 1  # attention difference drawn for the last layer


def test_pairs_upload_errors(tiny_mlm_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    at = _section(str(tiny_mlm_dir), "pairs")
    at.radio(key="bias_pairs_src").set_value("path").run()
    at.text_input(key="bias_pairs_path").set_value(str(bad)).run()
    assert_ok(at)
    assert any("lacks the column(s)" in unescape(e.value) for e in at.error)


def test_counterfactual_on_tiny_llama(tiny_llama_dir, tiny_mlm_dir):
    at = _section(str(tiny_llama_dir), "counterfactual")
    at.number_input(key="bias_cf_n").set_value(2)
    at.number_input(key="bias_cf_tokens").set_value(3)
    at.button(key="bias_cf_run").click().run()
    assert_ok(at)
    assert len(at.dataframe[0].value) == 2  # one row per group
    mlm = _section(str(tiny_mlm_dir), "counterfactual")
    assert "causal LM" in texts(mlm)


def test_weat_and_mitigation_on_minilm(minilm):
    from llmviz.bias import weat as W

    at = _section("minilm", "weat")
    at.slider(key="bias_weat_layer").set_value(3).run()
    assert_ok(at)
    s = W.word_sets()["tests"]["weat1_flowers_insects"]  # the default set
    ref = W.weat_test(minilm, s["X"], s["Y"], s["A"], s["B"], n_samples=1000)
    d = [m for m in at.metric if m.label.startswith("Effect size")][0].value
    assert float(d) == pytest.approx(ref.effect_size[3], abs=1e-3)
    at = _section("minilm", "mitigation")
    at.button(key="bias_mit_run").click().run()
    assert_ok(at)
    assert "Gonen" in texts(at)
    assert len(at.dataframe[0].value) == 24  # one row per neutral word


def test_pair_drill_down_shows_both_sentences_and_the_pair_score(tiny_llama_dir):
    """Issue 13: the drill-down names the less-stereotyped sentence too and the pair's total score (both
    sentences' scores and their difference, as the run scored them); its token bars add up to that
    difference, the words that differ included (a causal LM scores every token of the sentence)."""
    import json

    at = _section(str(tiny_llama_dir), "pairs")
    at.button(key="bias_pairs_run").click().run()
    at.selectbox(key="bias_pairs_pick").set_value(3).run()
    assert_ok(at)
    row = at.dataframe[0].value.loc[3]
    shown = texts(at)
    assert row["sent_more"] in shown and row["sent_less"] in shown
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Score, more stereotypical"]) == pytest.approx(row["score_more"], abs=5e-4)
    assert float(metrics["Score, less stereotypical"]) == pytest.approx(row["score_less"], abs=5e-4)
    assert float(metrics["Difference (more − less)"]) == pytest.approx(row["difference"], abs=5e-4)
    bars = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    [tok] = [f for f in bars if "shared tokens" in f["layout"]["title"]["text"]]
    assert sum(_values(tr["y"]).sum() for tr in tok["data"]) == pytest.approx(row["difference"], abs=1e-3)


def _values(y):
    """A plotly JSON array: a list, or numpy as {"dtype", "bdata": base64} (plotly >= 6)."""
    import base64

    import numpy as np

    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).astype(float)
    return np.asarray(y, float)


def test_pairs_png_and_exports_named_after_data_and_model(tiny_llama_dir):
    import json

    at = _section(str(tiny_llama_dir), "pairs")
    at.button(key="bias_pairs_run").click().run()
    assert_ok(at)
    model = tiny_llama_dir.name.lower().replace("_", "-")
    names = {}
    for e in at.get("plotly_chart"):
        title = json.loads(e.proto.spec)["layout"]["title"]["text"]
        names[title[:12]] = json.loads(e.proto.config)["toImageButtonOptions"].get("filename")
    assert names["% of pairs w"] == f"starter-pairs_{model}_by-category"
    assert names["Score differ"] == f"starter-pairs_{model}_score-differences"
