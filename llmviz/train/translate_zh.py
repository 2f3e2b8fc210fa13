"""The 中文 variant of the translator's language pair: the same English fragment grammar
(:mod:`llmviz.train.translate`) translated by rule into Chinese, with known word alignments.

Rules (target words separated by spaces, i.e. already segmented):

1. **measure words**: a number takes the noun's measure word, ``a dog`` -> ``一 只 狗``, ``two horses``
   -> ``两 匹 马``, ``a tree`` -> ``一 棵 树`` (one English word -> two; both aligned to the determiner);
2. **no articles, no plural**: ``the`` has no translation (no target word aligns to it); ``dogs`` -> ``狗``;
3. **place before the verb**: the prepositional phrase moves in front of the verb, ``the cat slept in the
   house`` -> ``猫 在 房子 里 睡觉 了``; the preposition becomes two words around the noun (在 … 里,
   在 … 附近, 在 … 下面), both aligned to it;
4. **aspect marker**: the past tense is the verb followed by ``了`` (both aligned to the verb).
"""

from __future__ import annotations

from llmviz.train.translate import NOUNS, NP, Clause, Pair, np_source

ZH_NOUNS = {  # noun -> (Chinese, measure word)
    "dog": ("狗", "只"),
    "cat": ("猫", "只"),
    "bird": ("鸟", "只"),
    "horse": ("马", "匹"),
    "girl": ("女孩", "个"),
    "boy": ("男孩", "个"),
    "ball": ("球", "个"),
    "tree": ("树", "棵"),
    "house": ("房子", "座"),
    "car": ("车", "辆"),
}
ZH_ADJECTIVES = {"big": "大", "small": "小", "red": "红", "black": "黑", "old": "老", "happy": "快乐"}
ZH_NUMBERS = {"a": "一", "two": "两", "three": "三"}  # "the": no word
ZH_VERBS = {
    "saw": "看见",
    "chased": "追",
    "found": "找到",
    "ate": "吃",
    "liked": "喜欢",
    "slept": "睡觉",
    "ran": "跑",
}
ZH_PREPOSITIONS = {"in": "里", "near": "附近", "under": "下面"}  # 在 + noun phrase + this word
ASPECT, AT = "了", "在"
assert set(ZH_NOUNS) == set(NOUNS)


def _np(np_: NP, at: int) -> list[tuple[str, tuple[int, ...]]]:
    """Target words of ``np_`` whose source starts at position ``at``: [number measure-word] [adjective] noun."""
    noun, measure = ZH_NOUNS[np_.noun]
    out = []
    if np_.det in ZH_NUMBERS:
        out += [(ZH_NUMBERS[np_.det], (at,)), (measure, (at,))]
    if np_.adj:
        out.append((ZH_ADJECTIVES[np_.adj], (at + 1,)))
    return out + [(noun, (at + (2 if np_.adj else 1),))]


def to_chinese(c: Clause) -> Pair:
    """The English sentence of ``c``, its Chinese translation and the reference alignment."""
    src = np_source(c.subject)
    out = _np(c.subject, 0)
    verb_at = len(src)
    src.append(c.verb)
    obj = []
    if c.obj is not None:
        obj = _np(c.obj, len(src))
        src += np_source(c.obj)
    if c.pp is not None:  # rule 3: 在 + noun phrase + localiser, before the verb
        prep_at = len(src)
        src.append(c.prep)
        out += [(AT, (prep_at,))] + _np(c.pp, prep_at + 1) + [(ZH_PREPOSITIONS[c.prep], (prep_at,))]
        src += np_source(c.pp)
    out += [(ZH_VERBS[c.verb], (verb_at,)), (ASPECT, (verb_at,))] + obj
    return Pair(tuple(src), tuple(w for w, _ in out), tuple(a for _, a in out))


def target_vocabulary() -> list[str]:
    words = [w for v in ZH_NOUNS.values() for w in v] + list(ZH_ADJECTIVES.values()) + list(ZH_NUMBERS.values())
    words += list(ZH_VERBS.values()) + list(ZH_PREPOSITIONS.values()) + [ASPECT, AT]
    return list(dict.fromkeys(words))
