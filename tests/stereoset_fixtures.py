"""A hand-made StereoSet gold file + predictions with hand-computed metrics (tests only)."""

from __future__ import annotations

LABELS = ("stereotype", "anti-stereotype", "unrelated")

# (split, id, target, bias_type, (score stereotype, score anti, score unrelated))
ROWS = [
    ("intrasentence", "e1", "a", "gender", (3, 2, 1)),  # pro, related 2
    ("intrasentence", "e2", "a", "gender", (1, 2, 3)),  # anti, related 0
    ("intrasentence", "e3", "b", "gender", (2, 3, 1)),  # anti, related 2
    ("intrasentence", "e4", "c", "race", (5, 4, 4.5)),  # pro, related 1
    ("intersentence", "e5", "a", "gender", (2, 2, 1)),  # tie -> anti (as evaluation.py), related 2
]

# By hand (SS, LM per target term, averaged; ICAT = LM * min(SS, 100 - SS) / 50):
# intra gender: a: SS 50, LM 50; b: SS 0, LM 100 -> SS 25, LM 75, ICAT 37.5
# intra race: c: SS 100, LM 50 -> ICAT 0
# intra overall: a 50/50, b 0/100, c 100/50 -> SS 50, LM 66.67, ICAT 66.67
# inter gender = inter overall: a: SS 0, LM 100 -> ICAT 0
# overall: a (e1, e2, e5): SS 33.33, LM 66.67; b 0/100; c 100/50 -> SS 44.44, LM 72.22, ICAT 72.22*44.44/50
EXPECTED = {
    "intrasentence": {
        "gender": (3, 75.0, 25.0, 37.5),
        "race": (1, 50.0, 100.0, 0.0),
        "overall": (4, 200 / 3, 50.0, 200 / 3),
    },
    "intersentence": {"gender": (1, 100.0, 0.0, 0.0), "overall": (1, 100.0, 0.0, 0.0)},
    "overall": (5, 650 / 9, 400 / 9, (650 / 9) * (400 / 9) / 50),
}


def gold_doc() -> dict:
    data = {"intrasentence": [], "intersentence": []}
    for split, eid, target, bt, _ in ROWS:
        ctx = "The BLANK person." if split == "intrasentence" else "A context."
        data[split].append(
            {
                "id": eid,
                "target": target,
                "bias_type": bt,
                "context": ctx,
                "sentences": [
                    {
                        "id": f"{eid}-{lab}",
                        "sentence": f"Sentence {eid} {lab}.",
                        "gold_label": lab,
                        "labels": [{"label": lab, "human_id": "h"}],
                    }
                    for lab in LABELS
                ],
            }
        )
    return {"version": "test", "data": data}


def predictions_doc() -> dict:
    out = {"intrasentence": [], "intersentence": []}
    for split, eid, _, _, scores in ROWS:
        out[split] += [{"id": f"{eid}-{lab}", "score": float(s)} for lab, s in zip(LABELS, scores)]
    return out
