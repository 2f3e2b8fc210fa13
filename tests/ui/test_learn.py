"""Learn content as data: every card and tour step links to an existing page with parameters
that follow the deep-link contract, texts exist in both languages, and links round-trip."""

import json
import re
from pathlib import Path

import pytest

from ui import learn_content as L
from ui.links import link_for, parse_link
from ui.registry import PAGES

ROOT = Path(__file__).resolve().parents[2]


def _cat(lang, page):
    return json.loads((ROOT / "llmviz" / "catalogues" / lang / f"{page}.json").read_text(encoding="utf-8"))


def test_page_files_match_the_navigation():
    assert L.PAGE_FILES == {p.url: p.file for p in PAGES}
    assert all((ROOT / f).is_file() for f in L.PAGE_FILES.values())


@pytest.mark.parametrize("name,link", L.all_links(), ids=[n for n, _ in L.all_links()])
def test_every_link_follows_the_contract(name, link):
    assert link.page in L.PAGE_FILES
    assert L.check_link(link) == []


def test_check_link_finds_bad_links():
    assert L.check_link(L.Link("nowhere", {})) != []
    assert any("view" in p for p in L.check_link(L.Link("attention", {"view": "sideways"})))
    assert any("layer" in p for p in L.check_link(L.Link("attention", {"layer": "two"})))
    assert any("colour" in p for p in L.check_link(L.Link("bias", {"colour": "red"})))
    assert any("preset" in p for p in L.check_link(L.Link("training", {"preset": "fill_mask"})))
    assert L.check_link(L.Link("positional", {"section": "rope", "base": "500.5", "lang": "zh"})) == []


def test_every_section_value_of_every_page_is_reachable_from_learn():
    """Each section/view/preset named by the contract is demonstrated by some card or tour step."""
    used = {(link.page, str(link.params.get(L.SELECTOR[link.page]))) for _, link in L.all_links()}
    missing = [
        (page, value)
        for page, spec in L.DEEP_LINKS.items()
        if page != "home"
        for value in spec[L.SELECTOR[page]]
        if (page, value) not in used
    ]
    assert not missing, missing


def test_course_topics_are_all_there():
    required = {
        "background": {
            "rise_of_llms",
            "applications",
            "risk_data_bias",
            "risk_misinformation",
            "risk_privacy",
            "risk_malicious_use",
        },
        "core": {"nlp", "deep_learning", "pretraining", "transfer_learning"},
        "transformer": {"self_attention", "multi_head", "positional_encoding"},
        "pretraining": {"mlm", "nsp", "next_token", "fine_tuning"},
        "formulas": {"self_attention", "multi_head", "positional_encoding"},
        "trends": {"trend_scale", "trend_multimodality", "trend_interpretability", "trend_control", "trend_ethics"},
        "faq": {"faq_overfitting", "faq_data_bias", "faq_interpretability"},
    }
    for section, ids in required.items():
        assert ids <= set(L.SECTIONS[section]), (section, ids - set(L.SECTIONS[section]))
    assert {f"app_{p}" for p in ("translation", "summarization", "qa", "code", "creative")} <= set(
        L.SECTIONS["applications"]
    )
    in_sections = {cid for ids in L.SECTIONS.values() for cid in ids}
    assert in_sections == set(L.CARDS)  # no orphan card, no dangling id
    assert L.HOME_SECTIONS[0] == "tour" and set(L.HOME_SECTIONS[1:]) == set(L.SECTIONS)


def test_the_three_formulas_are_the_textbook_ones():
    f = {cid: c.formula for cid, c in L.CARDS.items() if c.formula}
    compact = {k: re.sub(r"\\[,!;: ]|\s", "", v) for k, v in f.items()}
    assert r"\mathrm{softmax}\left(\frac{QK^{\top}}{\sqrt{d_k}}\right)V" in compact["self_attention"]
    assert r"\mathrm{Concat}(\mathrm{head}_1,\ldots,\mathrm{head}_h)W^{O}" in compact["multi_head"]
    assert r"\mathrm{Attention}(QW_i^{Q},KW_i^{K},VW_i^{V})" in compact["multi_head"]
    pe = compact["positional_encoding"]
    assert r"PE_{(pos,2i)}=\sin\left(\frac{pos}{10000^{2i/d_{\mathrm{model}}}}\right)" in pe
    assert r"PE_{(pos,2i+1)}=\cos\left(\frac{pos}{10000^{2i/d_{\mathrm{model}}}}\right)" in pe
    for latex in f.values():  # balanced braces, or KaTeX shows an error box
        depth = 0
        for ch in latex:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0
        assert depth == 0


def _sentences(text: str, lang: str) -> int:
    if lang == "zh":
        return len(re.findall(r"[。！？]", text))
    return len(re.findall(r"[.!?](?=\s+[A-Z'‘“(]|\s*$)", text))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_card_texts(lang):
    cat = _cat(lang, "learn")
    for card in L.CARDS.values():
        for part in card.parts:
            name = card.key(part).split(".", 1)[1]
            assert cat.get(name, "").strip(), f"{lang}: missing {name}"
        n = _sentences(cat[f"card_{card.id}_body"], lang)
        assert 2 <= n <= 5, f"{lang} card {card.id}: {n} sentences"
    for card in (c for c in L.CARDS.values() if c.formula):
        symbols = cat[f"card_{card.id}_symbols"]
        assert symbols.count("\n- ") >= 3, f"{card.id}: explain each symbol on its own line"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_symbols_explained_cover_the_formula(lang):
    cat = _cat(lang, "learn")
    for cid, needed in {
        "self_attention": ("$Q$", "$K$", "$V$", "d_k", "softmax"),
        "multi_head": ("$h$", "W_i^{Q}", "W^{O}", "Concat", "head"),
        "positional_encoding": ("$pos$", "$i$", "d_{\\mathrm{model}}", "10000"),
    }.items():
        text = cat[f"card_{cid}_symbols"]
        assert all(s in text for s in needed), (cid, [s for s in needed if s not in text])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tour_steps(lang):
    cat = _cat(lang, "learn")
    ids = [s.id for s in L.TOUR]
    assert len(ids) == len(set(ids)) >= 10
    for step in L.TOUR:
        for part in step.parts:
            assert cat.get(f"tour_{step.id}_{part}", "").strip(), f"{lang}: tour {step.id} {part}"
        assert cat[f"tour_{step.id}_question"].rstrip().endswith(("?", "？"))
    # From "what is a language model" to "is this model biased?".
    assert L.TOUR[0].link.params["preset"] == "fill_mask"
    assert "is_model_biased" in ids and ids.index("is_model_biased") > len(ids) // 2


def test_clamp_step():
    n = len(L.TOUR)
    assert [L.clamp_step(v) for v in (1, "3", 0, -5, n + 4, "x", None, str(n))] == [1, 3, 1, 1, n, 1, 1, n]


TRICKY = [
    "The animal didn't cross the street because it was too tired.",
    "a & b = c #1 100% + more",
    "它太累了 😀 مرحبا بالعالم",
    "</script><b>x</b>",
    "  spaces  ",
    "?view=head&layer=9",
]


@pytest.mark.parametrize("text", TRICKY)
def test_link_round_trip(text):
    state = {"text": text, "layer": 3, "head": 0, "view": "formula", "model": "minilm", "text_b": None}
    page, params = parse_link(link_for("attention", state))
    assert page == "attention"
    assert params == {"text": text, "layer": "3", "head": "0", "view": "formula", "model": "minilm"}
    # Absolute links (what copy_link shows) parse the same way.
    assert parse_link("http://127.0.0.1:8501/app" + link_for("attention", state)) == (page, params)


def test_link_for_encodes_lists_and_flags():
    page, params = parse_link(link_for("bias", {"words": ["he", "she"], "presenter": True, "x": False}))
    assert json.loads(params["words"]) == ["he", "she"] and params["presenter"] == "1" and params["x"] == "0"
    # Home / Learn is the default page, served at the root.
    assert link_for("home", {"section": "faq"}) == "/?section=faq" and link_for("home", {}) == "/"
    assert parse_link("/?section=faq") == ("home", {"section": "faq"}) == parse_link("http://h:1/base/?section=faq")


@pytest.mark.parametrize("name,link", L.all_links()[:3] + L.all_links()[-2:])
def test_card_link_round_trips_through_a_url(name, link):
    page, params = parse_link(link_for(link.page, dict(link.params)))
    assert L.Link(page, params).query() == link.query()


def test_high_contrast_and_presenter_restyle_figures():
    import plotly.colors as pc
    import plotly.graph_objects as go

    from ui.links import OKABE_ITO, apply_presentation, colorscale, palette

    fig = go.Figure(
        [
            go.Heatmap(z=[[0, 1], [1, 0]]),
            go.Heatmap(z=[[-1, 1]], zmid=0, colorscale="RdBu"),
            go.Heatmap(z=[[-1, 1]], colorscale="PiYG"),
            go.Scatter(y=[1, 2], marker={"color": [1, 2]}),
        ]
    )
    before = fig.to_json()
    out = apply_presentation(fig, presenter=True, contrast=True)
    assert fig.to_json() == before  # the caller's figure is untouched

    def colours(scale):
        return [c for _, c in scale]

    cividis, puor = colours(pc.get_colorscale("Cividis")), colours(pc.get_colorscale("PuOr"))
    assert colours(out.data[0].colorscale) == cividis  # sequential
    assert colours(out.data[1].colorscale) == puor  # zmid set: diverging
    assert colours(out.data[2].colorscale) == puor  # a known diverging scale
    assert colours(out.data[3].marker.colorscale) == cividis  # colour-mapped markers
    import plotly.express as px

    imshow = apply_presentation(px.imshow([[0.1, 0.9], [0.5, 0.2]]), presenter=False, contrast=True)
    assert colours(imshow.layout.coloraxis.colorscale) == cividis  # scale kept in layout.coloraxis
    assert list(out.layout.colorway) == list(OKABE_ITO)
    assert out.layout.font.size >= 18
    assert apply_presentation(fig, presenter=False, contrast=False) is fig
    plain = apply_presentation(fig, presenter=True, contrast=False)
    assert plain.data[1].colorscale == fig.data[1].colorscale and plain.layout.colorway is None
    assert (colorscale(contrast=True), colorscale(True, contrast=True)) == ("Cividis", "PuOr")
    assert colorscale(contrast=False) != "Cividis" and palette(contrast=False) is None
    # Okabe–Ito: the eight colours stay distinct in lightness enough to tell apart in grey.
    grey = sorted(
        round(0.299 * int(c[1:3], 16) + 0.587 * int(c[3:5], 16) + 0.114 * int(c[5:7], 16))
        for c in palette(contrast=True)
    )
    assert len(set(grey)) == 8


# --- Every link opens its page (AppTest), shows what it names, and shows no missing-key marker.


def _unique_links():
    seen = {}
    for name, link in L.all_links():
        seen.setdefault((link.page, tuple(sorted(link.query().items()))), (name, link))
    return list(seen.values())


UNIQUE = _unique_links()
WIDGETS = (
    "text_area",
    "text_input",
    "number_input",
    "selectbox",
    "radio",
    "select_slider",
    "slider",
    "multiselect",
    "toggle",
    "checkbox",
)


def _widget_values(at):
    values = []
    for kind in WIDGETS:
        values += [w.value for w in getattr(at, kind)]
    values += [w.value for w in at.get("button_group")]
    return values


def _same(widget_value, wanted: str) -> bool:
    if isinstance(widget_value, (list, tuple)):
        return any(_same(v, wanted) for v in widget_value)
    if str(widget_value) == wanted:
        return True
    try:
        return float(widget_value) == float(wanted)
    except (TypeError, ValueError):
        return False


def _page_reads(page_file: str, name: str) -> bool:
    """Whether the page (or its helpers under ui/) reads ``?name=`` at all."""
    sources = [(ROOT / page_file).read_text(encoding="utf-8")]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / "ui").glob(f"{page_file[6:-3]}*.py")]
    return any(f'"{name}"' in src for src in sources)


@pytest.mark.parametrize("name,link", UNIQUE, ids=[n for n, _ in UNIQUE])
def test_link_opens_its_page_with_its_preset(name, link, tiny_llama_dir):
    """Each distinct card / tour link, opened as a fresh session with its query parameters: the
    page runs without an exception, shows no missing-key marker (each page's links alternate between
    English and Chinese), and
    every parameter the page reads shows up as the value of one of its widgets (the section, view
    or preset picked; the text; the layer …). SmolLM2 links run on a tiny Llama of the same kind
    (causal LM, RoPE, GQA) to keep the test fast; MiniLM links run on MiniLM."""
    from streamlit.testing.v1 import AppTest

    from tests.fixtures.apptest_util import APP, assert_ok
    from tests.pages.test_page_home import all_text
    from ui.common import MODEL_KEY

    same_page = [n for n, other in UNIQUE if other.page == link.page]
    lang = "zh" if same_page.index(name) % 2 else "en"  # every page in both languages
    model = {"smollm2": str(tiny_llama_dir)}.get(link.params.get("model", "minilm"), link.params.get("model", "minilm"))
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.session_state[MODEL_KEY] = model  # what the sidebar picker does with ?model=
    for key, value in {**link.query(), "lang": lang}.items():
        at.query_params[key] = value
    at.switch_page(link.file)
    at.run()
    assert_ok(at)
    assert at.title, "the page did not draw"
    text = all_text(at)
    assert "⟦" not in text, [line for line in text.splitlines() if "⟦" in line][:5]
    selector = L.SELECTOR[link.page]
    assert link.params[selector] in _picker_values(at), f"{name}: the page shows another {selector}"
    values = _widget_values(at)
    for key, wanted in link.query().items():
        if key in L.GLOBAL_PARAMS or key == selector or not _page_reads(link.file, key):
            continue
        assert any(_same(v, wanted) for v in values), f"{name}: ?{key}={wanted} is not shown by any widget"


def _picker_values(at) -> list:
    """Values of the page's choice widgets (segmented controls, radios, select boxes)."""
    return [w.value for kind in ("radio", "selectbox") for w in getattr(at, kind)] + [
        w.value for w in at.get("button_group")
    ]
