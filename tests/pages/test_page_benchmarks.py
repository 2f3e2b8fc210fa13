"""AppTest of the Bias page's StereoSet and Runs sections (English and 中文)."""

import pytest

from llmviz.bias import stereoset as SS
from llmviz.runs import store as RS
from tests.fixtures.apptest_util import assert_ok, open_page, texts

PAGE = "pages/bias.py"


def test_stereoset_section_scores_the_illustrative_set(store, tiny_llama, tiny_llama_dir):
    at = open_page(PAGE, str(tiny_llama_dir), query={"section": "stereoset"})
    assert_ok(at)
    assert "not StereoSet data" in texts(at)
    at.button(key="bias_ss_run").click().run()
    assert_ok(at)
    ref = SS.run_stereoset(tiny_llama, SS.illustrative_set(), n_boot=200)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["SS (50 = no preference)"]) == pytest.approx(ref.results["overall"]["SS Score"], abs=0.06)
    assert float(metrics["ICAT (100 = ideal)"]) == pytest.approx(ref.results["overall"]["ICAT Score"], abs=0.06)
    table = at.dataframe[0].value
    assert {"LM Score CI low", "SS Score CI high"} <= set(table.columns) and table.iloc[-1]["split"] == "overall"
    drill = at.dataframe[1].value
    assert list(drill["gold_label"]) == ["stereotype", "anti-stereotype", "unrelated"]
    first = SS.illustrative_set().intrasentence[0]
    assert list(drill["score"]) == pytest.approx([ref.scores[s.id] for s in first.sentences], rel=1e-5)
    assert "run #1" in texts(at)
    # a second run on the same data, then the Runs section compares them
    at.button(key="bias_ss_run").click().run()
    runs = open_page(PAGE, str(tiny_llama_dir), query={"section": "runs"})
    assert_ok(runs)
    assert len(runs.dataframe[0].value) == 2
    groups = runs.dataframe[2].value
    assert set(groups["group"]) >= {"intrasentence/gender", "intersentence/religion", "overall"}
    assert groups["mean_diff"].abs().max() == pytest.approx(0.0)  # same model, same data


def test_sections_in_chinese_and_encoder_message(store, tiny_encoder_dir):
    at = open_page(PAGE, str(tiny_encoder_dir), query={"section": "stereoset", "lang": "zh"})
    assert_ok(at)
    assert "编码器" in texts(at)
    runs = open_page(PAGE, str(tiny_encoder_dir), query={"section": "runs", "lang": "zh"})
    assert_ok(runs)
    assert "还没有运行记录" in texts(runs)


def test_corrupt_store_warns_and_the_audit_still_shows(store, tiny_llama_dir):
    (store / "runs.sqlite").write_bytes(b"garbage" * 500)
    at = open_page(PAGE, str(tiny_llama_dir), query={"section": "stereoset"})
    at.button(key="bias_ss_run").click().run()
    assert_ok(at)
    assert any("corrupt" in w.value for w in at.warning)
    assert len(at.metric) == 3
    runs = open_page(PAGE, str(tiny_llama_dir), query={"section": "runs"})
    assert_ok(runs)
    assert any("corrupt" in e.value for e in runs.error)


def test_weat_boxes_keep_sentences_with_commas_whole(store, tiny_encoder_dir):
    """One item per line: a sentence with commas is one item (splitting at commas made 8 sentences into 40)."""
    from llmviz.bias import weat as W
    from llmviz.models.loading import load_model

    enc = load_model(str(tiny_encoder_dir))
    X = ["John, a manager, leads the team.", "Paul, an engineer, fixes machines, quickly and well."]
    Y = ["Amy, a manager, leads the team.", "Sarah, an engineer, fixes machines, quickly and well."]
    at = open_page(PAGE, str(tiny_encoder_dir), query={"section": "weat"})
    tid = "weat1_flowers_insects"  # the default word set
    at.text_area(key=f"bias_weat_{tid}_X").set_value("\n".join(X)).run()
    at.text_area(key=f"bias_weat_{tid}_Y").set_value("\n".join(Y)).run()
    assert_ok(at)
    s = W.word_sets()["tests"][tid]
    ref = W.weat_test(enc, X, Y, s["A"], s["B"])
    d = [m for m in at.metric if m.label.startswith("Effect size")][0].value
    assert float(d) == pytest.approx(ref.effect_size[-1], abs=1e-3)
    assert len(RS.list_runs(kind="weat")[0]["summary"]["tests"]) == 1
    assert RS.get_run(RS.list_runs(kind="weat")[0]["id"])["n_items"] == 4  # 2 + 2 target items, not 10


def test_comparable_pair_is_the_newest_pair_of_one_kind_preferring_the_same_data():
    def run(i, kind, sha="x"):
        return {"id": i, "kind": kind, "data_sha256": sha}

    assert RS.comparable_pair([run(1, "crows"), run(2, "stereoset")]) is None
    # the newest run (stereoset) has no partner: the newest comparable pair is the two crows runs
    assert RS.comparable_pair([run(3, "stereoset"), run(2, "crows"), run(1, "crows")]) == (1, 2)
    # same kind, the partner on the same data file wins over a newer one on other data
    assert RS.comparable_pair([run(4, "crows", "a"), run(3, "crows", "b"), run(2, "crows", "a")]) == (2, 4)


def test_runs_opens_on_a_comparable_pair_not_on_a_run_without_partner(store, tiny_llama_dir):
    common = dict(summary={"mean": 0.1}, model_hash="h", data_sha256="d")
    RS.record_run("crows_pairs", "m1", items=[{"key": "k1", "group": "g", "value": 0.5}], **common)
    RS.record_run("crows_pairs", "m2", items=[{"key": "k1", "group": "g", "value": 0.25}], **common)
    RS.record_run("stereoset", "m1", summary={}, items=[{"key": "s", "group": "g", "value": 1.0}])
    at = open_page(PAGE, str(tiny_llama_dir), query={"section": "runs"})
    assert_ok(at)
    assert at.selectbox(key="bias_runs_a").value == 1 and at.selectbox(key="bias_runs_b").value == 2
    assert "No other" not in texts(at)
    assert any(m.value == "-0.250" for m in at.metric)  # the comparison is drawn at once
