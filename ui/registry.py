"""The one list of the app's pages and their sections, for app.py (navigation), the routers
(``ui.router.section_picker``), the Learn page's cards and tour (``ui.learn_content``), deep links
(``ui.links``) and the tests. Plain data: no streamlit import.

A page's *picker* is the control that chooses its part (section, view or preset): its URL parameter,
its widget key, its options and the catalogue keys of its label and option names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_PAGE = "home"  # served at the app's root URL ("/"), not at "/home"
MODEL_KEY = "llmviz_model_spec"  # session_state key holding the active model spec (sidebar picker, links)


@dataclass(frozen=True)
class Picker:
    """The control choosing a part of a page."""

    param: str  # URL parameter (?section=, ?view=, ?preset=)
    key: str  # widget key in session_state
    options: tuple[str, ...]
    label: str  # catalogue key of the control's label
    option: str  # catalogue key pattern of an option's name, with {o} for the option
    default: str = ""

    @property
    def first(self) -> str:
        return self.default or self.options[0]


@dataclass(frozen=True)
class Page:
    url: str  # url path (also the catalogue of its texts)
    file: str
    icon: str
    picker: Picker | None = None
    params: dict[str, Any] = field(default_factory=dict)  # other URL parameters it reads: name -> type/choices


ATTENTION_VIEWS = ("stats", "head", "layer", "rollout", "bertviz", "formula", "neuron")
POSITIONAL_SECTIONS = ("sinusoidal", "learned", "rope", "ablation")
BIAS_SECTIONS = ("templates", "pairs", "counterfactual", "weat", "mitigation", "stereoset", "mechanism", "runs")
EXPLAIN_SECTIONS = ("attribution", "logit_lens", "ablation", "flow")
INTERVENE_SECTIONS = ("patching", "dla", "steering")
PLAYGROUND_PRESETS = ("translation", "summarization", "qa", "code", "creative", "fill_mask")
TRAINING_SECTIONS = ("live", "transfer", "bias", "memorization", "translator")
TRAINING_LIVE_PRESETS = ("overfit", "more_data", "dropout", "weight_decay", "early_stopping")
TRAINING_PRESETS = TRAINING_LIVE_PRESETS + TRAINING_SECTIONS[1:]
COURSE_SECTIONS = ("background", "core", "transformer", "pretraining", "formulas", "applications", "trends", "faq")
HOME_SECTIONS: tuple[str, ...] = ("tour",) + COURSE_SECTIONS

PAGES: tuple[Page, ...] = (
    Page(
        "home",
        "pages/home.py",
        ":material/school:",
        Picker("section", "home_section", HOME_SECTIONS, "learn.section_label", "learn.section_{o}"),
        {"step": int},
    ),
    Page(
        "playground",
        "pages/playground.py",
        ":material/play_circle:",
        Picker("preset", "pg_mode", PLAYGROUND_PRESETS, "playground.mode", "playground.mode_{o}"),
        {"text": str},
    ),
    Page(
        "attention",
        "pages/attention.py",
        ":material/visibility:",
        Picker("view", "att_view", ATTENTION_VIEWS, "attention.view", "attention.view_{o}"),
        {"text": str, "text_b": str, "layer": int, "head": int},
    ),
    Page(
        "positional",
        "pages/positional.py",
        ":material/waves:",
        Picker("section", "pos_section", POSITIONAL_SECTIONS, "positional.section", "positional.sec_{o}"),
        {"d_model": int, "max_len": int, "base": float},
    ),
    Page(
        "bias",
        "pages/bias.py",
        ":material/balance:",
        Picker("section", "bias_section", BIAS_SECTIONS, "bias.section", "bias.section_{o}"),
    ),
    Page(
        "explain",
        "pages/explain.py",
        ":material/lightbulb:",
        Picker("section", "ex_section", EXPLAIN_SECTIONS, "explain.section", "explain.section_{o}"),
        {"text": str, "target": str},
    ),
    Page(
        "training",
        "pages/training.py",
        ":material/model_training:",
        Picker("preset", "trn_section", TRAINING_SECTIONS, "training.section", "training.sec_{o}"),
    ),
    Page(
        "intervene",
        "pages/intervene.py",
        ":material/tune:",
        Picker("section", "iv_section", INTERVENE_SECTIONS, "intervene.section", "intervene.section_{o}"),
        {"text": str, "corrupt": str, "kind": str, "correct": str, "wrong": str, "layer": int},
    ),
)
PAGE = {p.url: p for p in PAGES}
PAGE_FILES: dict[str, str] = {p.url: p.file for p in PAGES}

_FLAG = ("0", "1", "false", "true")
GLOBAL_PARAMS: dict[str, Any] = {"model": str, "lang": ("en", "zh"), "presenter": _FLAG, "contrast": _FLAG}
# The parameter that picks the part of a page (section / view / preset).
SELECTOR: dict[str, str] = {p.url: p.picker.param for p in PAGES if p.picker}


def _deep_links() -> dict[str, dict[str, Any]]:
    out = {}
    for p in PAGES:
        spec: dict[str, Any] = {}
        if p.picker is not None:
            # training's ?preset= also names the live presets (its picker's "live" section opens on one)
            spec[p.picker.param] = TRAINING_PRESETS if p.url == "training" else p.picker.options
        out[p.url] = {**spec, **p.params}
    return out


# Deep-link contract: page -> {param: allowed values (tuple) or a type (int/float/str)}.
# Every page also reads GLOBAL_PARAMS (model, lang, presenter, contrast: handled by app.py).
DEEP_LINKS: dict[str, dict[str, Any]] = _deep_links()
