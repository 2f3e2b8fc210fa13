"""AppTest: each Training-lab section runs with small settings; deep links; sharing a trained model."""

from __future__ import annotations

import math

import pytest

from llmviz.models.loading import REGISTRY, load_model
from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape
from ui.registry import MODEL_KEY

PAGE = "pages/training.py"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path))  # trained models are saved here, not in ~/.cache
    before = set(REGISTRY)
    yield
    for mid in set(REGISTRY) - before:
        REGISTRY.pop(mid)


def test_live_section_trains_and_shows_curves_metrics_and_lesson():
    at = open_page(PAGE, query={"preset": "dropout"})
    assert_ok(at)
    assert at.selectbox(key="trn_preset").value == "dropout"
    assert at.slider(key="trn_dropout").value == pytest.approx(0.4)  # the preset filled the controls
    at.number_input(key="trn_stories").set_value(8)
    at.number_input(key="trn_epochs").set_value(3)
    at.number_input(key="trn_d_model").set_value(32)
    at.number_input(key="trn_d_ff").set_value(64)
    at.button(key="trn_run").click().run()
    assert_ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Step"] == "3 / 3"
    assert float(metrics["Gap (val − train)"]) == pytest.approx(
        float(metrics["Validation loss"]) - float(metrics["Training loss"]), abs=2e-3
    )
    verdict = " ".join(e.value for e in at.warning) + " ".join(e.value for e in at.success)
    assert "overfitting" in verdict.lower()  # the lesson box, one way or the other
    assert not at.error  # a lesson is never shown as an error (issue 13)
    assert at.get("plotly_chart")
    # share: saved, registered, re-loadable; the sidebar picker can make it the active model
    at.button(key="trn_share_live").click().run()
    assert_ok(at)
    mid = at.session_state["trn_share_live_id"]
    assert mid in REGISTRY and load_model(mid, owner=at.session_state["llmviz_session_owner"]).facts.source == "trained"
    assert "model picker" in texts(at)
    at.button(key="trn_share_live_act").click().run()
    assert at.session_state["llmviz_model_spec"] == mid


@pytest.mark.parametrize("overfits", [True, False])
def test_overfitting_verdict_is_a_warning_or_success_never_an_error(monkeypatch, overfits):
    """Issue 13: "Overfitting" is a finding about the run, shown as a warning; a healthy run as success."""
    from llmviz.train import loop

    monkeypatch.setattr(loop, "is_overfitting", lambda h: overfits)
    at = open_page(PAGE, query={"preset": "overfit"})
    for key, value in (("trn_stories", 8), ("trn_epochs", 2), ("trn_d_model", 32), ("trn_d_ff", 64)):
        at.number_input(key=key).set_value(value)
    at.button(key="trn_run").click().run()
    assert_ok(at)
    assert not at.error
    boxes = at.warning if overfits else at.success
    assert any("overfitting" in e.value.lower() for e in boxes), [e.value for e in boxes]
    if overfits:
        assert not any("overfitting" in e.value.lower() for e in at.success)


def test_bad_settings_show_a_message_not_a_traceback():
    at = open_page(PAGE)
    at.number_input(key="trn_d_model").set_value(48)
    at.number_input(key="trn_n_heads").set_value(5)
    at.run()
    assert_ok(at)
    assert "divisible" in " ".join(unescape(e.value) for e in at.error)


def test_stop_without_a_run_says_stopped():
    at = open_page(PAGE)
    at.button(key="trn_live_stop").click().run()
    assert_ok(at)
    assert "Stopped" in " ".join(w.value for w in at.warning)


def test_stop_keeps_a_copy_of_the_curves_the_stopped_run_goes_on_changing(monkeypatch):
    """With fast reruns, Stop starts a new run while the old one is still training; it appends to the
    same History (step first, the validation loss after evaluating). The stopped view drew that live
    object, so a half-appended evaluation raised IndexError and the curves vanished (a browser-test
    failure in CI). The page keeps a copy taken at each evaluation."""
    from llmviz.errors import LlmvizError
    from llmviz.train import experiments as X
    from llmviz.train.loop import History

    live = History(step=[2, 4], epoch=[1.0, 2.0], train_loss=[3.0, 2.5], val_loss=[3.1, 2.9], total_steps=8)

    def fake_run_live(params, on_eval=None, on_step=None):
        on_eval(live)
        raise LlmvizError("interrupted")  # the old run stops here in this test; in the app it goes on

    monkeypatch.setattr(X, "run_live", fake_run_live)
    at = open_page(PAGE)
    at.button(key="trn_run").click().run()
    live.step.append(6)  # the old run, still going: a new evaluation is half appended
    live.train_loss.append(2.0)
    at.button(key="trn_live_stop").click().run()
    assert_ok(at)
    assert "Stopped by you at step 4 of 8" in texts(at)
    fig = next(c for c in at.get("plotly_chart"))
    assert '"x":[2,4]' in fig.proto.spec.replace(" ", "")  # the curves as they were at the evaluation


def test_transfer_section_small():
    at = open_page(PAGE, query={"preset": "transfer"})
    assert at.segmented_control(key="trn_section").value == "transfer"
    at.multiselect(key="trn_tr_sizes").set_value([8])
    at.number_input(key="trn_tr_stories").set_value(50)
    at.number_input(key="trn_tr_epochs").set_value(1)
    at.number_input(key="trn_tr_steps").set_value(5)
    at.number_input(key="trn_tr_ntest").set_value(20)
    at.checkbox(key="trn_tr_minilm").uncheck()
    at.button(key="trn_tr_run").click().run()
    assert_ok(at)
    assert "labelled examples the fine-tuned" in texts(at)
    assert at.dataframe and at.get("plotly_chart")


def test_bias_section_small():
    at = open_page(PAGE, query={"preset": "bias"})
    at.number_input(key="trn_b_stories").set_value(50)
    at.number_input(key="trn_b_epochs").set_value(1)
    at.button(key="trn_b_run").click().run()
    assert_ok(at)
    labels = [m.label for m in at.metric]
    assert any("skewed corpus" in lab for lab in labels) and any("balanced corpus" in lab for lab in labels)
    assert "Data bias in → model bias out" in texts(at)


def test_memorization_section_small_and_bad_input():
    at = open_page(PAGE, query={"preset": "memorization"})
    at.text_input(key="trn_m_repeats").input("0, two").run()
    assert_ok(at)
    assert "whole numbers" in " ".join(unescape(e.value) for e in at.error)
    at.text_input(key="trn_m_repeats").input("0, 8").run()
    at.number_input(key="trn_m_stories").set_value(50)
    at.number_input(key="trn_m_epochs").set_value(1)
    at.number_input(key="trn_m_digits").set_value(2)
    at.button(key="trn_m_run").click().run()
    assert_ok(at)
    df = at.dataframe[0].value
    assert list(df["repeats"]) == [0, 8] and (df["exposure"] <= math.log2(100) + 1e-9).all()
    at.text_input(key="trn_m_prefix").input("the pin of </script> zebra").run()
    assert_ok(at)
    assert "vocabulary" in " ".join(w.value for w in at.warning)


def test_unknown_preset_falls_back_to_overfit():
    at = open_page(PAGE, query={"preset": "nonsense"})
    assert_ok(at)
    assert at.segmented_control(key="trn_section").value == "live"
    assert at.selectbox(key="trn_preset").value == "overfit"


@pytest.mark.parametrize("page,obj", [("positional", "mlm"), ("bias", "mlm"), ("explain", "causal")])
def test_trained_model_is_inspectable_on_other_pages(page, obj):
    """The pages run on a registered training-lab model (the attention module's checks on such a
    model are in tests/llmviz/train/test_train.py)."""
    from llmviz.train import experiments as X
    from llmviz.train import tiny

    tok = X.tokenizer_for(obj)
    model = tiny.build_model(tiny.TinyConfig(obj, "sinusoidal", 2, 32, 4, 64), tok).eval()
    mid = tiny.register_trained(model, tok, f"lab-{obj}", f"lab {obj}")
    at = open_page(f"pages/{page}.py", mid)
    assert_ok(at)
    if page == "positional":
        assert "sinusoidal" in texts(at)


def test_page_has_no_streamlit_magic_expressions():
    """A bare non-call expression on its own line is rendered by Streamlit's magic (this once
    dumped two config objects onto the page)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / PAGE).read_text(encoding="utf-8"))
    bare = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and not isinstance(n.value, (ast.Call, ast.Constant))
    ]
    assert not bare, f"magic expressions at lines {bare}"


def test_translator_section_trains_translates_and_says_unknown_words():
    """Issue 26: the translator trains a tiny config, shows its curves, alignment and a typed translation;
    an unknown word gets a message, not a traceback."""
    at = open_page(PAGE, query={"preset": "translator"})
    assert_ok(at)
    assert at.selectbox(key="trn_x_preset").value == "default"
    at.number_input(key="trn_x_ntrain_default").set_value(300)
    at.number_input(key="trn_x_steps_default").set_value(30)
    at.number_input(key="trn_x_d_default").set_value(32)
    at.button(key="trn_x_run").click().run()
    assert_ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Step"] == "30 / 30" and metrics["Exact match"].endswith("%")
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # loss, quality, heads over training, animation, all heads for the typed sentence
    assert any("frames" in c.proto.spec for c in charts)  # the cross-attention animation
    assert at.text_input(key="trn_x_text").value.startswith("the big dog")
    assert at.code[-1].value.split()[0] in {"lo", "la", "un", "una", "du", "tri"}  # greedy output: a Lingo word first
    assert at.dataframe  # the beam table
    at.button(key="trn_x_open").click().run()  # the translator becomes this session's model
    assert_ok(at)
    mid = at.session_state[MODEL_KEY]
    assert mid.startswith("lab-translator-lingo-") and at.query_params["model"] in (mid, [mid])
    links = [el.proto for el in at.get("page_link")]
    assert {lk.page.split("/")[-1] for lk in links} >= {"attention", "explain", "intervene"}
    at.text_input(key="trn_x_text").set_value("the zebra saw a <b>cat</b>").run()
    assert_ok(at)
    assert at.error and "zebra" in at.error[0].value and "<b>" not in at.error[0].value.replace("\\<b\\>", "")
    at.text_input(key="trn_x_text").set_value("cat the saw").run()
    assert not at.error and any("outside the toy grammar" in i.value for i in at.info)
    at.radio(key="trn_x_pair").set_value("zh").run()  # the 中文 variant: another vocabulary, trained anew
    at.button(key="trn_x_run").click().run()
    assert_ok(at)
    at.text_input(key="trn_x_text").set_value("a dog slept").run()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in at.code[-1].value)  # the greedy output (after the link box)
