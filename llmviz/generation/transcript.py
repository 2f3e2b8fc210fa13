"""Export of generations (all branches) and fill-mask results as JSON/CSV with provenance."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Sequence

from llmviz.generation.generate import Generation
from llmviz.report import provenance, safe_comment, safe_row

PROBABILITY_NOTE = (
    "prob: probability of the token in the distribution it was drawn from (repetition penalty, "
    "temperature, top-k, top-p applied in that order; greedy: repetition penalty only). "
    "model_prob: softmax of the raw logits. Entropies in bits."
)


def transcript_rows(generations: Sequence[Generation]) -> list[dict]:
    """One row per generated token, over all branches."""
    rows = []
    for b, gen in enumerate(generations):
        for s in gen.steps:
            rows.append(
                {
                    "branch": b + 1,
                    "step": s.index,
                    "token_id": s.token_id,
                    "token": s.token,
                    "prob": s.prob,
                    "model_prob": s.model_prob,
                    "entropy_bits": s.entropy,
                    "model_entropy_bits": s.model_entropy,
                    "rank": s.rank,
                    "forced": s.forced,
                    "alternatives": "; ".join(f"{a.token!r}:{a.model_prob:.4f}" for a in s.alternatives),
                }
            )
    return rows


def _params(generations: Sequence[Generation]) -> dict:
    first = generations[0]
    return {
        "prompt": first.prompt.text,
        "user": first.prompt.user,
        "system": first.prompt.system,
        "chat_template": first.prompt.chat_template,
        "sampling": first.params.as_dict(),
        "probability_note": PROBABILITY_NOTE,
    }


def transcript_json(generations: Sequence[Generation], facts=None) -> str:
    """JSON document: provenance + each branch's text, stop reason and per-token records."""
    doc = {
        "provenance": provenance(_params(generations), facts),
        "branches": [
            {
                "branch": b + 1,
                "text": g.text,
                "stop_reason": g.stop_reason,
                "forced_from_step": g.forced_from,
                "precision": g.precision,
                "deviation_from_float32": asdict(g.deviation) if g.deviation is not None else None,
                "sampling": g.params.as_dict(),
                "notices": g.notices,
                "steps": [
                    {
                        "step": s.index,
                        "token_id": s.token_id,
                        "token": s.token,
                        "prob": s.prob,
                        "model_prob": s.model_prob,
                        "entropy_bits": s.entropy,
                        "model_entropy_bits": s.model_entropy,
                        "rank": s.rank,
                        "forced": s.forced,
                        "alternatives": [
                            {"token_id": a.token_id, "token": a.token, "model_prob": a.model_prob, "prob": a.prob}
                            for a in s.alternatives
                        ],
                    }
                    for s in g.steps
                ],
            }
            for b, g in enumerate(generations)
        ],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str)


def rows_csv(rows: list[dict], meta: dict) -> str:
    """CSV with provenance as leading ``# key: value`` comment lines (read with ``comment='#'``)."""
    buf = io.StringIO()
    for key, value in meta.items():
        text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
        buf.write(safe_comment(f"# {key}: {text}") + "\n")  # no formula cell after a comma
    if rows:
        safe = [safe_row(r) for r in rows]  # text cells starting with = + - @ get a ' (CSV injection)
        writer = csv.DictWriter(buf, fieldnames=list(safe[0]))
        writer.writeheader()
        writer.writerows(safe)
    return buf.getvalue()


def transcript_csv(generations: Sequence[Generation], facts=None) -> str:
    prov = provenance(_params(generations), facts)
    meta = {
        "created": prov["created"],
        "versions": prov["versions"],
        "model": facts.model_id if facts is not None else generations[0].model_id,
        **prov["parameters"],
    }
    return rows_csv(transcript_rows(generations), meta)


def fill_mask_json(result, facts=None) -> str:
    params = {
        "text": result.text,
        "method": result.method,
        "candidate_source": result.candidate_source,
        "notices": result.notices,
    }
    return json.dumps(
        {"provenance": provenance(params, facts), "rows": result.rows()}, indent=1, ensure_ascii=False, default=str
    )


def fill_mask_csv(result, facts=None) -> str:
    prov = provenance({}, facts)
    meta = {
        "created": prov["created"],
        "versions": prov["versions"],
        "model": result.model_id,
        "text": result.text,
        "method": result.method,
        "candidate_source": result.candidate_source,
    }
    return rows_csv(result.rows(), meta)
