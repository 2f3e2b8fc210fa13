"""Bias page sections for the published benchmarks: StereoSet, SEAT test files and the run store.

Hooked into pages/bias.py; strings in llmviz/catalogues/<lang>/benchmarks.json (the pairs drill-down's in bias.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from llmviz.bias import seat as SEAT
from llmviz.bias import stereoset as SS
from llmviz.errors import LlmvizError
from llmviz.models.loading import CAUSAL_LM, MASKED_LM
from llmviz.report import export_name, frame_csv
from llmviz.runs import record as REC
from llmviz.runs import store as RS
from llmviz.viz import benchmarks as VB
from ui.common import export_buttons, plot, show_error, show_notice, t_text
from ui.i18n import fig_labels, t
from ui.jobs import heavy


def _stored_warning(msg: str | None) -> None:
    if msg:
        show_notice(msg)


def _go(what: str) -> None:
    st.session_state[f"bias_go_{what}"] = True


# ---------------------------------------------------------------- StereoSet
def _stereoset_source() -> SS.StereoSetData | None:
    src = st.radio(
        t("benchmarks.ss_source"),
        ["illustrative", "upload"],
        horizontal=True,
        key="bias_ss_src",
        format_func=lambda s: t(f"benchmarks.ss_source_{s}"),
    )
    if src == "illustrative":
        st.caption(t("benchmarks.ss_illustrative_note"))
        return SS.illustrative_set()
    up = st.file_uploader(
        t("benchmarks.ss_upload"),
        type=["json"],
        key="bias_ss_upload",
        help=t("benchmarks.ss_upload_help", mb=SS.MAX_UPLOAD_BYTES // 10**6),
    )
    return SS.parse_stereoset(up.getvalue(), up.name) if up is not None else None


def section_stereoset(loaded) -> None:
    st.markdown(t("benchmarks.ss_intro"))
    if loaded.facts.kind not in (MASKED_LM, CAUSAL_LM):
        st.info(t_text("benchmarks.ss_needs_lm", model=loaded.facts.model_id))
        return
    try:
        data = _stereoset_source()
    except LlmvizError as err:
        show_error(err)
        return
    if data is None:
        st.info(t("benchmarks.ss_need_data"))
        return
    for n in data.notices:
        show_notice(n)
    if max(len(data.intrasentence), len(data.intersentence)) > SS.MAX_EXAMPLES_UI:
        st.warning(t("benchmarks.ss_cut", n=SS.MAX_EXAMPLES_UI))
        data = data.head(SS.MAX_EXAMPLES_UI)
    st.caption(t("benchmarks.ss_loaded", intra=len(data.intrasentence), inter=len(data.intersentence)))
    st.caption(t("benchmarks.ss_method_causal") if loaded.facts.kind == CAUSAL_LM else t("benchmarks.ss_method_mlm"))
    key = (loaded.spec, data.sha256, len(data.intrasentence), len(data.intersentence))
    st.button(t("benchmarks.ss_run"), key="bias_ss_run", type="primary", on_click=_go, args=("ss",))
    if st.session_state.pop("bias_go_ss", False):
        total = sum(len(ex.sentences) for ex in data.examples())
        bar = st.progress(0.0, text=t("benchmarks.scoring"))
        done = [0]

        def tick(n):
            done[0] += n
            bar.progress(min(done[0] / total, 1.0), text=t("benchmarks.scoring_n", i=done[0], n=total))

        try:
            with heavy("stereoset") as job:
                run = SS.run_stereoset(loaded, data, progress=job.wrap(tick))
        except LlmvizError as err:
            show_error(err)
            return
        bar.empty()
        rid, warn = REC.record_stereoset(loaded, run, {"source": data.source, "page": "bias"})
        st.session_state["bias_ss_res"] = (key, run, rid, warn)
    stored = st.session_state.get("bias_ss_res")
    if not stored or stored[0] != key:
        st.info(t("benchmarks.ss_press"))
        return
    _, run, rid, warn = stored
    _stored_warning(warn)
    if rid is not None:
        st.caption(t("benchmarks.recorded", id=rid))
    o, ci = run.results["overall"], run.cis["overall"]
    c1, c2, c3 = st.columns(3)
    c1.metric(t("benchmarks.ss"), f"{o['SS Score']:.1f}", help=t("benchmarks.ss_help"))
    c2.metric(t("benchmarks.lm"), f"{o['LM Score']:.1f}", help=t("benchmarks.lm_help"))
    c3.metric(t("benchmarks.icat"), f"{o['ICAT Score']:.1f}", help=t("benchmarks.icat_help"))
    st.caption(
        t(
            "benchmarks.ci_line",
            ss=f"{ci['SS Score'][0]:.1f}–{ci['SS Score'][1]:.1f}",
            lm=f"{ci['LM Score'][0]:.1f}–{ci['LM Score'][1]:.1f}",
            icat=f"{ci['ICAT Score'][0]:.1f}–{ci['ICAT Score'][1]:.1f}",
            n=o["Count"],
        )
    )
    rows = SS.result_rows(run.results, run.cis)
    metric = st.radio(t("benchmarks.metric"), list(SS.METRIC_KEYS), index=1, horizontal=True, key="bias_ss_metric")
    fig = VB.stereoset_bars(rows, metric, labels=fig_labels())
    name = export_name("stereoset", Path(run.data.source).stem, loaded.facts.model_id, metric)
    plot(fig, key="bias_ss_fig", export_name=name)
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, key="bias_ss_table")
    examples = pd.DataFrame(SS.example_rows(run.data, run.scores))
    export_buttons(
        "bias_ss_exp",
        fig,
        table,
        name,
        {
            "model": loaded.spec,
            "data": run.data.source,
            "sha256": run.data.sha256,
            "method": run.method,
            "results": run.results,
            "ci95": run.cis,
            "run_id": rid,
        },
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        t("benchmarks.ss_export_examples"),
        lambda: frame_csv(examples),
        "stereoset_examples.csv",
        "text/csv",
        key="bias_ss_exp_ex",
    )
    c2.download_button(
        t("benchmarks.ss_export_predictions"),
        lambda: json.dumps(SS.predictions_doc(run.data, run.scores), indent=1),
        "stereoset_predictions.json",
        "application/json",
        key="bias_ss_exp_pred",
    )
    st.subheader(t("benchmarks.ss_drill"))
    exs = run.data.examples()
    i = st.selectbox(
        t("benchmarks.ss_pick"),
        range(len(exs)),
        key="bias_ss_pick",
        format_func=lambda k: f"{exs[k].split[:5]} · {exs[k].bias_type} · {exs[k].context[:70]}",
    )
    ex = exs[i]
    st.text(t("benchmarks.ss_context", target=ex.target, bias_type=ex.bias_type) + "\n" + ex.context)
    st.dataframe(
        pd.DataFrame(
            [{"gold_label": s.gold_label, "sentence": s.sentence, "score": run.scores[s.id]} for s in ex.sentences]
        ),
        hide_index=True,
        key="bias_ss_drill_table",
    )
    sc = {s.gold_label: run.scores[s.id] for s in ex.sentences}
    related = int(sc["stereotype"] > sc["unrelated"]) + int(sc["anti-stereotype"] > sc["unrelated"])
    pro = sc["stereotype"] > sc["anti-stereotype"]
    st.caption(
        t("benchmarks.ss_drill_outcome", pro=t("benchmarks.yes") if pro else t("benchmarks.no"), related=related)
    )


# ---------------------------------------------------------------- SEAT files (inside the WEAT section)
def seat_files_block(loaded) -> None:
    with st.expander(t("benchmarks.seat_title"), expanded=bool(st.session_state.get("bias_seat_upload"))):
        st.markdown(t("benchmarks.seat_intro", n=SEAT.MAX_ITEMS_PER_SET))
        ups = st.file_uploader(
            t("benchmarks.seat_upload"), type=["jsonl", "json"], accept_multiple_files=True, key="bias_seat_upload"
        )
        c1, c2 = st.columns(2)
        pooling = c1.radio(t("benchmarks.seat_pooling"), list(SEAT.POOLINGS), horizontal=True, key="bias_seat_pool")
        layers = c2.radio(
            t("benchmarks.seat_layers"), list(SEAT.LAYER_CHOICES), horizontal=True, key="bias_seat_layers"
        )
        if not ups:
            st.info(t("benchmarks.seat_need"))
            return
        try:
            tests = [SEAT.parse_seat(u.getvalue(), u.name) for u in ups[: SEAT.MAX_TESTS]]
        except LlmvizError as err:
            show_error(err)
            return
        st.caption(t("benchmarks.seat_loaded", k=len(tests), n=sum(sum(x.sizes) for x in tests)))
        key = (loaded.spec, tuple((x.name, tuple(x.sizes)) for x in tests), pooling, layers)
        st.button(t("benchmarks.seat_run"), key="bias_seat_run", type="primary", on_click=_go, args=("seat",))
        if st.session_state.pop("bias_go_seat", False):
            total = sum(sum(x.sizes) for x in tests)
            bar = st.progress(0.0, text=t("benchmarks.embedding"))
            done = [0]

            def tick(n):
                done[0] += n
                bar.progress(min(done[0] / total, 1.0), text=t("benchmarks.embedding_n", i=done[0], n=total))

            try:
                with heavy("weat") as job:
                    full = [SEAT.run_test_full(loaded, x, pooling, layers, progress=job.wrap(tick)) for x in tests]
            except LlmvizError as err:
                show_error(err)
                return
            bar.empty()
            from llmviz.report import sha256_bytes

            digest = sha256_bytes(json.dumps([[x.name, x.sets] for x in tests], sort_keys=True).encode())
            rid, warn = REC.record_seat_tests(
                loaded,
                [f[0] for f in full],
                [f[1] for f in full],
                digest,
                ", ".join(x.name for x in tests),
                {"pooling": pooling, "layers": layers, "page": "bias"},
            )
            st.session_state["bias_seat_res"] = (key, [f[0] for f in full], rid, warn)
        stored = st.session_state.get("bias_seat_res")
        if not stored or stored[0] != key:
            st.info(t("benchmarks.seat_press"))
            return
        _, entries, rid, warn = stored
        _stored_warning(warn)
        report = {"model": loaded.facts.model_id, "pooling": pooling, "tests": entries, "run_id": rid}
        layers_all = sorted({x["layer"] for e in entries for x in e["layers"]})
        grid = pd.DataFrame(
            [
                {
                    "test": e["file"],
                    "n (X/Y/A/B)": "/".join(map(str, e["n"])),
                    **{
                        f"layer {x['layer']}": f"{x['effect_size']:+.2f}{SEAT.stars(x['p_value'])}" for x in e["layers"]
                    },
                }
                for e in entries
            ],
            columns=["test", "n (X/Y/A/B)"] + [f"layer {x}" for x in layers_all],
        )
        st.dataframe(grid, hide_index=True, key="bias_seat_grid")
        st.caption(t("benchmarks.seat_stars"))
        flat = pd.DataFrame([{"test": e["file"], **x} for e in entries for x in e["layers"]])
        name = export_name("seat", loaded.facts.model_id, pooling, f"run-{rid}" if rid else "")
        export_buttons(
            "bias_seat_exp",
            None,
            flat,
            name,
            {"model": loaded.spec, "pooling": pooling, "layers": layers, "run_id": rid},
        )
        st.download_button(
            t("benchmarks.seat_html"),
            lambda: SEAT.html_table(report),
            f"{name}_table.html",
            "text/html",
            key="bias_seat_html",
        )


# ---------------------------------------------------------------- Runs
def _run_label(r: dict) -> str:
    return f"#{r['id']} · {r['kind']} · {r['model'][-40:]} · {r['date'][:16]}"


def section_runs(loaded) -> None:
    st.markdown(t("benchmarks.runs_intro"))
    try:
        runs = RS.list_runs()
    except LlmvizError as err:
        show_error(err)
        return
    if not runs:
        st.info(t("benchmarks.runs_none"))
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r["id"],
                    "kind": r["kind"],
                    "model": r["model"],
                    "date": r["date"],
                    "data_sha256": (r["data_sha256"] or "")[:12],
                    "items": r["n_items"],
                }
                for r in runs
            ]
        ),
        hide_index=True,
        key="bias_runs_table",
    )
    if len(runs) < 2:
        st.info(t("benchmarks.runs_need_two"))
        return
    by_id = {r["id"]: r for r in runs}
    first = RS.comparable_pair(runs)  # opens on the newest comparable pair, never on a run with no partner
    if first is not None and st.session_state.get("bias_runs_a") not in by_id:
        st.session_state["bias_runs_a"], st.session_state["bias_runs_b"] = first
    c1, c2 = st.columns(2)
    a = c1.selectbox(
        t("benchmarks.run_a"),
        list(by_id),
        key="bias_runs_a",
        format_func=lambda i: _run_label(by_id[i]),
    )
    same = [r["id"] for r in runs if r["kind"] == by_id[a]["kind"] and r["id"] != a]
    if not same:
        st.info(t_text("benchmarks.runs_no_partner", kind=by_id[a]["kind"]))
        return
    if st.session_state.get("bias_runs_b") not in same:
        st.session_state["bias_runs_b"] = same[0]
    b = c2.selectbox(t("benchmarks.run_b"), same, key="bias_runs_b", format_func=lambda i: _run_label(by_id[i]))
    try:
        cmp = RS.compare_runs(a, b)
    except LlmvizError as err:
        show_error(err)
        return
    for code in cmp["note_codes"]:  # the library's English notes, in the reader's language
        show_notice(t(f"benchmarks.runs_note_{code}"))
    side = pd.DataFrame(
        [
            {
                "": t("benchmarks.run_a"),
                **{k: cmp["a"][k] for k in ("id", "model", "date")},
                "model_hash": (cmp["a"]["model_hash"] or "")[:12],
            },
            {
                "": t("benchmarks.run_b"),
                **{k: cmp["b"][k] for k in ("id", "model", "date")},
                "model_hash": (cmp["b"]["model_hash"] or "")[:12],
            },
        ]
    )
    st.dataframe(side, hide_index=True, key="bias_runs_side")
    o = cmp["overall"]
    c1, c2, c3 = st.columns(3)
    c1.metric(t("benchmarks.mean_a"), f"{o['mean_a']:.3f}")
    c2.metric(t("benchmarks.mean_b"), f"{o['mean_b']:.3f}")
    c3.metric(t("benchmarks.diff"), f"{o['mean_diff']:+.3f}", help=t("benchmarks.diff_help"))
    st.caption(t("benchmarks.diff_ci", lo=f"{o['ci95'][0]:+.3f}", hi=f"{o['ci95'][1]:+.3f}", n=o["n"]))
    fig = VB.paired_diff(cmp, labels=fig_labels())
    name = export_name(
        "runs", by_id[a]["kind"], f"run-{a}", cmp["a"]["model"], "vs", f"run-{b}", cmp["b"]["model"]
    )  # e.g. runs_stereoset_run-1_smollm2_vs_run-2_minilm
    plot(fig, key="bias_runs_fig", export_name=name)
    groups = pd.DataFrame(
        [
            {
                "group": g,
                **{k: v for k, v in blk.items() if k != "ci95"},
                "ci95_low": blk["ci95"][0],
                "ci95_high": blk["ci95"][1],
            }
            for g, blk in list(cmp["by_group"].items()) + [("overall", o)]
        ]
    )
    st.dataframe(groups, hide_index=True, key="bias_runs_groups")
    st.caption(t("benchmarks.runs_value_note"))
    items = pd.DataFrame(cmp["items"])
    with st.expander(t("benchmarks.runs_items")):
        st.dataframe(items, hide_index=True, key="bias_runs_items")
    export_buttons(
        "bias_runs_exp",
        fig,
        items,
        name,
        {"a": cmp["a"], "b": cmp["b"], "overall": o, "by_group": cmp["by_group"]},
    )


# ---------------------------------------------------------------- minimal-pairs drill-down
def pair_scores(row) -> None:
    """Both sentences of the chosen pair, each with its score as the run scored it, and their difference."""
    st.markdown(t_text("bias.drill_more", sentence=row["sent_more"]))
    st.markdown(t_text("bias.drill_less", sentence=row["sent_less"]))
    c1, c2, c3 = st.columns(3)
    c1.metric(t("bias.drill_score_more"), f"{row['score_more']:.3f}", help=t("bias.drill_score_help"))
    c2.metric(t("bias.drill_score_less"), f"{row['score_less']:.3f}", help=t("bias.drill_score_help"))
    c3.metric(t("bias.drill_diff"), f"{row['difference']:+.3f}", help=t("bias.drill_diff_help"))


# ---------------------------------------------------------------- recording helpers used by pages/bias.py
def record_pairs(loaded, res, data) -> None:
    """Record a finished CrowS-Pairs run of the page (a failing store only warns)."""
    _, warn = REC.record_crows(loaded, res.records(), res.summary(), data.sha256, data.source, {"page": "bias"})
    _stored_warning(warn)


def record_weat(loaded, res) -> None:
    """Record a WEAT/SEAT run of the page's word sets (called from the cached computation)."""
    from llmviz.report import sha256_bytes

    sets = {k: getattr(res, k) for k in "XYAB"}
    entry = {
        "file": res.names.get("X", "X") + " vs " + res.names.get("Y", "Y"),
        "n": [len(v) for v in sets.values()],
        "layers": res.records(),
    }
    digest = sha256_bytes(json.dumps(sets, sort_keys=True).encode())
    REC.record_seat_tests(
        loaded,
        [entry],
        [(res.X, res.Y, res.s_x[-1], res.s_y[-1])],
        digest,
        None,
        {"mode": res.mode, "pooling": res.pooling, "page": "bias"},
        kind="weat",
    )
