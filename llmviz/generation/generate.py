"""Generation with streaming and per-step probabilities (causal LMs).

One step loop with a KV cache produces both the streamed tokens and their probabilities,
so what the user sees streaming is exactly what is measured.

Which probabilities are reported (per step, logits ``z`` of shape ``[vocab]``):

* ``model_prob`` / ``model_entropy`` / alternatives ranking: ``softmax(z)`` — the model's own
  next-token distribution, temperature 1, no warpers.
* ``prob`` / ``entropy``: the distribution the token was actually drawn from. The warpers are
  applied in the order of ``transformers.generate``: repetition penalty (on every token already
  in the prompt or the output) -> temperature -> top-k -> top-p, then softmax. In greedy mode
  only the repetition penalty applies (temperature 1, no top-k/top-p) and the token is its argmax.

``precision`` (:data:`llmviz.precision.GENERATION_MODES`): ``exact`` (float32, the default) or ``int8``, the
loaded model's weight-only int8 twin (``llmviz.generation.quantize``); the result says which ran
(``Generation.precision``) and ``llmviz.generation.deviation`` measures how far it moved from float32.

Entropies are in bits. Randomness: step ``i`` draws from its own ``torch.Generator`` seeded
with ``seed * 100_003 + i``, so a branch that replays the same prefix replays the same draws.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import numpy as np

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.generation.quantize import int8_twin
from llmviz.models.anatomy import cache_keyword, forward_params
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.precision import EXACT, INT8, check_generation_mode

MAX_NEW_TOKENS_LIMIT = 256  # the slider's upper bound; longer runs are refused
from llmviz.limits import MAX_PROMPT_WORDS, MAX_SYSTEM_PROMPT_WORDS  # noqa: E402 - longer text is cut with a notice

MAX_ALTERNATIVES = 20
SEED_STRIDE = 100_003
STOP_REASONS = ("eos", "max_new_tokens", "stopped", "context", "sentence_end", "stop_string")
MAX_STOP_STRINGS, MAX_STOP_STRING_CHARS = 4, 16
MAX_SENTENCES = 10
# A sentence ends with . ! ? … (then closing quotes/brackets) followed by whitespace, or with a full-width
# 。！？ (Chinese puts no space after it). "3.14", "e.g.," and "file.py" are not sentence ends.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_CJK_SENTENCE_END = re.compile(r"[。！？][」』”’）)]*$")
# The same ends inside a text: an ASCII end followed by whitespace, or a full-width one anywhere.
_SENTENCE_ENDS_WITHIN = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)|[。！？][」』”’）)]*")


def ends_sentence(text: str, next_piece: str) -> bool:
    """True when ``text`` ends a sentence, judged with the piece of text that would come next (a full stop
    only ends a sentence when whitespace follows it)."""
    body = text.rstrip()
    if not body or body != text:  # the break itself is the next piece: "Hello." + "\n", not "Hello.\n" + ...
        return False
    if _CJK_SENTENCE_END.search(body):
        return True
    return bool(_SENTENCE_END.search(body)) and (not next_piece or next_piece[0].isspace())


def sentences_ended(text: str, next_piece: str) -> int:
    """How many sentences ``text`` has ended, judged with the piece that would come next (as
    ``ends_sentence`` judges its last one): "A. B." + " C" -> 2; "3.14 is pi." + "" -> 1."""
    body = text.rstrip()
    inside = sum(1 for m in _SENTENCE_ENDS_WITHIN.finditer(body) if m.end() < len(body))
    return inside + int(ends_sentence(text, next_piece))


def cut_words(text: str, limit: int) -> tuple[str, int]:
    """First ``limit`` whitespace-separated words of ``text`` (layout kept); returns (text, n_words)."""
    words = list(re.finditer(r"\S+", text))
    if len(words) <= limit:
        return text, len(words)
    return text[: words[limit - 1].end()], len(words)


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings. ``top_k=0`` and ``top_p=1.0`` switch those filters off."""

    greedy: bool = False
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.0
    max_new_tokens: int = 48
    seed: int = 0
    n_alternatives: int = 5
    # Stopping rules besides EOS and max_new_tokens (0 / () = off): once ``sentence_end_after`` tokens are
    # out, end at the first sentence end at which the new text has ended ``sentences`` sentences; end once
    # the output contains one of ``stop_strings`` after some text (the token holding it is kept).
    sentence_end_after: int = 0
    stop_strings: tuple[str, ...] = ()
    sentences: int = 1

    def checked(self) -> "SamplingParams":
        """Validate; raises InputError with what to change."""
        if not 1 <= int(self.max_new_tokens) <= MAX_NEW_TOKENS_LIMIT:
            raise InputError(
                f"Max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT} (got {self.max_new_tokens})."
            )
        if not self.greedy and not 0.01 <= float(self.temperature) <= 5.0:
            raise InputError(
                f"Temperature must be between 0.01 and 5 (got {self.temperature}); "
                "for temperature 0 choose greedy decoding."
            )
        if int(self.top_k) < 0:
            raise InputError("Top-k must be 0 (off) or a positive number of tokens.")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise InputError(f"Top-p must be in (0, 1] (got {self.top_p}); 1 switches it off.")
        if not 0.5 <= float(self.repetition_penalty) <= 3.0:
            raise InputError(
                f"Repetition penalty must be between 0.5 and 3 (got {self.repetition_penalty}); 1 switches it off."
            )
        if not 1 <= int(self.n_alternatives) <= MAX_ALTERNATIVES:
            raise InputError(f"Alternatives per step must be between 1 and {MAX_ALTERNATIVES}.")
        if not 0 <= int(self.sentence_end_after) <= MAX_NEW_TOKENS_LIMIT:
            raise InputError(
                f"'Stop at a sentence end after' must be between 0 (off) and {MAX_NEW_TOKENS_LIMIT} tokens "
                f"(got {self.sentence_end_after})."
            )
        if not 1 <= int(self.sentences) <= MAX_SENTENCES:
            raise InputError(f"Sentences to write must be between 1 and {MAX_SENTENCES} (got {self.sentences}).")
        if len(self.stop_strings) > MAX_STOP_STRINGS or any(
            not s or len(s) > MAX_STOP_STRING_CHARS for s in self.stop_strings
        ):
            raise InputError(
                f"Give at most {MAX_STOP_STRINGS} stop strings of 1 to {MAX_STOP_STRING_CHARS} characters each."
            )
        return self

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ---------------------------------------------------------------- warpers (pure, on 1-D logits [vocab])
def repetition_penalty(logits, seen_ids: Sequence[int], penalty: float):
    """CTRL penalty as in transformers: seen tokens' logits divided by ``penalty`` if > 0, else multiplied."""
    import torch

    if penalty == 1.0 or not seen_ids:
        return logits
    idx = torch.tensor(sorted(set(int(i) for i in seen_ids)), dtype=torch.long, device=logits.device)
    vals = logits[idx]
    out = logits.clone()
    out[idx] = torch.where(vals > 0, vals / penalty, vals * penalty)
    return out


def top_k_filter(logits, k: int):
    """Keep the ``k`` highest logits (ties at the threshold kept), others -> -inf. ``k=0``: off."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    import torch

    threshold = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < threshold, float("-inf"))


def top_p_filter(logits, p: float):
    """Nucleus filter with transformers' semantics: drop the low tail whose mass is <= 1 - p
    (at least one token kept). ``p=1``: off."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(descending=False)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    remove_sorted = cum <= (1 - p)
    remove_sorted[-1] = False
    remove = remove_sorted.scatter(0, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def sampling_logits(logits, seen_ids: Sequence[int], params: SamplingParams):
    """Logits [vocab] of the distribution a token is drawn from (see the module docstring)."""
    z = repetition_penalty(logits, seen_ids, params.repetition_penalty)
    if params.greedy:
        return z
    z = z / params.temperature
    return top_p_filter(top_k_filter(z, int(params.top_k)), float(params.top_p))


def _softmax_np(z: np.ndarray) -> np.ndarray:
    """Softmax in float64 of a [vocab] vector (-inf entries -> probability 0)."""
    e = np.exp(z.astype(np.float64) - np.max(z))
    return e / e.sum()


def _entropy_np(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


# ---------------------------------------------------------------- records and results
@dataclass(frozen=True)
class Alternative:
    token_id: int
    token: str
    model_prob: float  # softmax of the raw logits
    prob: float  # in the sampling distribution (0 when a filter removed it)


@dataclass
class StepRecord:
    """One generated token. ``alternatives`` are the top tokens by ``model_prob`` (chosen one included)."""

    index: int
    token_id: int
    token: str
    prob: float
    model_prob: float
    entropy: float  # bits, sampling distribution
    model_entropy: float  # bits, softmax of raw logits
    rank: int  # 1-based rank of the chosen token in the model distribution
    alternatives: list[Alternative]
    forced: bool = False
    text: str = ""  # decoded output up to and including this step (special tokens skipped)


@dataclass
class Prompt:
    """What the model is fed. ``text`` is the rendered prompt (chat template included)."""

    ids: list[int]
    text: str
    user: str
    system: str
    chat_template: bool
    notices: list[str] = field(default_factory=list)


@dataclass
class Generation:
    """A finished (or stopped) run. Arrays over steps have shape ``[n_steps]``."""

    model_id: str
    prompt: Prompt
    params: SamplingParams
    steps: list[StepRecord]
    stop_reason: str
    text: str
    forced_from: int | None = None  # step where a forced alternative was inserted (branches)
    notices: list[str] = field(default_factory=list)
    ttft_s: float | None = None
    elapsed_s: float = 0.0
    precision: str = EXACT  # the arithmetic that ran (llmviz.precision.GENERATION_MODES)
    deviation: object | None = None  # llmviz.generation.deviation.Deviation, for a fast run once measured

    @property
    def token_ids(self) -> list[int]:
        return [s.token_id for s in self.steps]

    def probs(self) -> np.ndarray:
        return np.array([s.prob for s in self.steps], dtype=np.float64)

    def model_probs(self) -> np.ndarray:
        return np.array([s.model_prob for s in self.steps], dtype=np.float64)

    def entropies(self) -> np.ndarray:
        return np.array([s.entropy for s in self.steps], dtype=np.float64)


# ---------------------------------------------------------------- prompt
def build_prompt(loaded: LoadedModel, user: str, system: str = "", use_chat_template: bool = True) -> Prompt:
    """Render (chat template for instruct models) and tokenize; long text is cut with a notice."""
    _require_causal(loaded)
    user = (user or "").strip()
    if not user:
        raise InputError("The prompt is empty. Type what the model should respond to, or pick a preset.")
    notices = []
    user, n_words = cut_words(user, MAX_PROMPT_WORDS)
    if n_words > MAX_PROMPT_WORDS:
        notices.append(f"The prompt had {n_words:,} words; only the first {MAX_PROMPT_WORDS:,} are used.")
    system, n_sys = cut_words((system or "").strip(), MAX_SYSTEM_PROMPT_WORDS)
    if n_sys > MAX_SYSTEM_PROMPT_WORDS:
        notices.append(f"The system prompt had {n_sys:,} words; only the first {MAX_SYSTEM_PROMPT_WORDS:,} are used.")
    tok = loaded.tokenizer
    chat = bool(use_chat_template and getattr(tok, "chat_template", None))
    if chat:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
    else:
        text = f"{system}\n\n{user}" if system else user
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if tok.bos_token_id is not None:
            ids = [tok.bos_token_id] + ids
    return Prompt(list(ids), text, user, system, chat, notices)


def _require_causal(loaded: LoadedModel) -> None:
    if loaded.facts.kind != CAUSAL_LM:
        raise UnsupportedModelError(
            f"Generation needs a causal language model; {loaded.facts.model_id} is a "
            f"{loaded.facts.kind.replace('_', ' ')}. Pick smollm2 in the sidebar (fill-mask works with masked LMs)."
        )


def eos_ids(loaded: LoadedModel) -> set[int]:
    ids = set()
    cfg_eos = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    for v in (cfg_eos, loaded.tokenizer.eos_token_id):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids


# ---------------------------------------------------------------- the step loop
def _forward(model, ids, cache, keep: int):
    """One forward pass. Returns (logits [keep, vocab] float32, cache). Works with the ``cache``
    (transformers >= 5.2x) and the older ``past_key_values`` keyword."""
    params = forward_params(type(model))
    kwargs = {"input_ids": ids, "use_cache": True}
    if cache is not None:
        kwargs[cache_keyword(model) or "past_key_values"] = cache
    if "logits_to_keep" in params:
        kwargs["logits_to_keep"] = keep
    out = model(**kwargs)
    new_cache = getattr(out, "cache", None)
    if new_cache is None:
        new_cache = getattr(out, "past_key_values", None)
    return out.logits[0, -keep:].float(), new_cache


class GenerationStream:
    """Iterate to get :class:`StepRecord` s as they are generated; then ``result()``.

    ``forced`` token ids are used for the first steps instead of sampling (branching); their
    probabilities are still recorded. ``record=False`` skips probabilities (for benchmarks).
    ``stop()`` is polled before every sampled step. Steps are stored as they are yielded, so
    ``result()`` works even after the consumer stopped iterating early.

    ``resume``: a finished generation to extend (see :func:`continue_generation`): its steps are kept, the
    new ones continue its step numbers (so its seeds), and ``params.max_new_tokens`` counts them all. The
    sentence-end rule counts only the new tokens (the old text usually ends a sentence already).

    ``precision``: ``exact`` (float32) or ``int8`` (the model's weight-only int8 twin; InputError saying why
    where this machine cannot run it). A continuation keeps the precision of the run it extends.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        prompt: Prompt,
        params: SamplingParams,
        forced: Sequence[int] = (),
        record: bool = True,
        stop: Callable[[], bool] | None = None,
        stop_at_eos: bool = True,
        forced_from: int | None = None,
        resume: Generation | None = None,
        precision: str | None = None,
    ):
        _require_causal(loaded)
        self.loaded, self.prompt, self.params = loaded, prompt, params.checked()
        if precision is None:
            precision = resume.precision if resume is not None else EXACT
        self.precision = check_generation_mode(precision, loaded.device)
        self.forced, self.record, self.stop, self.stop_at_eos = list(forced), record, stop, stop_at_eos
        self.forced_from = forced_from if resume is None else resume.forced_from
        if resume is not None and self.forced:
            raise InputError("A continuation cannot also force tokens; branch first, then continue the branch.")
        self.steps: list[StepRecord] = list(resume.steps) if resume is not None else []
        self.token_ids: list[int] = [s.token_id for s in self.steps]
        self.start = len(self.steps)  # steps carried over from the generation being continued
        # their text, decoded once: the stopping rules look only at what this stream adds after it
        tok = loaded.tokenizer
        self.carried_text = tok.decode(self.token_ids, skip_special_tokens=True) if self.token_ids else ""
        self.stop_reason = "stopped"  # until the loop ends by itself
        self.notices = list(prompt.notices)
        self.ttft_s: float | None = resume.ttft_s if resume is not None else None
        self.elapsed_s = resume.elapsed_s if resume is not None else 0.0  # a continuation adds its time
        room = loaded.facts.max_positions - len(prompt.ids) if loaded.facts.max_positions else MAX_NEW_TOKENS_LIMIT
        if room < 1:
            raise InputError(
                f"The prompt has {len(prompt.ids)} tokens, the model's whole context "
                f"({loaded.facts.max_positions}). Shorten it."
            )
        self.max_steps = min(self.params.max_new_tokens, room)
        if len(self.forced) > self.max_steps:
            raise InputError("The forced prefix is longer than the maximum number of new tokens.")
        if self.start >= self.max_steps:
            raise InputError(
                f"The output already has {self.start} tokens, as many as fit ({self.max_steps}); it cannot be continued."
            )
        if self.max_steps < self.params.max_new_tokens:
            self.notices.append(
                f"Only {room} new tokens fit in the model's context of {loaded.facts.max_positions} tokens."
            )

    def _choose(self, logits, step: int):
        import torch

        z = sampling_logits(logits, self.prompt.ids + self.token_ids, self.params)
        if self.params.greedy:
            return int(torch.argmax(z)), z
        gen = torch.Generator(device=z.device).manual_seed(int(self.params.seed) * SEED_STRIDE + step)
        return int(torch.multinomial(z.softmax(-1), 1, generator=gen)), z

    def _record(self, step: int, logits, z, token_id: int, forced: bool) -> StepRecord:
        import torch

        # numpy (float64, single-threaded) is cheaper than torch's parallel kernels on one
        # [vocab] vector and keeps the per-step overhead small next to the forward pass.
        tok = self.loaded.tokenizer
        if z is None:
            z = sampling_logits(logits, self.prompt.ids + self.token_ids, self.params)
        p_model = _softmax_np(logits.detach().cpu().numpy())
        p_sample = p_model if z is logits else _softmax_np(z.detach().cpu().numpy())
        # the n most likely tokens: torch's top-k on the logits (same order as the softmax) takes ~0.1 ms where
        # numpy's argpartition over the vocabulary took ~1 ms, every step
        top = torch.topk(logits.detach(), int(self.params.n_alternatives)).indices.tolist()
        alts = [Alternative(i, tok.decode([i]), float(p_model[i]), float(p_sample[i])) for i in top]
        rank = int((p_model > p_model[token_id]).sum()) + 1
        h_model = _entropy_np(p_model)
        h_sample = h_model if p_sample is p_model else _entropy_np(p_sample)
        return StepRecord(
            step,
            token_id,
            tok.decode([token_id]),
            float(p_sample[token_id]),
            float(p_model[token_id]),
            h_sample,
            h_model,
            rank,
            alts,
            forced,
        )

    def __iter__(self) -> Iterator[StepRecord]:
        import torch

        t0 = time.perf_counter() - self.elapsed_s
        eos = eos_ids(self.loaded) if self.stop_at_eos else set()
        model = int8_twin(self.loaded.model) if self.precision == INT8 else self.loaded.model
        with torch.inference_mode():
            ids = torch.tensor([self.prompt.ids + self.token_ids + self.forced], device=self.loaded.device)
            rows, cache = _forward(model, ids, None, keep=len(self.forced) + 1)  # [n_forced + 1, vocab]
            logits = rows[-1]
            for step in range(self.start, self.max_steps):
                if step - self.start < len(self.forced):
                    logits_i, token_id, z, forced = rows[step - self.start], self.forced[step - self.start], None, True
                else:
                    if self.stop is not None and self.stop():
                        self.stop_reason = "stopped"
                        break
                    token_id, z = self._choose(logits, step)
                    logits_i, forced = logits, False
                    if token_id not in eos and self._sentence_done(token_id):
                        self.stop_reason = "sentence_end"  # the chosen token would start the next sentence
                        break
                rec = (
                    self._record(step, logits_i, z, token_id, forced)
                    if self.record
                    else StepRecord(step, token_id, "", math.nan, math.nan, math.nan, math.nan, 0, [], forced)
                )
                self.token_ids.append(token_id)
                if self.record:
                    rec.text = self.loaded.tokenizer.decode(self.token_ids, skip_special_tokens=True)
                self.steps.append(rec)
                if self.ttft_s is None:
                    self.ttft_s = time.perf_counter() - t0
                self.elapsed_s = time.perf_counter() - t0
                yield rec
                if token_id in eos and not forced:
                    self.stop_reason = "eos"
                    break
                if not forced and self._stop_string_seen():
                    self.stop_reason = "stop_string"
                    break
                if step + 1 >= self.max_steps:
                    self.stop_reason = "max_new_tokens" if self.max_steps == self.params.max_new_tokens else "context"
                    break
                if not forced:  # forced tokens were already in the prefill
                    rows_next, cache = _forward(model, torch.tensor([[token_id]], device=ids.device), cache, 1)
                    logits = rows_next[-1]
        self.elapsed_s = time.perf_counter() - t0

    def _sentence_done(self, next_id: int) -> bool:
        """The sentence-end rule, checked with the chosen next token before it is added."""
        after = int(self.params.sentence_end_after)
        if after <= 0 or len(self.token_ids) - self.start < after:
            return False
        tok = self.loaded.tokenizer
        text = tok.decode(self.token_ids, skip_special_tokens=True)
        nxt = tok.decode(self.token_ids + [next_id], skip_special_tokens=True)[len(text) :]
        if not ends_sentence(text, nxt):
            return False
        if int(self.params.sentences) <= 1:
            return True
        return sentences_ended(text[len(self.carried_text) :], nxt) >= int(self.params.sentences)

    def _stop_string_seen(self) -> bool:
        """A stop string in the new text, after some non-blank text (a leading line break does not stop)."""
        if not self.params.stop_strings:
            return False
        new = self.loaded.tokenizer.decode(self.token_ids, skip_special_tokens=True)[len(self.carried_text) :]
        for s in self.params.stop_strings:
            i = new.find(s, len(new) - len(new.lstrip()))
            if i > 0 and new[:i].strip():
                return True
        return False

    def result(self) -> Generation:
        text = self.loaded.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        return Generation(
            self.loaded.facts.model_id,
            self.prompt,
            self.params,
            list(self.steps),
            self.stop_reason,
            text,
            self.forced_from,
            list(self.notices),
            self.ttft_s,
            self.elapsed_s,
            self.precision,
        )


def generate(loaded: LoadedModel, prompt: Prompt, params: SamplingParams, **kwargs) -> Generation:
    """Run a :class:`GenerationStream` to the end and return the result."""
    stream = GenerationStream(loaded, prompt, params, **kwargs)
    for _ in stream:
        pass
    return stream.result()


def continue_generation(
    loaded: LoadedModel, parent: Generation, extra_tokens: int, stop: Callable[[], bool] | None = None
) -> GenerationStream:
    """Extend ``parent`` by up to ``extra_tokens`` tokens with its settings and seed: the stream yields only
    the new steps; its result holds the old and the new ones (as one longer run would, except that the
    stopping rules are applied again to the new text)."""
    if parent.model_id != loaded.facts.model_id:
        raise InputError(
            f"This output was generated by {parent.model_id}; load that model again to continue it, or generate anew."
        )
    n = len(parent.steps)
    if n >= MAX_NEW_TOKENS_LIMIT:
        raise InputError(f"The output already has {n} tokens, the limit of {MAX_NEW_TOKENS_LIMIT}; it cannot grow.")
    budget = min(MAX_NEW_TOKENS_LIMIT, n + max(1, int(extra_tokens)))
    return GenerationStream(
        loaded, parent.prompt, replace(parent.params, max_new_tokens=budget), stop=stop, resume=parent
    )


def branch(
    loaded: LoadedModel, parent: Generation, step: int, token_id: int, stop: Callable[[], bool] | None = None
) -> GenerationStream:
    """Force ``token_id`` at ``step`` of ``parent`` (earlier tokens kept) and continue with the same
    settings and seed. The branch gets the parent's token budget, or 16 more when that is used up."""
    if not 0 <= step < len(parent.steps):
        raise InputError(f"Step {step} is not in this output (it has {len(parent.steps)} steps).")
    budget = parent.params.max_new_tokens
    if step + 1 >= budget:
        budget = min(MAX_NEW_TOKENS_LIMIT, step + 17)
    params = replace(parent.params, max_new_tokens=budget)
    return GenerationStream(
        loaded,
        parent.prompt,
        params,
        forced=parent.token_ids[:step] + [int(token_id)],
        stop=stop,
        forced_from=step,
        precision=parent.precision,
    )
