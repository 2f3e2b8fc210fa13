"""The toy language pair (hand-written translations and alignments, incl. the split word and the merged
pair) and BLEU against hand-computed values."""

from __future__ import annotations

import math

import pytest

from llmviz.errors import InputError
from llmviz.train import translate as G
from llmviz.train import translate_zh as Z
from llmviz.train.bleu import corpus_bleu, sentence_bleu


def ref(text: str) -> G.Pair:
    pair = G.reference(text.split())
    assert pair is not None, text
    return pair


@pytest.mark.parametrize(
    "src, tgt, alignment",
    [
        # adjective after the noun, verb last, determiners by the noun's gender
        ("the big dog saw a red cat", "lo kano grando una gata roso vidi", [0, 2, 1, 4, 6, 5, 3]),
        # one word -> two: "liked" -> "ha amo", both aligned to "liked"
        ("a girl liked the ball", "una nina la bola ha amo", [0, 1, 3, 4, 2, 2]),
        # two words -> one: "in the" -> "nela" (feminine house), aligned to both
        ("the cat slept in the house", "la gata nela kasa dormi", [0, 1, (3, 4), 5, 2]),
        ("a boy ran in the old tree", "un nino nel arbo vekio kuri", [0, 1, (3, 4), 6, 5, 2]),
        # "in a" does not merge; numbers take the plural and no gender
        ("two old horses ran in a car", "du kabales vekio in un auto kuri", [0, 2, 1, 4, 5, 6, 3]),
        ("the dog slept", "lo kano dormi", [0, 1, 2]),
    ],
)
def test_hand_written_translations(src, tgt, alignment):
    pair = ref(src)
    assert pair.target == tgt
    want = tuple(a if isinstance(a, tuple) else (a,) for a in alignment)
    assert pair.alignment == want


def test_reordering_flag():
    assert ref("the big dog saw a red cat").reordered
    assert not ref("the dog slept").reordered
    assert ref("the cat slept in the house").reordered  # the verb moves after the prepositional phrase
    assert not ref("two cats ran").reordered


def test_sampled_pairs_parse_back_and_align_every_word():
    pairs = G.make_pairs(300, seed=3)
    assert len({p.source for p in pairs}) == 300
    for p in pairs:
        assert G.reference(list(p.src)) == p  # the parser inverts the generator
        assert len(p.alignment) == len(p.tgt)
        covered = sorted(i for a in p.alignment for i in a)
        extra = sum(len(G.VERBS[w]) - 1 for w in p.src if w in G.VERBS)  # "liked" -> two words
        assert covered == sorted(
            [*range(len(p.src)), *([p.src.index("liked")] * extra if extra else [])]
        )  # each word once
    assert set(w for p in pairs for w in p.src) <= set(G.source_vocabulary())
    assert set(w for p in pairs for w in p.tgt) <= set(G.target_vocabulary())


def test_held_out_split_is_disjoint_and_seeded():
    train, test = G.split_pairs(200, 50, seed=1)
    assert not {p.source for p in train} & {p.source for p in test}
    assert G.split_pairs(200, 50, seed=1) == (train, test)


def test_outside_grammar_and_unknown_words():
    assert G.reference("dog the saw".split()) is None
    assert G.reference("the dog saw".split()) is None  # a transitive verb needs its object
    assert G.check_sentence("The big dog saw a red cat.") == "the big dog saw a red cat".split()
    with pytest.raises(InputError, match="zebra"):
        G.check_sentence("the zebra saw a cat")
    with pytest.raises(InputError):
        G.check_sentence("  ...  ")


def test_bleu_hand_computed():
    hyp, rf = "the cat sat on the mat".split(), "the cat is on the mat".split()
    # p1 = 5/6, p2 = 3/5, equal lengths (BP = 1): sqrt(1/2)
    assert corpus_bleu([hyp], [rf], max_n=2) == pytest.approx(100 * math.sqrt(0.5))
    assert corpus_bleu([hyp], [rf]) == 0.0  # no 4-gram in common
    # add-one for n >= 2: (5/6 * 4/6 * 2/5 * 1/4) ** (1/4) = (1/18) ** (1/4)
    assert sentence_bleu(hyp, rf) == pytest.approx(100 * (1 / 18) ** 0.25)
    # brevity penalty exp(1 - 6/2); clipping: "the" counts once
    assert corpus_bleu([["the", "cat"]], [rf], max_n=2) == pytest.approx(100 * math.exp(-2))
    assert corpus_bleu([["the"] * 4], [["the", "cat"]], max_n=1) == pytest.approx(25.0)
    assert corpus_bleu([rf, hyp], [rf, rf], max_n=1) == pytest.approx(100 * 11 / 12)  # corpus sums, not means
    assert corpus_bleu([rf], [rf]) == pytest.approx(100.0)


@pytest.mark.parametrize(
    "src, tgt, alignment",
    [
        # measure words (one word -> two), no article, place before the verb around the noun, 了 after the verb
        (
            "the big dog saw a red cat in the house",
            "大 狗 在 房子 里 看见 了 一 只 红 猫",
            [1, 2, 7, 9, 7, 3, 3, 4, 4, 5, 6],
        ),
        ("three old horses ran near a tree", "三 匹 老 马 在 一 棵 树 附近 跑 了", [0, 0, 1, 2, 4, 5, 5, 6, 4, 3, 3]),
        ("a girl liked two balls", "一 个 女孩 喜欢 了 两 个 球", [0, 0, 1, 2, 2, 3, 3, 4]),
    ],
)
def test_chinese_variant(src, tgt, alignment):
    pair = G.reference(src.split(), Z.to_chinese)
    assert pair.target == tgt
    assert pair.alignment == tuple((a,) for a in alignment)
    assert G.reference("a girl liked two balls".split(), Z.to_chinese).reordered is False  # SVO like English
    assert G.reference("the cat slept in the house".split(), Z.to_chinese).reordered  # the place moves


def test_chinese_pairs_use_its_vocabulary_and_leave_only_the_article_unaligned():
    for p in G.make_pairs(200, seed=5, render=Z.to_chinese):
        assert set(p.tgt) <= set(Z.target_vocabulary())
        unaligned = set(range(len(p.src))) - {i for a in p.alignment for i in a}
        assert {p.src[i] for i in unaligned} <= {"the"}
