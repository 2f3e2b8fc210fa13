"""AppTest: the Home / Learn page — cards per section with links to the right page and preset,
the guided tour (progress, next/previous, opening a step's live view, the sidebar controls),
English/中文, presenter mode, and the state → link → state round trip."""

from pathlib import Path

import pytest
from google.protobuf import text_format
from streamlit.testing.v1 import AppTest

from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape
from ui.common import MODEL_KEY
from ui.i18n import MISSING, catalogue
from ui.learn_content import CARDS, SECTIONS, TOUR
from ui.links import PRESENTER_FONT_PX, parse_link

HOME = "pages/home.py"
ROOT = Path(__file__).resolve().parents[2]


def all_text(at) -> str:
    """Every string of every element and block (labels, options, help, markdown, links)."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(text_format.MessageToString(proto, as_utf8=True))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def page_links(at):
    return [
        (pl.proto.page, pl.proto.label, dict(parse_link("/x?" + pl.proto.query_string)[1]))
        for pl in at.get("page_link")
    ]


@pytest.fixture(scope="module")
def home(tiny_encoder_dir):
    at = open_page(HOME, str(tiny_encoder_dir))
    assert_ok(at)
    return at


def test_home_walks_every_section_and_every_card_links_its_live_view(home):
    at = home
    en = catalogue("en", "learn")
    for section, ids in SECTIONS.items():
        at.button_group(key="home_section").set_value(section).run()
        assert_ok(at)
        assert at.query_params["section"] == section  # the URL follows the choice
        links = sorted(page_links(at), key=str)  # two columns: AppTest lists one column, then the other
        expected = sorted(
            ((CARDS[cid].link.page, en[f"card_{cid}_link"], CARDS[cid].link.query()) for cid in ids), key=str
        )
        assert links == expected
        assert len(at.latex) == sum(1 for cid in ids if CARDS[cid].formula)
        shown = texts(at)
        assert all(en[f"card_{cid}_title"] in shown for cid in ids)
        assert MISSING[0] not in all_text(at)


def test_tour_walks_first_to_last_with_progress(home):
    at = home
    at.button_group(key="home_section").set_value("tour").run()
    en = catalogue("en", "learn")
    n = len(TOUR)
    assert at.button(key="home_tour_prev").disabled
    for i, step in enumerate(TOUR, start=1):
        assert en[f"tour_{step.id}_title"] in texts(at)
        assert en[f"tour_{step.id}_question"] in texts(at)
        assert f"Step {i} of {n}" in all_text(at)
        assert at.get("progress")[0].proto.value == int(100 * i / n)
        assert at.query_params.get("step", "1") == str(i)
        if i < n:
            at.button(key="home_tour_next").click().run()
            assert_ok(at)
    assert not at.button(key="home_tour_prev").disabled
    assert en["tour_done"] in texts(at)
    at.button(key="home_tour_prev").click().run()
    assert f"Step {n - 1} of {n}" in all_text(at)
    at.button(key="home_tour_next").click().run()
    assert f"Step {n} of {n}" in all_text(at)
    at.button(key="home_tour_restart").click().run()
    assert f"Step 1 of {n}" in all_text(at) and at.query_params["step"] == "1"


def test_open_step_opens_its_page_with_its_params(tiny_encoder_dir):
    at = open_page(HOME, str(tiny_encoder_dir), query={"section": "tour", "step": "4"})
    assert "The attention formula, step by step" in texts(at)
    at.button(key="home_tour_open").click().run()
    assert_ok(at)
    assert {k: at.query_params[k] for k in TOUR[3].link.query()} == TOUR[3].link.query()
    assert at.session_state["tour_active"] is True and at.session_state["tour_step"] == 4


def _tour_sidebar_app():
    import streamlit as st

    from ui.learn import tour_sidebar

    st.session_state.setdefault("tour_active", True)
    st.session_state.setdefault("tour_step", 4)
    tour_sidebar(st.session_state.get("fake_page", "attention"))
    st.markdown(f"on {dict(st.query_params)}")


@pytest.mark.app_exception  # outside app.py, switch_page to the next step's page is refused
def test_sidebar_tour_controls():
    """Every page but Learn shows the step's question; Next opens the next step's live view;
    the controls vanish on Learn and after "End the tour"."""
    at = AppTest.from_function(_tour_sidebar_app, default_timeout=60)
    at.run()
    en = catalogue("en", "learn")
    assert en["tour_formula_question"] in all_text(at) and f"step 4 of {len(TOUR)}" in all_text(at)
    at.button(key="tour_sb_next").click().run()
    # Outside app.py there is no navigation, so the switch to step 5's page is refused — which
    # shows that Next asked for exactly that page.
    assert TOUR[4].link.file in at.exception[0].value
    assert at.session_state["tour_step"] == 5
    at = AppTest.from_function(_tour_sidebar_app, default_timeout=60)
    at.session_state["fake_page"] = "home"
    at.run()
    assert not at.button
    at.session_state["fake_page"] = "bias"
    at.run()
    assert len(at.button) == 3
    at.button(key="tour_sb_end").click().run()
    assert not at.button and at.session_state["tour_active"] is False


def test_link_with_another_model_switches_the_model_once(tiny_encoder_dir, tiny_mlm_dir):
    """A link opened inside a session (card, tour step) with ?model= loads that model; the user's
    own later choice in the picker then stands."""
    at = AppTest.from_file(str(ROOT / "tests" / "fixtures" / "picker_app.py"), default_timeout=120)
    at.session_state[MODEL_KEY] = str(tiny_encoder_dir)  # the session already has a model
    at.query_params["model"] = str(tiny_mlm_dir)
    at.run()
    assert f"active model: {tiny_mlm_dir}" in texts(at)
    at.text_input(key="picker_text_True").input(str(tiny_encoder_dir)).run()
    at.button(key="picker_load").click().run()
    assert_ok(at)
    assert f"active model: {tiny_encoder_dir}" in texts(at)  # ?model= still in the URL, not re-applied


def test_chinese_home_and_presenter_mode(tiny_encoder_dir):
    at = open_page(HOME, str(tiny_encoder_dir), query={"lang": "zh", "presenter": "true", "section": "formulas"})
    assert_ok(at)
    zh = catalogue("zh", "learn")
    shown = texts(at)
    assert zh["card_self_attention_title"] in shown and zh["card_multi_head_symbols"][:20] in shown
    assert "已加载模型" in shown and "层数 × 头数" in [m.label for m in at.metric]
    assert [label for _, label, _ in page_links(at)][0] == zh["card_self_attention_link"]
    assert all(params.get("lang") == "zh" for *_, params in page_links(at))  # links keep the language
    body = all_text(at)
    assert f"font-size: {PRESENTER_FONT_PX}px" in body
    assert MISSING[0] not in body
    assert not [e for e in at.expander if e.label == "全部模型信息"]  # advanced details hidden
    # Without presenter mode: no presenter CSS, the details are there.
    at2 = open_page(HOME, str(tiny_encoder_dir), query={"lang": "zh"})
    assert f"font-size: {PRESENTER_FONT_PX}px" not in all_text(at2)
    assert [e for e in at2.expander if e.label == "全部模型信息"]


def test_state_link_state_round_trip(tiny_encoder_dir):
    at = open_page(HOME, str(tiny_encoder_dir), query={"lang": "zh"})
    at.button_group(key="home_section").set_value("tour").run()
    for _ in range(6):
        at.button(key="home_tour_next").click().run()
    link = at.code[-1].value  # the "link to this view" box
    page, params = parse_link(link)
    assert (page, params["section"], params["step"], params["lang"]) == ("home", "tour", "7", "zh")
    again = open_page(HOME, str(tiny_encoder_dir), query=params)
    assert_ok(again)
    assert again.button_group(key="home_section").value == "tour"
    assert again.session_state["tour_step"] == 7
    assert catalogue("zh", "learn")[f"tour_{TOUR[6].id}_title"] in texts(again)
    assert again.code[-1].value == link  # the reopened view offers the same link


def test_bad_params_fall_back(tiny_encoder_dir, tmp_path):
    at = open_page(
        HOME,
        str(tiny_encoder_dir),
        query={"section": "nonsense", "step": "99", "lang": "xx", "model": str(tmp_path / "no_such_model")},
    )
    assert_ok(at)
    assert at.button_group(key="home_section").value == "tour"
    assert f"Step {len(TOUR)} of {len(TOUR)}" in all_text(at)  # clamped to the last step
    assert "Guided tour" in all_text(at)  # English
    # A link naming a model that does not load: the Learn content is all there, the facts card
    # says what went wrong instead of a traceback.
    # the message shows the name's first 80 characters (under pytest-xdist the temp path is longer than that)
    shown = str(tmp_path / "no_such_model")[:80]
    assert at.error and f"called '{shown}'" in " ".join(unescape(e.value) for e in at.error)
    assert not at.metric
