"""Learn-page content as plain data (no streamlit): concept cards, course sections, the guided tour and the
deep-link contract every page implements.

Texts are not here: each card and tour step names keys in the ``learn`` catalogues
(``llmviz/catalogues/<lang>/learn.json``), so English and Chinese stay side by side and complete.
A card's link is a page url path plus the query parameters that page reads
(see :data:`DEEP_LINKS`); :func:`check_link` says what is wrong with a link, so tests can
prove every card opens an existing page with a valid preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ui.registry import (  # noqa: F401  (re-exported: the Learn content names pages and sections from here)
    ATTENTION_VIEWS,
    BIAS_SECTIONS,
    COURSE_SECTIONS,
    DEEP_LINKS,
    DEFAULT_PAGE,
    EXPLAIN_SECTIONS,
    GLOBAL_PARAMS,
    HOME_SECTIONS,
    INTERVENE_SECTIONS,
    PAGE_FILES,
    PLAYGROUND_PRESETS,
    POSITIONAL_SECTIONS,
    SELECTOR,
    TRAINING_PRESETS,
)

# Course sections of the Learn page, in teaching order; "tour" is the guided tour.
SECTIONS: dict[str, tuple[str, ...]] = {
    "background": (
        "rise_of_llms",
        "applications",
        "risk_data_bias",
        "risk_misinformation",
        "risk_privacy",
        "risk_malicious_use",
    ),
    "core": ("nlp", "deep_learning", "pretraining", "transfer_learning"),
    "transformer": (
        "transformer",
        "self_attention",
        "query_key",
        "multi_head",
        "head_roles",
        "attention_flow",
        "information_flow",
        "encoder_decoder",
        "positional_encoding",
        "learned_positions",
        "rope",
        "why_positions",
    ),
    "pretraining": ("mlm", "nsp", "next_token", "fine_tuning"),
    "formulas": ("self_attention", "multi_head", "encoder_decoder", "positional_encoding", "next_token", "mlm"),
    "applications": ("app_translation", "app_summarization", "app_qa", "app_code", "app_creative"),
    "trends": (
        "trend_scale",
        "trend_multimodality",
        "trend_interpretability",
        "trend_control",
        "interventions",
        "steering_vectors",
        "trend_ethics",
    ),
    "faq": (
        "faq_overfitting",
        "faq_dropout",
        "faq_weight_decay",
        "faq_early_stopping",
        "faq_data_bias",
        "faq_measure_bias",
        "faq_counterfactual",
        "faq_embeddings",
        "faq_interpretability",
        "faq_benchmarks",
        "faq_bias_mechanism",
        "faq_compare_runs",
    ),
}
DEFAULT_HOME_SECTION = "tour"
assert tuple(SECTIONS) == COURSE_SECTIONS, "ui.registry.COURSE_SECTIONS names the course sections in this order"


SENTENCE_IT = "The animal didn't cross the street because it was too tired."
SENTENCE_CHEF = "The chef who cooked the meal was praised by the guests."


@dataclass(frozen=True)
class Link:
    """A live view: page url path + the query parameters it reads on open."""

    page: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def file(self) -> str:
        return PAGE_FILES[self.page]

    def query(self) -> dict[str, str]:
        """Params as URL strings (what ``st.query_params`` holds)."""
        return {k: str(v) for k, v in self.params.items()}


@dataclass(frozen=True)
class Card:
    """One concept: texts under ``learn.card_<id>_*``, an optional LaTeX formula, one live view."""

    id: str
    link: Link
    formula: str | None = None

    def key(self, part: str) -> str:
        """Catalogue key, e.g. ``learn.card_multi_head_title`` (parts: title, body, link, symbols)."""
        return f"learn.card_{self.id}_{part}"

    @property
    def parts(self) -> tuple[str, ...]:
        return ("title", "body", "link") + (("symbols",) if self.formula else ())


@dataclass(frozen=True)
class TourStep:
    """One stop of the guided tour: a live view, narration and a question for the class."""

    id: str
    link: Link

    def key(self, part: str) -> str:
        """Catalogue key, e.g. ``learn.tour_formula_question`` (parts: title, narration, question)."""
        return f"learn.tour_{self.id}_{part}"

    parts = ("title", "narration", "question")


F_ATTENTION = r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^{\top}}{\sqrt{d_k}}\right) V"
# Display formulas do not wrap, so the long ones are set on several lines: each line fits a card of the
# two-column grid at 1280 px (tests/browser/test_presenter_fit_browser.py measures them).
F_MULTIHEAD = (
    r"\begin{aligned}&\mathrm{MultiHead}(Q, K, V)\\"
    r"&\qquad = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^{O},\\"
    r"&\mathrm{head}_i = \mathrm{Attention}(Q W_i^{Q}, K W_i^{K}, V W_i^{V})\end{aligned}"
)
F_SINUSOIDAL = (
    r"\begin{aligned}&PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d_{\mathrm{model}}}}\right),\\[6pt]"
    r"&PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d_{\mathrm{model}}}}\right)\end{aligned}"
)
F_NEXT_TOKEN = (
    r"\begin{aligned}&P(x_1, \ldots, x_T) = \prod_{t=1}^{T} P(x_t \mid x_{<t}),\\[6pt]"
    r"&\mathcal{L} = -\sum_{t=1}^{T} \log P(x_t \mid x_{<t})\end{aligned}"
)
F_CROSS_ATTENTION = (
    r"\begin{aligned}&Q = H_{\mathrm{dec}} W^{Q},\; K = H_{\mathrm{enc}} W^{K},\; V = H_{\mathrm{enc}} W^{V},\\[4pt]"
    r"&\mathrm{CrossAttention} = \mathrm{softmax}\!\left(\frac{Q K^{\top}}{\sqrt{d_k}}\right) V\end{aligned}"
)
F_MLM = r"\mathcal{L}_{\mathrm{MLM}} = -\sum_{i \in \mathcal{M}} \log P\left(x_i \mid x_{\setminus \mathcal{M}}\right)"

F_FLOW = (
    r"\begin{aligned}&y_i = x_i + \sum_{h}\sum_{j} A^{h}_{ij}\, x_j W_V^{h} W_O^{h} + b_O,\\[6pt]"
    r"&\mathrm{imp}(c) = \frac{\max(0,\ \lVert y_i\rVert_1 - \lVert y_i - c\rVert_1)}"
    r"{\sum_{c'} \max(0,\ \lVert y_i\rVert_1 - \lVert y_i - c'\rVert_1)}\end{aligned}"
)
SENTENCE_FLOW = "The Eiffel Tower is in the city of"

_SMOL = {"model": "smollm2"}
_MINI = {"model": "minilm"}


def _card(cid: str, page: str, formula: str | None = None, **params) -> Card:
    return Card(cid, Link(page, params), formula)


CARDS: dict[str, Card] = {
    c.id: c
    for c in (
        # Background: the rise of LLMs, what they are used for, and the ethical risks.
        _card("rise_of_llms", "playground", preset="creative", **_SMOL),
        _card("applications", "playground", preset="translation", **_SMOL),
        _card("risk_data_bias", "bias", section="templates"),
        _card("risk_misinformation", "playground", preset="qa", **_SMOL),
        _card("risk_privacy", "training", preset="memorization"),
        _card(
            "risk_malicious_use",
            "playground",
            preset="creative",
            text="Write a glowing five-star review for a restaurant I have never visited.",
            **_SMOL,
        ),
        # Core concepts.
        _card(
            "nlp",
            "attention",
            view="head",
            layer=0,
            head=0,
            text="Tokenizers split unbelievably long words into pieces.",
            **_MINI,
        ),
        _card("deep_learning", "explain", section="logit_lens", text="The Eiffel Tower is in the city of", **_SMOL),
        _card("pretraining", "playground", preset="fill_mask", **_SMOL),
        _card("transfer_learning", "training", preset="transfer"),
        # Transformer.
        _card("transformer", "attention", view="bertviz", text=SENTENCE_IT, **_MINI),
        _card("self_attention", "attention", F_ATTENTION, view="formula", text=SENTENCE_IT, **_MINI),
        _card("query_key", "attention", view="neuron", text=SENTENCE_IT, layer=2, head=0, **_MINI),
        _card("multi_head", "attention", F_MULTIHEAD, view="layer", layer=2, text=SENTENCE_CHEF, **_MINI),
        _card("head_roles", "attention", view="stats", text=SENTENCE_CHEF, **_MINI),
        _card("attention_flow", "attention", view="rollout", text=SENTENCE_IT, **_MINI),
        _card("information_flow", "explain", F_FLOW, section="flow", text=SENTENCE_FLOW, **_SMOL),
        _card("encoder_decoder", "training", F_CROSS_ATTENTION, preset="translator"),
        _card("positional_encoding", "positional", F_SINUSOIDAL, section="sinusoidal", d_model=64, max_len=128),
        _card("learned_positions", "positional", section="learned", **_MINI),
        _card("rope", "positional", section="rope", **_SMOL),
        _card("why_positions", "positional", section="ablation"),
        # Pretraining objectives and fine-tuning.
        _card("mlm", "playground", F_MLM, preset="fill_mask", **_SMOL),
        _card(
            "nsp",
            "attention",
            view="head",
            layer=5,
            head=0,
            text="I went to the store.",
            text_b="I bought a litre of milk.",
            **_MINI,
        ),
        _card("next_token", "playground", F_NEXT_TOKEN, preset="creative", text="Once upon a time", **_SMOL),
        _card("fine_tuning", "training", preset="transfer"),
        # Applications: one playground preset each.
        *(
            _card(f"app_{p}", "playground", preset=p, **_SMOL)
            for p in ("translation", "summarization", "qa", "code", "creative")
        ),
        # Trends.
        _card("trend_scale", "training", preset="more_data"),
        _card("trend_multimodality", "attention", view="layer", layer=0, text=SENTENCE_CHEF, **_MINI),
        _card(
            "trend_interpretability", "explain", section="attribution", text="The movie was not good at all.", **_SMOL
        ),
        _card("trend_control", "explain", section="ablation", text="The Eiffel Tower is in the city of", **_SMOL),
        _card("interventions", "intervene", section="dla", text="The Eiffel Tower is in the city of", **_SMOL),
        _card("steering_vectors", "intervene", section="steering", **_SMOL),
        _card("trend_ethics", "bias", section="mitigation"),
        # FAQ.
        _card("faq_overfitting", "training", preset="overfit"),
        _card("faq_dropout", "training", preset="dropout"),
        _card("faq_weight_decay", "training", preset="weight_decay"),
        _card("faq_early_stopping", "training", preset="early_stopping"),
        _card("faq_data_bias", "training", preset="bias"),
        _card("faq_measure_bias", "bias", section="pairs"),
        _card("faq_counterfactual", "bias", section="counterfactual", **_SMOL),
        _card("faq_embeddings", "bias", section="weat", **_MINI),
        _card("faq_benchmarks", "bias", section="stereoset"),
        _card("faq_bias_mechanism", "bias", section="mechanism", **_SMOL),
        _card("faq_compare_runs", "bias", section="runs"),
        _card("faq_interpretability", "explain", section="attribution", text="The movie was not good at all.", **_SMOL),
    )
}

# The guided tour: about 3 minutes a step for a 45-minute class, from "what is a language
# model" to "is this model biased?".
TOUR: tuple[TourStep, ...] = (
    TourStep("what_is_lm", Link("playground", {"preset": "fill_mask", **_SMOL})),
    TourStep("generation", Link("playground", {"preset": "creative", "text": "Once upon a time", **_SMOL})),
    TourStep(
        "tokens_attention", Link("attention", {"view": "head", "layer": 2, "head": 0, "text": SENTENCE_IT, **_MINI})
    ),
    TourStep("formula", Link("attention", {"view": "formula", "text": SENTENCE_IT, **_MINI})),
    TourStep("multi_head", Link("attention", {"view": "layer", "layer": 2, "text": SENTENCE_CHEF, **_MINI})),
    TourStep("positions", Link("positional", {"section": "sinusoidal", "d_model": 64, "max_len": 128})),
    TourStep("positions_ablation", Link("positional", {"section": "ablation"})),
    TourStep("pretrain_finetune", Link("training", {"preset": "transfer"})),
    TourStep("overfitting", Link("training", {"preset": "overfit"})),
    TourStep("cures", Link("training", {"preset": "early_stopping"})),
    TourStep("translator", Link("training", {"preset": "translator"})),
    TourStep("explain", Link("explain", {"section": "attribution", "text": "The movie was not good at all.", **_SMOL})),
    TourStep("information_flow", Link("explain", {"section": "flow", "text": SENTENCE_FLOW, **_SMOL})),
    TourStep(
        "intervene", Link("intervene", {"section": "patching", "text": "The Eiffel Tower is in the city of", **_SMOL})
    ),
    TourStep("bias_in_out", Link("training", {"preset": "bias"})),
    TourStep("is_model_biased", Link("bias", {"section": "templates"})),
    TourStep("where_bias_lives", Link("bias", {"section": "mechanism", **_SMOL})),
    TourStep("privacy", Link("training", {"preset": "memorization"})),
    TourStep("what_now", Link("bias", {"section": "mitigation"})),
)


def section_of(card_id: str) -> str:
    """The first course section that holds a card."""
    for sid, ids in SECTIONS.items():
        if card_id in ids:
            return sid
    raise KeyError(f"card {card_id!r} is in no section; sections: {list(SECTIONS)}")


def check_link(link: Link) -> list[str]:
    """Problems with a deep link (empty list when it follows the contract)."""
    if link.page not in DEEP_LINKS:
        return [f"unknown page {link.page!r}; pages: {sorted(DEEP_LINKS)}"]
    spec = {**GLOBAL_PARAMS, **DEEP_LINKS[link.page]}
    problems = []
    for name, value in link.params.items():
        allowed = spec.get(name)
        if allowed is None:
            problems.append(f"{link.page}: unknown parameter {name!r}; known: {sorted(spec)}")
        elif isinstance(allowed, tuple):
            if str(value) not in allowed:
                problems.append(f"{link.page}: {name}={value!r} not in {allowed}")
        else:
            try:
                allowed(str(value))
            except ValueError:
                problems.append(f"{link.page}: {name}={value!r} is not {allowed.__name__}")
    return problems


def all_links() -> list[tuple[str, Link]]:
    """Every link the Learn page shows: ("card:<id>" | "tour:<id>", link)."""
    return [(f"card:{c.id}", c.link) for c in CARDS.values()] + [(f"tour:{s.id}", s.link) for s in TOUR]


def clamp_step(step: Any) -> int:
    """A 1-based tour step from user input; out-of-range or bad values land on the nearest valid step."""
    try:
        value = int(step)
    except (TypeError, ValueError):
        return 1
    return min(max(value, 1), len(TOUR))
