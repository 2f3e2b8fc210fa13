"""Seeded synthetic corpora for the training lab.

* ``grammar_corpus``: short English "stories" about people with occupations, actions, places and
  moods, with subject-verb agreement (``the nurse walks`` / ``the nurses walk``) and a pronoun
  referring back to the subject. The ``skew`` knob couples the pronoun's gender with the
  occupation's stereotype: a singular subject gets its stereotyped pronoun with probability
  ``(1 + skew) / 2`` (0 = balanced, 1 = always stereotyped). The proportion is applied exactly per
  occupation (stratified, then shuffled), so skew 0 gives equal he/she counts for every occupation.
* ``number_set``: a labelled two-class set (one person / a group) in the same vocabulary.
* ``counterfactual_augment``: the corpus plus a gender-swapped copy of every story (CDA).

Everything is a pure function of its arguments and ``seed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from llmviz.errors import InputError

# occupation -> stereotyped gender ("m"/"f"); plural forms listed where "+s" is wrong.
OCCUPATIONS: dict[str, str] = {
    "nurse": "f",
    "engineer": "m",
    "teacher": "f",
    "mechanic": "m",
    "secretary": "f",
    "pilot": "m",
    "dancer": "f",
    "carpenter": "m",
    "librarian": "f",
    "plumber": "m",
    "receptionist": "f",
    "farmer": "m",
    "hairdresser": "f",
    "soldier": "m",
    "nanny": "f",
    "builder": "m",
}
PLURALS = {"secretary": "secretaries", "nanny": "nannies"}
PLACES = [
    "park",
    "market",
    "school",
    "station",
    "river",
    "garden",
    "office",
    "beach",
    "library",
    "hospital",
    "museum",
    "bakery",
    "harbour",
    "stadium",
    "village",
    "bridge",
]
MOVES = ["walk", "run", "drive", "ride", "travel", "return", "hurry", "stroll"]
OBJECTS = [
    "book",
    "letter",
    "map",
    "ticket",
    "bag",
    "lamp",
    "chair",
    "basket",
    "radio",
    "clock",
    "kettle",
    "coat",
    "bottle",
    "ladder",
    "blanket",
    "candle",
]
HANDLE = ["carry", "find", "open", "clean", "repair", "paint", "sell", "lift"]
POSITIVE = [
    "happy",
    "glad",
    "cheerful",
    "delighted",
    "calm",
    "proud",
    "joyful",
    "relaxed",
    "hopeful",
    "grateful",
    "excited",
    "pleased",
]
NEGATIVE = [
    "sad",
    "angry",
    "upset",
    "miserable",
    "tired",
    "afraid",
    "lonely",
    "nervous",
    "bored",
    "gloomy",
    "furious",
    "worried",
]
POS_REACT = ["smile", "laugh", "sing", "dance", "cheer"]
NEG_REACT = ["cry", "frown", "sigh", "shout", "sulk"]
ANIMALS = ["cat", "dog", "bird", "horse", "goat", "fish"]
NUMBERS = [str(d) for d in range(10)]
THIRD_PERSON = {"hurry": "hurries", "carry": "carries", "cry": "cries"}
GENDER_WORDS = {"he": "she", "she": "he", "his": "her", "him": "her", "man": "woman", "woman": "man"}
PRONOUN = {"m": "he", "f": "she"}

NAMES = ["anna", "ben", "carla", "dev", "emma", "farid", "gita", "hugo"]
MAX_SENTENCES = 20_000
MIX = (0.4, 0.3, 0.3)  # story kinds: mood, action, possession
MIN_WORDS, MAX_WORDS = 4, len(OCCUPATIONS)
LABELS = ("one person", "a group")


def third(verb: str) -> str:
    return THIRD_PERSON.get(verb, verb + "s")


def plural(noun: str) -> str:
    return PLURALS.get(noun, noun + "s")


@dataclass(frozen=True)
class Corpus:
    """A generated corpus: ``texts[i]`` is one story (one or two sentences)."""

    texts: list[str]
    params: dict
    occupations: list[str]


def _check(size: int, words: int, skew: float) -> None:
    if not 1 <= size <= MAX_SENTENCES:
        raise InputError(f"Corpus size must be between 1 and {MAX_SENTENCES:,} stories (got {size}).")
    if not MIN_WORDS <= words <= MAX_WORDS:
        raise InputError(f"Words per category must be between {MIN_WORDS} and {MAX_WORDS} (got {words}).")
    if not 0.0 <= skew <= 1.0:
        raise InputError(f"Skew must be between 0 (balanced) and 1 (fully stereotyped); got {skew}.")


def _stratified_flags(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` booleans with exactly ``round(n * p)`` True, in random order."""
    flags = np.zeros(n, dtype=bool)
    flags[: int(round(n * p))] = True
    rng.shuffle(flags)
    return flags


def grammar_corpus(
    size: int = 2000, words: int = 8, skew: float = 0.0, seed: int = 0, plural_rate: float = 0.2
) -> Corpus:
    """``size`` stories from the grammar, using ``words`` entries of each word category.

    skew: 0 = every occupation appears equally often with "he" and "she"; 1 = always with its
    stereotyped pronoun. Plural subjects take "they" and no gender.
    """
    _check(size, words, skew)
    rng = np.random.default_rng(seed)
    occs = list(OCCUPATIONS)[:words]
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    places, objects, moves, handle = PLACES[:words], OBJECTS[:words], MOVES[: max(4, words // 2)], HANDLE
    pos, neg = POSITIVE, NEGATIVE  # all of them, so the labelled set's adjectives were all seen
    subj = rng.integers(len(occs), size=size)
    is_plural = rng.random(size) < plural_rate
    gender_of: dict[int, str] = {}
    p_stereo = (1.0 + skew) / 2.0
    for k, occ in enumerate(occs):
        idx = np.flatnonzero((subj == k) & ~is_plural)
        stereo = _stratified_flags(len(idx), p_stereo, rng)
        other = "f" if OCCUPATIONS[occ] == "m" else "m"
        for i, s in zip(idx, stereo):
            gender_of[int(i)] = OCCUPATIONS[occ] if s else other
    texts = []
    for i in range(size):
        occ = occs[subj[i]]
        many = bool(is_plural[i])
        noun = plural(occ) if many else occ
        pron = "they" if many else PRONOUN[gender_of[i]]
        v = (lambda w: w) if many else third  # noqa: E731 - agreement with the subject
        kind = int(rng.choice(3, p=MIX))
        if kind == 0:  # mood: adjective polarity agrees with the reaction
            good = bool(rng.random() < 0.5)
            adj, react = (pick(pos), pick(POS_REACT)) if good else (pick(neg), pick(NEG_REACT))
            texts.append(
                f"the {noun} {v(pick(moves))} to the {pick(places)} . {pron} {v('feel')} {adj} and {v(react)} ."
            )
        elif kind == 1:  # action on an object
            texts.append(
                f"the {noun} {v(pick(handle))} the {pick(objects)} in the {pick(places)} . "
                f"{pron} {'are' if many else 'is'} busy ."
            )
        else:  # possession with a number
            n = int(rng.integers(2, 10))
            texts.append(
                f"the {noun} {v('live')} near the {pick(places)} . "
                f"{pron} {'have' if many else 'has'} {n} {plural(pick(ANIMALS))} ."
            )
    return Corpus(texts, {"size": size, "words": words, "skew": skew, "seed": seed, "plural_rate": plural_rate}, occs)


def cooccurrence(texts: list[str], occupations: list[str]) -> dict[str, dict[str, int]]:
    """For each occupation (singular subject ``the <occ>``), how many stories refer back with
    "he" and with "she". Counted from the text itself with a regular expression."""
    counts = {o: {"he": 0, "she": 0} for o in occupations}
    pat = re.compile(r"^the (\w+) .*? \. (he|she) ")
    for text in texts:
        m = pat.match(text)
        if m and m.group(1) in counts:
            counts[m.group(1)][m.group(2)] += 1
    return counts


def swap_gender(text: str) -> str:
    """Swap every gendered word (he <-> she, his <-> her, ...)."""
    return " ".join(GENDER_WORDS.get(w, w) for w in text.split(" "))


def counterfactual_augment(corpus: Corpus) -> Corpus:
    """Counterfactual data augmentation: the corpus plus a gender-swapped copy of each story."""
    texts = corpus.texts + [swap_gender(t) for t in corpus.texts]
    return Corpus(texts, {**corpus.params, "cda": True}, corpus.occupations)


# ---------------------------------------------------------------- labelled set
@dataclass(frozen=True)
class LabelledSet:
    """``texts[i]`` has label ``labels[i]`` (0 = one person, 1 = a group)."""

    texts: list[str]
    labels: np.ndarray  # [n] int64


def number_set(n: int, seed: int = 0, words: str = "all") -> LabelledSet:
    """``n`` labelled sentences ``the <occupation(s)> <move(s)> to the <place> .``, balanced:
    label 1 when the sentence is about a group (plural subject), 0 for one person.

    ``words``: "all" uses the 8 first occupations and moves; "seen" only the first 4 of each. A model
    trained on "seen" labels and tested on "all" must know from pretraining that "pilots" and
    "farmers" (or "ride" and "rides") behave like the plural (singular) words it was shown.
    """
    if not 2 <= n <= MAX_SENTENCES:
        raise InputError(f"The labelled set needs between 2 and {MAX_SENTENCES:,} examples (got {n}).")
    k = {"all": 8, "seen": 4}[words]
    occs, moves = list(OCCUPATIONS)[:k], MOVES[:k]
    rng = np.random.default_rng(seed)
    labels = np.array([i % 2 for i in range(n)], dtype=np.int64)
    rng.shuffle(labels)
    texts = []
    for y in labels:
        occ, move = occs[int(rng.integers(k))], moves[int(rng.integers(k))]
        subject, verb = (plural(occ), move) if y else (occ, third(move))
        texts.append(f"the {subject} {verb} to the {PLACES[int(rng.integers(8))]} .")
    return LabelledSet(texts, labels)


def vocabulary() -> list[str]:
    """Every word any generator here can produce (the tokenizer's fixed vocabulary), so models
    trained on different knobs share token ids and can be compared."""
    words = set(OCCUPATIONS) | {plural(o) for o in OCCUPATIONS} | set(PLACES) | set(OBJECTS)
    words |= {plural(a) for a in ANIMALS} | set(POSITIVE) | set(NEGATIVE) | set(NUMBERS)
    for verb in MOVES + HANDLE + POS_REACT + NEG_REACT + ["feel", "live"]:
        words |= {verb, third(verb)}
    words |= set(GENDER_WORDS) | {
        "they",
        "the",
        "to",
        "and",
        "in",
        "near",
        "is",
        "are",
        "has",
        "have",
        "busy",
        ".",
        "pin",
        "of",
    }
    words |= set(NAMES)  # canary owners (privacy experiment)
    return sorted(words)


def split(texts: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded train/validation split (validation at least one item)."""
    order = np.random.default_rng(seed + 1).permutation(len(texts))
    n_val = max(1, int(round(len(texts) * val_fraction)))
    return [texts[i] for i in order[n_val:]], [texts[i] for i in order[:n_val]]
