"""Language-model training with live callbacks, early stopping, a time limit and cancellation.

``train_lm(model, tokenizer, train_texts, val_texts, settings, on_eval)`` runs AdamW on the
masked-LM or next-token objective and calls ``on_eval(history)`` after every evaluation so a page
can redraw the loss curves; ``on_eval`` returning True cancels the run. The training loss shown is
the token-weighted mean of the training batches since the previous evaluation (as Keras reports
it); the validation loss is computed in eval mode on a fixed, seeded masking of the validation set.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from llmviz.errors import InputError

MASK_RATE = 0.15
MAX_EPOCHS = 500
MAX_SECONDS = 120.0
EVAL_POINTS = 40  # evaluations per run: enough points for a smooth live curve


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.0
    early_stopping: bool = False
    patience: int = 4  # evaluations without a new best validation loss
    max_seconds: float = 50.0
    seed: int = 0
    mask_rate: float = MASK_RATE  # masked LM only

    def validate(self) -> "TrainSettings":
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise InputError(f"Epochs must be between 1 and {MAX_EPOCHS} (got {self.epochs}).")
        if not 1 <= self.batch_size <= 512:
            raise InputError(f"Batch size must be between 1 and 512 (got {self.batch_size}).")
        if not 0 < self.lr <= 0.1:
            raise InputError(f"Learning rate must be in (0, 0.1] (got {self.lr}).")
        if not 0 <= self.weight_decay <= 10:
            raise InputError(f"Weight decay must be between 0 and 10 (got {self.weight_decay}).")
        if not 0.05 <= self.mask_rate <= 0.5:
            raise InputError(f"The masking rate must be between 0.05 and 0.5 (got {self.mask_rate}).")
        if not 0 < self.max_seconds <= MAX_SECONDS:
            raise InputError(f"The time limit must be between 1 and {MAX_SECONDS:.0f} s (got {self.max_seconds}).")
        return self


@dataclass
class History:
    """Loss curves so far. All lists have one entry per evaluation."""

    step: list[int] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    total_steps: int = 0
    tokens: int = 0  # training tokens processed (non-padding)
    train_seconds: float = 0.0  # time in training steps only (no evaluation)
    elapsed: float = 0.0
    best_index: int = -1
    stop_reason: str = ""  # "", "done", "early_stopping", "time_limit", "cancelled"

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds else 0.0

    @property
    def progress(self) -> float:
        return min(1.0, self.step[-1] / self.total_steps) if self.step and self.total_steps else 0.0

    @property
    def gap(self) -> float:
        """Validation minus training loss at the last evaluation (the generalisation gap)."""
        return self.val_loss[-1] - self.train_loss[-1] if self.step else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "tokens_per_s": self.tokens_per_s}

    def snapshot(self) -> History:
        """A copy that the training run's further appends do not change (``on_eval`` gets the live one)."""
        return copy.deepcopy(self)


def encode(tokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, padded to the longest text. Shapes [n, seq] (seq <= max_len)."""
    if not texts:
        raise InputError("No texts to train on: make the corpus larger.")
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def mask_tokens(
    ids: torch.Tensor, attn: torch.Tensor, tokenizer, gen: torch.Generator, rate: float = MASK_RATE
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick ``rate`` of the real tokens (at least one per row); 80 % -> [MASK],
    10 % -> random token, 10 % unchanged. Returns (inputs, labels) with labels -100 elsewhere."""
    special = torch.tensor(tokenizer.all_special_ids)
    candidates = attn.bool() & ~torch.isin(ids, special)  # [n, seq]
    pick = (torch.rand(ids.shape, generator=gen) < rate) & candidates
    scores = torch.rand(ids.shape, generator=gen).masked_fill(~candidates, -1.0)
    first = scores.argmax(dim=1)  # guarantee one prediction per row
    pick[torch.arange(ids.shape[0]), first] |= candidates[torch.arange(ids.shape[0]), first]
    labels = torch.where(pick, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    roll = torch.rand(ids.shape, generator=gen)
    inputs[pick & (roll < 0.8)] = tokenizer.mask_token_id
    rand_pos = pick & (roll >= 0.8) & (roll < 0.9)
    inputs[rand_pos] = torch.randint(
        len(tokenizer.all_special_ids), len(tokenizer), (int(rand_pos.sum()),), generator=gen
    )
    return inputs, labels


def causal_labels(ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Next-token labels (the model shifts them): the input ids with padding set to -100."""
    return ids.masked_fill(attn == 0, -100)


def is_mlm(model) -> bool:
    return not model.config.architectures[0].endswith("LMHeadModel")


def lm_batch(model, tokenizer, ids, attn, gen, rate: float = MASK_RATE):
    if is_mlm(model):
        inputs, labels = mask_tokens(ids, attn, tokenizer, gen, rate)
    else:
        inputs, labels = ids, causal_labels(ids, attn)
    return inputs, labels


def token_loss(model, inputs, attn, labels) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the predicted tokens, and how many there were."""
    logits = model(input_ids=inputs, attention_mask=attn).logits  # [b, seq, vocab]
    if not is_mlm(model):  # predict token t+1 from tokens <= t
        logits, labels = logits[:, :-1], labels[:, 1:]
    n = int((labels != -100).sum())
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )
    return loss, n


@torch.no_grad()
def evaluate(model, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> float:
    """Token-weighted mean loss over fixed (inputs, attention mask, labels) batches, eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, attn, labels in batches:
        loss, n = token_loss(model, inputs, attn, labels)
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def fixed_batches(model, tokenizer, texts, max_len, batch_size, seed, rate: float = MASK_RATE):
    """Validation batches with a masking fixed by ``seed`` (the same at every evaluation)."""
    ids, attn = encode(tokenizer, texts, max_len)
    gen = torch.Generator().manual_seed(seed + 7919)
    out = []
    for s in range(0, len(texts), batch_size):
        inputs, labels = lm_batch(model, tokenizer, ids[s : s + batch_size], attn[s : s + batch_size], gen, rate)
        out.append((inputs, attn[s : s + batch_size], labels))
    return out


def optimizer_for(model, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with decoupled weight decay on weight matrices only (not biases, LayerNorm)."""
    decay, no_decay = [], []
    for _name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )


@contextlib.contextmanager
def single_thread():
    """Tiny models train fastest on one thread; on a busy 2-core machine more threads spin and
    can be ten times slower. Restores the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_lm(
    model,
    tokenizer,
    train_texts: list[str],
    val_texts: list[str],
    settings: TrainSettings,
    on_eval: Callable[[History], bool | None] | None = None,
    eval_points: int = EVAL_POINTS,
    on_step: Callable[[], bool | None] | None = None,
) -> History:
    """Train ``model`` in place; returns the history. With early stopping the best weights
    (lowest validation loss) are restored at the end.

    The time limit (``settings.max_seconds``) and ``on_step`` (a cheap check: True, or an exception such as a
    cancelled job, stops the run) are checked after every optimiser step, not only at evaluation points: a run
    over its limit evaluates once more at that step (so its curves end where it stopped) and stops."""
    settings.validate()
    with single_thread():
        return _train(model, tokenizer, train_texts, val_texts, settings, on_eval, eval_points, on_step)


def _train(model, tokenizer, train_texts, val_texts, settings, on_eval, eval_points, on_step=None) -> History:
    torch.manual_seed(settings.seed)
    max_len = (
        model.config.max_position_embeddings
        if hasattr(model.config, "max_position_embeddings")
        else model.config.n_positions
    )
    ids, attn = encode(tokenizer, train_texts, max_len)
    val = fixed_batches(model, tokenizer, val_texts, max_len, 64, settings.seed, settings.mask_rate)
    n = ids.shape[0]
    steps_per_epoch = math.ceil(n / settings.batch_size)
    hist = History(total_steps=steps_per_epoch * settings.epochs)
    eval_every = max(1, hist.total_steps // eval_points)
    gen = torch.Generator().manual_seed(settings.seed)
    opt = optimizer_for(model, settings.lr, settings.weight_decay)
    model.train()
    best_state, since_best = None, 0
    run_loss, run_n, step = 0.0, 0, 0
    t_start = time.perf_counter()
    for _epoch in range(settings.epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, settings.batch_size):
            t0 = time.perf_counter()
            idx = order[s : s + settings.batch_size]
            b_ids, b_attn = ids[idx], attn[idx]
            width = int(b_attn.sum(1).max())  # drop columns that are padding for the whole batch
            b_ids, b_attn = b_ids[:, :width], b_attn[:, :width]
            inputs, labels = lm_batch(model, tokenizer, b_ids, b_attn, gen, settings.mask_rate)
            loss, k = token_loss(model, inputs, b_attn, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            run_loss += float(loss.detach()) * k
            run_n += k
            hist.tokens += int(b_attn.sum())
            hist.train_seconds += time.perf_counter() - t0
            if on_step is not None and on_step():
                hist.stop_reason = "cancelled"
            over_time = time.perf_counter() - t_start > settings.max_seconds and step < hist.total_steps
            if step % eval_every and step != hist.total_steps and not over_time and not hist.stop_reason:
                continue
            hist.step.append(step)
            hist.epoch.append(step / steps_per_epoch)
            hist.train_loss.append(run_loss / max(run_n, 1))
            hist.val_loss.append(evaluate(model, val))
            run_loss, run_n = 0.0, 0
            hist.elapsed = time.perf_counter() - t_start
            if hist.best_index < 0 or hist.val_loss[-1] < hist.val_loss[hist.best_index]:
                hist.best_index, since_best = len(hist.val_loss) - 1, 0
                if settings.early_stopping:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
            if hist.stop_reason:
                pass  # stopped by on_step: this evaluation closes the curves
            elif on_eval is not None and on_eval(hist):
                hist.stop_reason = "cancelled"
            elif settings.early_stopping and since_best >= settings.patience:
                hist.stop_reason = "early_stopping"
            elif (over_time or hist.elapsed > settings.max_seconds) and step < hist.total_steps:
                hist.stop_reason = "time_limit"
            if hist.stop_reason:
                break
        if hist.stop_reason:
            break
    hist.stop_reason = hist.stop_reason or "done"
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist


def is_overfitting(hist: History, tol: float = 0.0) -> bool:
    """The overfitting signature: validation loss ended above its minimum while the training loss
    was still falling (last training loss below the one at the validation minimum)."""
    if len(hist.val_loss) < 3:
        return False
    best = int(np.argmin(hist.val_loss))
    return hist.val_loss[-1] > hist.val_loss[best] + tol and hist.train_loss[-1] < hist.train_loss[best]
