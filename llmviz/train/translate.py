"""A toy language pair with known word alignments, for the training lab's translator.

English fragment grammar::

    sentence = subject verb [object] [pp]          subject, object = np;  pp = preposition np
    np       = determiner [adjective] noun         determiner: the, a (singular) | two, three (plural)

"Lingo", the target language, is English translated word by word with rules that change the order and
the number of words, so that every target word's source word(s) are known (the reference alignment):

1. **adjective after the noun** (as in French/Spanish): ``the big dog`` -> ``lo kano grando``;
2. **verb at the end** (as in Japanese, or German subordinate clauses): subject, object, pp, verb;
3. **gendered determiners** chosen by the noun: ``the`` -> ``lo`` (masculine) / ``la`` (feminine),
   ``a`` -> ``un`` / ``una``;
4. **one word becomes two**: ``liked`` -> ``ha amo`` (both target words align to ``liked``);
5. **two words become one**: ``in the`` -> ``nel`` / ``nela`` (aligned to both ``in`` and ``the``).

``alignment[j]`` is the tuple of source positions target word ``j`` translates. Everything is seeded.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

from llmviz.errors import InputError

# noun -> (plural, Lingo singular, Lingo plural, gender)
NOUNS = {
    "dog": ("dogs", "kano", "kanos", "m"),
    "cat": ("cats", "gata", "gatas", "f"),
    "bird": ("birds", "avo", "avos", "m"),
    "horse": ("horses", "kabal", "kabales", "m"),
    "girl": ("girls", "nina", "ninas", "f"),
    "boy": ("boys", "nino", "ninos", "m"),
    "ball": ("balls", "bola", "bolas", "f"),
    "tree": ("trees", "arbo", "arbos", "m"),
    "house": ("houses", "kasa", "kasas", "f"),
    "car": ("cars", "auto", "autos", "m"),
}
ADJECTIVES = {"big": "grando", "small": "pika", "red": "roso", "black": "nero", "old": "vekio", "happy": "felis"}
DETERMINERS = {"the": {"m": "lo", "f": "la"}, "a": {"m": "un", "f": "una"}, "two": "du", "three": "tri"}
NUMBERS = ("two", "three")
TRANSITIVE = {"saw": ("vidi",), "chased": ("kasi",), "found": ("trovi",), "ate": ("mangi",), "liked": ("ha", "amo")}
INTRANSITIVE = {"slept": ("dormi",), "ran": ("kuri",)}
VERBS = {**TRANSITIVE, **INTRANSITIVE}
PREPOSITIONS = {"in": "in", "near": "apud", "under": "sub"}
MERGED = {("in", "the"): {"m": "nel", "f": "nela"}}  # two source words -> one target word

MAX_WORDS = 16  # what a typed sentence may have (the grammar's longest has 11)


@dataclass(frozen=True)
class NP:
    det: str
    adj: str | None
    noun: str  # singular form

    @property
    def plural(self) -> bool:
        return self.det in NUMBERS


@dataclass(frozen=True)
class Clause:
    subject: NP
    verb: str
    obj: NP | None = None
    prep: str | None = None
    pp: NP | None = None


@dataclass(frozen=True)
class Pair:
    """One sentence and its translation. ``alignment[j]``: source positions of target word ``j``."""

    src: tuple[str, ...]
    tgt: tuple[str, ...]
    alignment: tuple[tuple[int, ...], ...]

    @property
    def reordered(self) -> bool:
        """Whether the translation changes the word order (an adjective or the verb moved)."""
        firsts = [min(a) for a in self.alignment]
        return any(b < a for a, b in zip(firsts, firsts[1:]))

    @property
    def source(self) -> str:
        return " ".join(self.src)

    @property
    def target(self) -> str:
        return " ".join(self.tgt)


def source_vocabulary() -> list[str]:
    words = list(DETERMINERS) + list(ADJECTIVES) + [w for n, v in NOUNS.items() for w in (n, v[0])]
    return words + list(VERBS) + list(PREPOSITIONS)


def target_vocabulary() -> list[str]:
    words = [w for d in DETERMINERS.values() for w in (d.values() if isinstance(d, dict) else [d])]
    words += list(ADJECTIVES.values()) + [w for v in NOUNS.values() for w in v[1:3]]
    words += [w for ws in VERBS.values() for w in ws] + list(PREPOSITIONS.values())
    words += [w for m in MERGED.values() for w in m.values()]
    return list(dict.fromkeys(words))


# ---------------------------------------------------------------- rendering with alignments
def np_source(np_: NP) -> list[str]:
    noun = NOUNS[np_.noun][0] if np_.plural else np_.noun
    return [np_.det] + ([np_.adj] if np_.adj else []) + [noun]


def _np_target(np_: NP, at: int, det_word: str | None = None, det_align: tuple[int, ...] | None = None):
    """Target words and alignments of ``np_`` whose source starts at position ``at``: determiner, noun,
    adjective (rule 1), the determiner by the noun's gender (rule 3). ``det_word``: a merged form."""
    _plural, sing, plur, gender = NOUNS[np_.noun]
    det = DETERMINERS[np_.det]
    det = det_word or (det[gender] if isinstance(det, dict) else det)
    noun_at = at + (2 if np_.adj else 1)
    words = [(det, det_align or (at,)), (plur if np_.plural else sing, (noun_at,))]
    if np_.adj:
        words.append((ADJECTIVES[np_.adj], (at + 1,)))
    return words


def translate_clause(c: Clause) -> Pair:
    """The English sentence, its Lingo translation and the reference alignment."""
    src = np_source(c.subject)
    out = _np_target(c.subject, 0)
    verb_at = len(src)
    src.append(c.verb)
    if c.obj is not None:
        out += _np_target(c.obj, len(src))
        src += np_source(c.obj)
    if c.pp is not None:
        prep_at = len(src)
        src.append(c.prep)
        merged = MERGED.get((c.prep, c.pp.det))
        if merged:  # rule 5: "in the" -> one word, aligned to both
            out += _np_target(c.pp, prep_at + 1, merged[NOUNS[c.pp.noun][3]], (prep_at, prep_at + 1))
        else:
            out.append((PREPOSITIONS[c.prep], (prep_at,)))
            out += _np_target(c.pp, prep_at + 1)
        src += np_source(c.pp)
    out += [(w, (verb_at,)) for w in VERBS[c.verb]]  # rule 2 (verb last) and rule 4 (one -> two words)
    return Pair(tuple(src), tuple(w for w, _ in out), tuple(a for _, a in out))


# ---------------------------------------------------------------- sampling
def _sample_np(rng: random.Random, p_adj: float, p_number: float) -> NP:
    det = rng.choice(NUMBERS) if rng.random() < p_number else rng.choice(("the", "a"))
    adj = rng.choice(sorted(ADJECTIVES)) if rng.random() < p_adj else None
    return NP(det, adj, rng.choice(sorted(NOUNS)))


def sample_clause(
    rng: random.Random, p_adj: float = 0.5, p_object: float = 0.75, p_pp: float = 0.4, p_number: float = 0.2
) -> Clause:
    np_ = lambda: _sample_np(rng, p_adj, p_number)  # noqa: E731
    subject = np_()
    if rng.random() < p_object:
        verb, obj = rng.choice(sorted(TRANSITIVE)), np_()
    else:
        verb, obj = rng.choice(sorted(INTRANSITIVE)), None
    prep, pp = (rng.choice(sorted(PREPOSITIONS)), np_()) if rng.random() < p_pp else (None, None)
    return Clause(subject, verb, obj, prep, pp)


Render = Callable[[Clause], Pair]  # a target language's rules: translate_clause (Lingo) or translate_zh.to_chinese


def make_pairs(
    n: int, seed: int = 0, exclude: set[str] | frozenset = frozenset(), render: Render = translate_clause, **probs
) -> list[Pair]:
    """``n`` distinct pairs (none whose source is in ``exclude``) translated by ``render``, seeded."""
    rng = random.Random(seed)
    seen, out = set(exclude), []
    for _ in range(200 * n + 1000):
        if len(out) == n:
            break
        pair = render(sample_clause(rng, **probs))
        if pair.source not in seen:
            seen.add(pair.source)
            out.append(pair)
    return out


def split_pairs(
    n_train: int, n_test: int, seed: int = 0, render: Render = translate_clause
) -> tuple[list[Pair], list[Pair]]:
    """Training pairs and held-out pairs (no source sentence in both)."""
    train = make_pairs(n_train, seed, render=render)
    test = make_pairs(n_test, seed + 10_007, exclude={p.source for p in train}, render=render)
    return train, test


# ---------------------------------------------------------------- typed sentences
def words_of(text: str) -> list[str]:
    """Lower-cased words of a typed sentence, punctuation dropped."""
    return re.findall(r"[a-z]+", text.lower())


def unknown_words(words: list[str]) -> list[str]:
    known = set(source_vocabulary())
    return list(dict.fromkeys(w for w in words if w not in known))


def same_kind(word: str) -> list[str]:
    """The other source words of ``word``'s kind (determiners, adjectives, singular or plural nouns, verbs,
    prepositions): the natural replacements when patching a word."""
    kinds = [
        list(DETERMINERS),
        list(ADJECTIVES),
        list(NOUNS),
        [v[0] for v in NOUNS.values()],
        list(TRANSITIVE),
        list(INTRANSITIVE),
        list(PREPOSITIONS),
    ]
    return next(([w for w in k if w != word] for k in kinds if word in k), [])


def check_sentence(text: str) -> list[str]:
    """The words of ``text`` if the translator knows them all; else an InputError naming the others."""
    words = words_of(text)
    if not words:
        raise InputError("Type a sentence in English, e.g. 'the big dog saw a red ball'.")
    if len(words) > MAX_WORDS:
        raise InputError(f"Type at most {MAX_WORDS} words (got {len(words)}).")
    unknown = unknown_words(words)
    if unknown:
        raise InputError(
            f"The translator only knows the toy grammar's {len(source_vocabulary())} words; "
            f"not: {', '.join(unknown)}. Known words: {', '.join(source_vocabulary())}."
        )
    return words


def _parse_np(words: list[str], i: int) -> tuple[NP, int] | None:
    if i >= len(words) or words[i] not in DETERMINERS:
        return None
    det, i = words[i], i + 1
    adj = None
    if i < len(words) and words[i] in ADJECTIVES:
        adj, i = words[i], i + 1
    if i >= len(words):
        return None
    plural = det in NUMBERS
    noun = next((n for n, v in NOUNS.items() if (v[0] if plural else n) == words[i]), None)
    return (NP(det, adj, noun), i + 1) if noun else None


def parse(words: list[str]) -> Clause | None:
    """The grammar's parse of ``words``, or None when the sentence is outside the grammar."""
    got = _parse_np(words, 0)
    if got is None or got[1] >= len(words) or words[got[1]] not in VERBS:
        return None
    subject, i = got
    verb, i = words[i], i + 1
    obj = None
    if verb in TRANSITIVE:
        got = _parse_np(words, i)
        if got is None:
            return None
        obj, i = got
    prep = pp = None
    if i < len(words) and words[i] in PREPOSITIONS:
        prep = words[i]
        got = _parse_np(words, i + 1)
        if got is None:
            return None
        pp, i = got
    return Clause(subject, verb, obj, prep, pp) if i == len(words) else None


def reference(words: list[str], render: Render = translate_clause) -> Pair | None:
    """The rule translation of a typed sentence (None when it is outside the grammar)."""
    clause = parse(words)
    return render(clause) if clause else None
