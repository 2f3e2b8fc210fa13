"""Pretraining vs fine-tuning vs training from scratch vs frozen MiniLM features.

All three tiny-model variants share one architecture: the tiny BERT encoder, mean-pooled over real
tokens, then a linear layer to the two labels.

* fine-tune: encoder weights copied from a tiny masked LM pretrained on the synthetic corpus;
* scratch: the same encoder freshly initialised (same seed, same steps, same learning rate);
* frozen MiniLM: mean-pooled ``all-MiniLM-L6-v2`` sentence features + logistic regression
  (scikit-learn), i.e. transfer from a model pretrained on a billion real sentence pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llmviz.errors import InputError
from llmviz.models.anatomy import anatomy
from llmviz.train.loop import single_thread
from llmviz.train.tiny import SINUSOIDAL_TOKEN_STD

METHODS = {
    "finetune": "Pretrained tiny MLM, fine-tuned",
    "scratch": "Same tiny model from scratch",
    "minilm": "Frozen MiniLM features + logistic regression",
}
MAX_LABELS = 1024


class Classifier(torch.nn.Module):
    """Tiny BERT encoder + mean pooling + linear head. Input [b, seq] -> logits [b, 2]."""

    def __init__(self, bert_config, n_labels: int = 2):
        super().__init__()
        from transformers import BertModel

        self.encoder = BertModel(bert_config, add_pooling_layer=False)
        self.head = torch.nn.Linear(bert_config.hidden_size, n_labels)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        w = attention_mask.unsqueeze(-1).float()  # [b, seq, 1]
        return self.head((hidden * w).sum(1) / w.sum(1).clamp(min=1))


def make_classifier(mlm, pretrained: bool, seed: int) -> Classifier:
    """A classifier on ``mlm``'s architecture; with ``pretrained`` its encoder weights are copied."""
    torch.manual_seed(seed)
    clf = Classifier(mlm.config)
    if pretrained:
        missing = clf.encoder.load_state_dict(anatomy(mlm).base.state_dict(), strict=False)
        if missing.missing_keys:
            raise InputError(f"Pretrained weights do not fit: missing {missing.missing_keys[:3]}")
    elif getattr(mlm.config, "llmviz_positional", None) == "sinusoidal":  # same fixed table as the MLM
        encoder = anatomy(clf.encoder)
        encoder.position_embeddings.weight.data.copy_(anatomy(mlm).position_embeddings.weight.data)
        encoder.embed.weight.data.normal_(0.0, SINUSOIDAL_TOKEN_STD)
    if getattr(mlm.config, "llmviz_positional", None) == "sinusoidal":
        anatomy(clf.encoder).position_embeddings.weight.requires_grad_(False)
    return clf


def fit_classifier(
    clf: Classifier,
    tokenizer,
    texts: list[str],
    labels: np.ndarray,
    steps: int = 60,
    lr: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
) -> Classifier:
    """``steps`` AdamW steps on mini-batches drawn (seeded) from the labelled examples."""
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    y = torch.as_tensor(labels)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW([p for p in clf.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    clf.train()
    with single_thread():
        for _ in range(steps):
            idx = torch.randint(len(texts), (min(batch_size, len(texts)),), generator=gen)
            loss = torch.nn.functional.cross_entropy(clf(enc["input_ids"][idx], enc["attention_mask"][idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    clf.eval()
    return clf


@torch.no_grad()
def predict(clf: Classifier, tokenizer, texts: list[str]) -> np.ndarray:
    """Predicted labels [n]."""
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with single_thread():
        return clf(enc["input_ids"], enc["attention_mask"]).argmax(-1).numpy()


@torch.no_grad()
def mean_pooled(loaded, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Mean of the last hidden states over real tokens (the sentence-transformers recipe).
    Shape [n, hidden]."""
    out = []
    model, tok = loaded.model, loaded.tokenizer
    base = anatomy(model).base
    with single_thread():
        for s in range(0, len(texts), batch_size):
            out.append(_pool(base, tok, texts[s : s + batch_size], loaded.device))
    return np.concatenate(out)


@torch.no_grad()
def _pool(base, tok, texts: list[str], device) -> np.ndarray:
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    enc = {k: v.to(device) for k, v in enc.items()}
    hidden = base(**enc).last_hidden_state  # [b, seq, hidden]
    w = enc["attention_mask"].unsqueeze(-1).float()
    return ((hidden * w).sum(1) / w.sum(1)).float().cpu().numpy()


def logistic_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int = 0
) -> float:
    from sklearn.linear_model import LogisticRegression

    if len(set(train_y.tolist())) < 2:
        return float(np.mean(test_y == train_y[0]))  # one class only: predict it
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(train_x, train_y)
    return float(np.mean(clf.predict(test_x) == test_y))


@dataclass
class TransferResult:
    """Accuracy on the held-out test set per method and number of labelled examples."""

    sizes: list[int]
    accuracy: dict[str, list[float]]  # method -> [len(sizes)]
    n_test: int
    pretrain_loss: float  # final validation loss of the pretrained MLM
    seconds: float

    def rows(self) -> list[dict]:
        return [
            {"method": METHODS[m], "labelled_examples": n, "accuracy": a}
            for m, accs in self.accuracy.items()
            for n, a in zip(self.sizes, accs)
        ]
