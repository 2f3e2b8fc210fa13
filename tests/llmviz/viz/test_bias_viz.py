"""Bias figures that fit (issue 13): the minimal-pairs chart keeps its CI whiskers inside the axis
and its "50 % = no preference" label off the bars, keeps full category labels in any export (the CLI
writes it without ui.common), and the template heatmap's colour bar has room. Checked on the plotly
figure objects the builders return, against the numbers they were given."""

from __future__ import annotations

import numpy as np
import pytest

from llmviz.bias.templates import TemplateProbeResult
from llmviz.viz import bias as V
from ui.links import apply_presentation


def _summary() -> dict:
    """Whiskers that touch both ends of 0–100 (all pairs one way, none the other) and a long label."""
    return {
        "n": 20,
        "pct_stereotype": 55.0,
        "ci95": [35.0, 75.0],
        "by_bias_type": {
            "nationality": {"n": 8, "pct_stereotype": 100.0, "ci95": [100.0, 100.0]},
            "race-color": {"n": 4, "pct_stereotype": 25.0, "ci95": [0.0, 75.0]},
            "sexual-orientation and physical-appearance": {"n": 8, "pct_stereotype": 0.0, "ci95": [0.0, 0.0]},
        },
    }


def _whisker_ends(fig) -> tuple[float, float]:
    bar = fig.data[0]
    x = np.asarray(bar.x, float)
    return float(np.min(x - np.asarray(bar.error_x.arrayminus))), float(np.max(x + np.asarray(bar.error_x.array)))


def test_pairs_whiskers_lie_inside_the_axis_range_with_room_for_the_caps():
    fig = V.pairs_summary(_summary())
    lo, hi = _whisker_ends(fig)
    assert (lo, hi) == (0.0, 100.0)  # the data really touch both ends
    r0, r1 = fig.layout.xaxis.range
    assert r0 <= lo - 2 and r1 >= hi + 2  # a cap drawn at 0 or 100 is not cut by the plot edge
    assert r0 >= -10 and r1 <= 110  # still a 0–100 % chart


def test_pairs_whiskers_are_clipped_to_0_100():
    s = _summary()
    s["ci95"] = [-4.0, 104.0]  # an interval method that overshoots (e.g. a normal approximation)
    fig = V.pairs_summary(s)
    bar = fig.data[0]
    assert bar.x[0] - bar.error_x.arrayminus[0] == pytest.approx(0.0)
    assert bar.x[0] + bar.error_x.array[0] == pytest.approx(100.0)


@pytest.mark.parametrize("presenter", [False, True])
def test_pairs_no_preference_label_sits_above_the_bars_not_on_them(presenter):
    fig = apply_presentation(V.pairs_summary(_summary()), presenter=presenter, contrast=False)
    [label] = [a for a in fig.layout.annotations if "no preference" in (a.text or "")]
    # bars fill the y domain [0, 1] of the plot area; the label's bottom edge is at its top
    assert label.yref == "paper" and label.y >= 1 and label.yanchor == "bottom"
    assert label.xref == "x" and label.x == 50 and label.showarrow is False
    # the top margin holds the title line and the label line without the two meeting
    font = fig.layout.font.size or 12
    title_px = 1.4 * font * 1.3 + 2 * 8
    label_px = font * 1.3 + 4
    assert fig.layout.margin.t >= title_px + label_px
    assert fig.layout.title.yref == "container" and fig.layout.title.yanchor == "top"


def test_pairs_category_labels_keep_their_room_in_any_export():
    fig = V.pairs_summary(_summary())
    assert fig.layout.yaxis.automargin is True  # the CLI's HTML report uses this figure as built
    html = fig.to_html(include_plotlyjs=False, full_html=False)
    assert "nationality (n=8)" in html and '"automargin":true' in html.replace(" ", "")


def test_cli_html_report_keeps_category_labels(tmp_path):
    from llmviz.audits.crows import write_html

    report = {
        "summary": _summary(),
        "model": {"model_id": "smollm2"},
        "method": "causal_loglik",
        "data": {"path": "crows.csv", "sha256": "0" * 64},
        "date": "2026-12-02",
        "versions": {"llmviz": "0"},
        "pairs": [],
    }
    out = tmp_path / "r.html"
    write_html(report, out)
    text = out.read_text(encoding="utf-8")
    call = text[text.rindex("Plotly.newPlot(") :]  # the figure's data and layout, after the inlined plotly.js
    assert "nationality (n=8)" in call
    assert '"yaxis":{' in call.replace(" ", "") and '"automargin":true' in call.replace(" ", "")


def _template(n_groups: int) -> TemplateProbeResult:
    rng = np.random.default_rng(0)
    lp = rng.normal(-5, 1, (n_groups, 6))
    return TemplateProbeResult(
        "The {group} worked as a [MASK].",
        [f"group {i}" for i in range(n_groups)],
        ["nurse", "engineer", "teacher", "doctor", "pilot", "chef"],
        lp,
        lp + 1,
        "mlm_kurita",
    )


@pytest.mark.parametrize("n_groups", [2, 3, 12])
@pytest.mark.parametrize("presenter", [False, True])
def test_template_colour_bar_has_room(n_groups, presenter):
    fig = apply_presentation(V.template_heatmap(_template(n_groups)), presenter=presenter, contrast=False)
    cb = fig.data[0].colorbar
    m = fig.layout.margin
    plot_px = fig.layout.height - m.t - (m.b if m.b is not None else 80)
    length = 1.0 if cb.len is None else cb.len  # plotly's default: the plot area's height
    length = length if (cb.lenmode or "fraction") == "fraction" else length / plot_px
    assert plot_px * length >= 180  # the bar is tall enough to read its ticks
    assert (cb.thickness or 30) >= 16 and (cb.thicknessmode or "pixels") == "pixels"
    assert cb.title.side == "right"  # the title does not eat the bar's height
    if n_groups <= 3:
        assert fig.layout.height <= 720  # still fits a 1280×720 screen for a few groups
    assert m.r is not None and m.r >= 40  # room for tick labels and the side title


def _detail(method: str):
    from llmviz.bias.pairs import PairDetail

    lp1 = np.array([np.nan, -3.0, -5.0, -2.0, -4.0])
    lp2 = np.array([np.nan, -3.5, -6.0, -2.2, -3.0])
    if method == "mlm_pll":  # CrowS PLL: only the shared tokens are scored
        lp1[1], lp2[1] = np.nan, np.nan
    shared = [2, 3, 4]
    toks = ["<s>", "She", "was", "emo", "tional"]
    return PairDetail("a", "b", toks, toks, lp1, lp2, shared, shared, lp1[shared] - lp2[shared], method)


@pytest.mark.parametrize("method,bars", [("causal_loglik", 4), ("mlm_pll", 3)])
def test_pair_token_bars_add_up_to_the_score_difference(method, bars):
    d = _detail(method)
    total = float(np.nansum(d.lp_more) - np.nansum(d.lp_less))  # what score_pairs reports for the pair
    assert d.score_more - d.score_less == pytest.approx(total)
    fig = V.pair_token_bars(d)
    assert sum(float(np.sum(tr.y)) for tr in fig.data) == pytest.approx(total)
    assert len(fig.layout.xaxis.ticktext) == bars  # causal: the changed words get a bar of their own
    if method == "causal_loglik":
        assert fig.data[1].y[0] == pytest.approx(-3.0 + 3.5) and "changed words" in fig.layout.xaxis.ticktext[-1]
