"""Word-level tokenizer for the training lab's synthetic corpora.

Built with the ``tokenizers`` library and wrapped in ``PreTrainedTokenizerFast`` so the trained
model folder re-loads with ``AutoTokenizer`` (and therefore through ``llmviz.models.loading.load_model``)
like any Hugging Face model. One token per lower-cased word or punctuation mark.
"""

from __future__ import annotations

from collections.abc import Iterable

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = (PAD, UNK, CLS, SEP, MASK)


def build_vocab(texts: Iterable[str], extra: Iterable[str] = ()) -> dict[str, int]:
    """Token -> id: the five special tokens first, then every word seen (sorted, so the ids are
    reproducible and independent of corpus order), then ``extra`` words (e.g. digits)."""
    words = set()
    for text in texts:
        words.update(text.lower().split())
    words.update(w.lower() for w in extra)
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for w in sorted(words - set(SPECIALS)):
        vocab[w] = len(vocab)
    return vocab


def make_tokenizer(vocab: dict[str, int], causal: bool = False):
    """A ``PreTrainedTokenizerFast`` over ``vocab``.

    Masked LM: ``[CLS] words [SEP]``. Causal LM: ``[CLS] words`` ([CLS] acts as beginning of text,
    [SEP] as end of text), so the next-token prediction after the last word is not disturbed.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(vocab=dict(vocab), unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    specials = [(CLS, vocab[CLS]), (SEP, vocab[SEP])]
    if causal:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A", pair=f"{CLS} $A $B", special_tokens=specials
        )
    else:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B {SEP}", special_tokens=specials
        )
    kwargs = dict(pad_token=PAD, unk_token=UNK, cls_token=CLS, sep_token=SEP, mask_token=MASK)
    if causal:
        kwargs.update(bos_token=CLS, eos_token=SEP)
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **kwargs)
