"""The training lab's experiments: live training presets, transfer, data bias, memorization.

Each ``run_*`` takes a params dataclass (defaults = what the page runs, sized to finish well under
60 s on a 2-core CPU) and an optional progress callback; a callback returning True cancels the run
(``llmviz.errors.InputError`` is never raised for cancellation: the partial result comes back with
``cancelled=True``). Everything is seeded, so the same params give the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np

from llmviz.bias.templates import template_probe
from llmviz.errors import InputError
from llmviz.limits import MAX_TRAIN_STORIES
from llmviz.models.loading import MASKED_LM, LoadedModel, load_model, model_facts
from llmviz.train import corpus as C
from llmviz.train import privacy, transfer
from llmviz.train.loop import History, TrainSettings, train_lm
from llmviz.train.tiny import CAUSAL, MLM, TinyConfig, build_model, count_params
from llmviz.train.tokenizer import build_vocab, make_tokenizer

Progress = Callable[[float, str], "bool | None"]  # (fraction done, message) -> cancel?
MAX_STORIES = MAX_TRAIN_STORIES


def tokenizer_for(objective: str):
    """The lab's fixed word-level tokenizer (same ids for every corpus knob)."""
    return make_tokenizer(build_vocab(C.vocabulary()), causal=objective == CAUSAL)


# ---------------------------------------------------------------- 1. live training presets
@dataclass(frozen=True)
class LiveParams:
    objective: str = CAUSAL
    positional: str = "learned"
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.0
    stories: int = 40
    val_stories: int = 100
    words: int = 8
    epochs: int = 100
    batch_size: int = 16
    lr: float = 4e-3
    weight_decay: float = 0.0
    early_stopping: bool = False
    patience: int = 4
    max_seconds: float = 50.0
    seed: int = 0

    def tiny(self) -> TinyConfig:
        return TinyConfig(
            self.objective, self.positional, self.n_layers, self.d_model, self.n_heads, self.d_ff, self.dropout
        ).validate()

    def settings(self) -> TrainSettings:
        return TrainSettings(
            self.epochs,
            self.batch_size,
            self.lr,
            self.weight_decay,
            self.early_stopping,
            self.patience,
            self.max_seconds,
            self.seed,
        ).validate()


OVERFIT = LiveParams()
PRESETS: dict[str, LiveParams] = {  # the overfitting run and one change each that cures it
    "overfit": OVERFIT,
    "more_data": replace(OVERFIT, stories=400, epochs=10),
    "dropout": replace(OVERFIT, dropout=0.4),
    "weight_decay": replace(OVERFIT, weight_decay=5.0),
    "early_stopping": replace(OVERFIT, early_stopping=True),
}


@dataclass
class LiveResult:
    params: LiveParams
    history: History
    model: Any  # the trained transformers model (eval mode)
    tokenizer: Any
    n_params: int

    def table(self) -> list[dict]:
        h = self.history
        return [
            {"step": s, "epoch": e, "train_loss": a, "val_loss": b}
            for s, e, a, b in zip(h.step, h.epoch, h.train_loss, h.val_loss)
        ]


def run_live(
    params: LiveParams = OVERFIT,
    on_eval: Callable[[History], bool | None] | None = None,
    on_step: Callable[[], bool | None] | None = None,
) -> LiveResult:
    """Train the tiny transformer on ``stories`` grammar stories; validate on ``val_stories`` others.
    ``on_step``: checked after every step (Stop, a job's budget), see :func:`llmviz.train.loop.train_lm`."""
    if not 4 <= params.stories <= MAX_STORIES or not 4 <= params.val_stories <= 1000:
        raise InputError(f"Use 4-{MAX_STORIES:,} training and 4-1,000 validation stories.")
    tiny, settings = params.tiny(), params.settings()
    tok = tokenizer_for(params.objective)
    texts = C.grammar_corpus(params.stories + params.val_stories, params.words, 0.0, params.seed).texts
    train, val = texts[: params.stories], texts[params.stories :]
    model = build_model(tiny, tok, params.seed)
    hist = train_lm(model, tok, train, val, settings, on_eval, on_step=on_step)
    return LiveResult(params, hist, model, tok, count_params(model))


# ---------------------------------------------------------------- shared: pretrain a tiny MLM
def pretrain_mlm(
    texts: list[str],
    val_texts: list[str],
    tiny: TinyConfig,
    settings: TrainSettings,
    progress: Callable[[History], bool | None] | None = None,
):
    tok = tokenizer_for(MLM)
    model = build_model(replace(tiny, objective=MLM), tok, settings.seed)
    hist = train_lm(model, tok, texts, val_texts, settings, progress, eval_points=10)
    return model, tok, hist


def as_loaded(model, tokenizer, model_id: str) -> LoadedModel:
    """Wrap an in-memory trained model as a LoadedModel (what every llmviz probe takes)."""
    kind = MASKED_LM if not model.config.architectures[0].endswith("LMHeadModel") else "causal_lm"
    return LoadedModel(
        model_id, model.eval(), tokenizer, model_facts(model, tokenizer, model_id, "trained", kind, "cpu")
    )


def _forward(progress: Progress | None, lo: float, hi: float, label: str):
    """A train_lm callback mapping its progress into [lo, hi] of the whole experiment."""
    if progress is None:
        return None
    return lambda h: progress(
        lo + (hi - lo) * h.progress, f"{label}: step {h.step[-1]}/{h.total_steps}, val loss {h.val_loss[-1]:.3f}"
    )


# ---------------------------------------------------------------- 2. transfer
@dataclass(frozen=True)
class TransferParams:
    sizes: tuple[int, ...] = (16, 64, 256)
    pretrain_stories: int = 800
    pretrain_epochs: int = 4
    d_model: int = 64
    n_layers: int = 2
    steps: int = 40
    lr: float = 2e-3
    n_test: int = 200
    use_minilm: bool = True
    seed: int = 0


def run_transfer(
    params: TransferParams = TransferParams(), minilm: LoadedModel | None = None, progress: Progress | None = None
):
    """Accuracy vs labelled examples for the three methods. Returns (TransferResult, mlm, tokenizer)."""
    if not params.sizes or any(not 2 <= n <= transfer.MAX_LABELS for n in params.sizes):
        raise InputError(f"Labelled-set sizes must be between 2 and {transfer.MAX_LABELS}.")
    t0 = time.perf_counter()
    tiny = TinyConfig(MLM, "learned", params.n_layers, params.d_model, 4, params.d_model * 2).validate()
    settings = TrainSettings(params.pretrain_epochs, 16, 3e-3, 0.0, seed=params.seed).validate()
    texts = C.grammar_corpus(params.pretrain_stories + 100, 8, 0.0, params.seed).texts
    mlm, tok, hist = pretrain_mlm(texts[:-100], texts[-100:], tiny, settings, _forward(progress, 0, 0.6, "pretraining"))
    if hist.stop_reason == "cancelled":
        return None, mlm, tok
    pool = C.number_set(max(params.sizes), params.seed + 1, words="seen")
    test = C.number_set(params.n_test, params.seed + 2, words="all")
    methods = ["finetune", "scratch"] + (["minilm"] if params.use_minilm else [])
    acc: dict[str, list[float]] = {m: [] for m in methods}
    feats = None
    if params.use_minilm:
        if minilm is None:
            minilm = load_model("minilm")
        feats = (transfer.mean_pooled(minilm, pool.texts), transfer.mean_pooled(minilm, test.texts))
    for i, n in enumerate(params.sizes):
        texts_n, y_n = pool.texts[:n], pool.labels[:n]
        for m in methods:
            if progress is not None and progress(
                0.6 + 0.4 * (i + methods.index(m) / len(methods)) / len(params.sizes),
                f"{transfer.METHODS[m]}: {n} labelled examples",
            ):
                return None, mlm, tok
            if m == "minilm":
                acc[m].append(transfer.logistic_accuracy(feats[0][:n], y_n, feats[1], test.labels, params.seed))
                continue
            clf = transfer.make_classifier(mlm, m == "finetune", params.seed)
            transfer.fit_classifier(clf, tok, texts_n, y_n, params.steps, params.lr, seed=params.seed)
            acc[m].append(float(np.mean(transfer.predict(clf, tok, test.texts) == test.labels)))
    result = transfer.TransferResult(
        list(params.sizes), acc, params.n_test, hist.val_loss[-1], time.perf_counter() - t0
    )
    return result, mlm, tok


# ---------------------------------------------------------------- 3. data bias -> model bias
# group slot = occupation, target = pronoun: the probe asks how likely "he" vs "she" refers back.
BIAS_TEMPLATES = (
    "the {group} lives near the park . [MASK] has 3 cats .",
    "the {group} walks to the market . [MASK] feels calm and smiles .",
)
BIAS_TARGETS = ["he", "she"]


@dataclass(frozen=True)
class BiasParams:
    stories: int = 1200
    epochs: int = 5
    skew: float = 1.0
    words: int = 8
    d_model: int = 64
    n_layers: int = 2
    cda: bool = False
    seed: int = 0


@dataclass
class BiasResult:
    """Per trained MLM (``"skewed"``, ``"balanced"``, optionally ``"cda"``): the template probe's
    he-minus-she score for the pronoun referring back to each occupation (see ``probe_gender``).

    log_ratio[name]: [n_occupations]; positive = the model links the occupation with "he".
    alignment[name]: mean of log_ratio * (+1 for stereotypically male, -1 for female occupations):
    how strongly the model reproduces the stereotype (0 = none).
    counts[name]: the corpus' he/she co-occurrence counts per occupation.
    """

    occupations: list[str]
    stereotype: list[str]
    log_ratio: dict[str, np.ndarray]
    alignment: dict[str, float]
    counts: dict[str, dict[str, dict[str, int]]]
    probes: dict[str, list] = field(default_factory=dict)  # name -> TemplateProbeResult per template
    seconds: float = 0.0

    def rows(self) -> list[dict]:
        return [
            {
                "model": name,
                "occupation": o,
                "stereotype": s,
                "log_p_he_minus_she": float(v),
                "corpus_he": self.counts[name][o]["he"],
                "corpus_she": self.counts[name][o]["she"],
            }
            for name, lr in self.log_ratio.items()
            for o, s, v in zip(self.occupations, self.stereotype, lr)
        ]


def probe_gender(loaded: LoadedModel, occupations: list[str]) -> tuple[np.ndarray, list]:
    """Per occupation, Kurita's score of "he" minus that of "she" in the pronoun slot, from the bias
    module's template probe, averaged over the templates. Kurita subtracts the prior with the
    occupation masked too, so this is log p(he|occ)/p(she|occ) relative to the model's overall
    he/she preference: 0 = the occupation does not move the pronoun. Shape [n_occupations]."""
    probes = [template_probe(loaded, t, occupations, BIAS_TARGETS) for t in BIAS_TEMPLATES]
    return np.mean([p.score[:, 0] - p.score[:, 1] for p in probes], axis=0), probes


def run_bias(params: BiasParams = BiasParams(), progress: Progress | None = None):
    """Train MLMs on a skewed and a balanced corpus (same seed otherwise) and probe both.
    Returns (BiasResult or None if cancelled, {name: (model, tokenizer)})."""
    t0 = time.perf_counter()
    tiny = TinyConfig(MLM, "learned", params.n_layers, params.d_model, 4, params.d_model * 2).validate()
    settings = TrainSettings(params.epochs, 16, 3e-3, seed=params.seed).validate()
    base = C.grammar_corpus(params.stories, params.words, params.skew, params.seed)
    corpora = {"skewed": base, "balanced": C.grammar_corpus(params.stories, params.words, 0.0, params.seed)}
    if params.cda:
        corpora["cda"] = C.counterfactual_augment(base)
    val = C.grammar_corpus(100, params.words, 0.0, params.seed + 99).texts
    occs = base.occupations
    out_ratio, align, counts, probes, models = {}, {}, {}, {}, {}
    sign = np.array([1.0 if C.OCCUPATIONS[o] == "m" else -1.0 for o in occs])
    for i, (name, corp) in enumerate(corpora.items()):
        lo, hi = i / len(corpora), (i + 1) / len(corpora)
        texts = corp.texts
        s = settings if name != "cda" else replace(settings, epochs=max(1, settings.epochs // 2))  # same steps
        model, tok, hist = pretrain_mlm(texts, val, tiny, s, _forward(progress, lo, hi, f"{name} corpus"))
        if hist.stop_reason == "cancelled":
            return None, models
        models[name] = (model, tok)
        out_ratio[name], probes[name] = probe_gender(as_loaded(model, tok, f"lab-{name}"), occs)
        align[name] = float(np.mean(out_ratio[name] * sign))
        counts[name] = C.cooccurrence(texts, occs)
    stereo = ["male" if C.OCCUPATIONS[o] == "m" else "female" for o in occs]
    return BiasResult(occs, stereo, out_ratio, align, counts, probes, time.perf_counter() - t0), models


# ---------------------------------------------------------------- 4. memorization
@dataclass(frozen=True)
class MemoParams:
    repeats: tuple[int, ...] = (0, 1, 4, 16, 64)
    stories: int = 400
    epochs: int = 6
    d_model: int = 64
    n_layers: int = 2
    n_digits: int = 4
    seed: int = 0


@dataclass
class MemoResult:
    rows: list[privacy.ExposureRow]
    history: History
    n_candidates: int
    seconds: float

    def records(self) -> list[dict]:
        return [{**asdict(r), "leaked": r.leaked} for r in self.rows]


def run_memorization(params: MemoParams = MemoParams(), progress: Progress | None = None):
    """Plant canaries, train a tiny causal LM, measure exposure. Returns (MemoResult|None, model, tok)."""
    t0 = time.perf_counter()
    canaries = privacy.make_canaries(list(params.repeats), params.seed, params.n_digits)
    tiny = TinyConfig(CAUSAL, "learned", params.n_layers, params.d_model, 4, params.d_model * 4).validate()
    settings = TrainSettings(params.epochs, 16, 3e-3, seed=params.seed).validate()
    texts = C.grammar_corpus(params.stories + 100, 8, 0.0, params.seed).texts
    train = privacy.plant(texts[: params.stories], canaries, params.seed)
    tok = tokenizer_for(CAUSAL)
    model = build_model(tiny, tok, params.seed)
    hist = train_lm(
        model, tok, train, texts[params.stories :], settings, _forward(progress, 0, 0.9, "training"), eval_points=10
    )
    if hist.stop_reason == "cancelled":
        return None, model, tok
    if progress is not None:
        progress(0.9, f"scoring all {10**params.n_digits:,} candidate secrets per canary")
    rows = privacy.measure(model, tok, canaries)
    return MemoResult(rows, hist, 10**params.n_digits, time.perf_counter() - t0), model, tok


EXPERIMENTS = {"live": run_live, "transfer": run_transfer, "bias": run_bias, "memorization": run_memorization}
