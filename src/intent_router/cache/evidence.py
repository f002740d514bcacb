"""What a pair of questions shows, as numbers: the learned verifier's inputs and vetoes.

Two kinds of evidence, computed for a query and a cached question:

* **Vetoes** that always hold, whatever a model says: the numbers differ (also a unit glued
  to a number: "9am" / "9pm"), the negation differs (also by a prefix: "legal" /
  "illegal"), a word changed places (the rule verifier's ``order`` check, roles swapped as
  in "from Paris to London"), a name, number or symbol was substituted, added or dropped,
  the question word was exchanged ("when" / "where") or a day word changed ("today" /
  "tomorrow"), or a pair of neighbouring content words lost its order ("Caen ... Paris" /
  "Paris ... Caen" when the rest moved as a block; "Who defeated Napoleon" / "Who did
  Napoleon defeat", inflections ignored).
* **Features** for the pair model, from the rule verifier's word alignment and the encoder's
  contextual word vectors (:mod:`intent_router.embedding.words`): how many plain words were
  edited, and, for each word left unaligned by the rules, how close its best counterpart on
  the other side is in context ("repair" / "fix" close, "benefits" / "disadvantages" less,
  "eBay" / "Amazon" far); the worst-aligned content word of either side (every content word
  must find a counterpart); whether the question word or a relation word changed; the
  sentence cosine. :data:`FEATURES` lists them in the order the weights use.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

import numpy as np

from intent_router.cache import verify as rules
from intent_router.embedding.words import WordVectors

FEATURES: Final = (
    "cos",
    "rules_ok",
    "edit_ratio",
    "unaligned_min_sim",
    "unaligned_mean_sim",
    "unaligned_words_max",
    "unaligned_words_min",
    "question_word_changed",
    "relation_changed",
    "unaligned_low_sim",
    "worst_content_sim",
    "worst_name_sim",
)
"""Feature names, in the order of the weights (the weights file lists them too)."""

_FUNCTION_WORDS: Final = (
    rules.STOPWORDS | rules.RELATIONS | rules.WH_WORDS | rules.CLAUSE_BREAKS | rules.NEGATIONS
)
_KEY_KINDS: Final = frozenset({"name", "sym", "num"})
_UNSEEN_SIM: Final = 0.5
"""Best similarity assumed for a rule-parser word the tokenizer split differently."""
_LOW_SIM: Final = 0.7


def veto(pair: rules.Pair, query: str, cached: str) -> str | None:
    """The name of the first hard rule the pair breaks, or None."""
    if not rules.same_numbers(pair) or _quantities(query) != _quantities(cached):
        return "numbers"
    if not rules.same_negation(pair) or _negated_word(pair.alignment):
        return "negation"
    if not rules.in_order(pair):
        return "order"
    al = pair.alignment
    if any(w.kind in _KEY_KINDS for w in (*al.only_a, *al.only_b)) or _ask_or_day_changed(al):
        return "key_words"
    if not _neighbours_kept(pair.a, pair.b):
        return "neighbours"
    return None


_QUANTITY: Final = re.compile(r"\d+(?!st\b|nd\b|rd\b|th\b)[^\W\d_]+")
_NEGATING_PREFIXES: Final = ("un", "in", "im", "il", "ir", "dis", "non")


def _quantities(text: str) -> Counter[str]:
    """Numbers written with a unit or marker glued on ("9am", "5kg", "10x"): the unit counts."""
    return Counter(_QUANTITY.findall(text.casefold()))


def _negated_word(al: rules.Alignment) -> bool:
    """A word on one side is a word of the other with a negating prefix ("legal" /
    "illegal", "possible" / "impossible", "like" / "dislike")."""
    only_a = {w.stem for w in al.only_a if w.kind == "word"}
    only_b = {w.stem for w in al.only_b if w.kind == "word"}
    return any(
        len(x) > 2 and y == prefix + x
        for a in only_a
        for b in only_b
        for x, y in ((a, b), (b, a))
        for prefix in _NEGATING_PREFIXES
    )


_DAYS: Final = frozenset({"today", "tomorrow", "yesterday", "tonight"})


def _ask_or_day_changed(al: rules.Alignment) -> bool:
    """The question word was exchanged ("When was it built?" / "Where was it built?"), or a
    day word was changed, added or dropped ("open today?" / "open tomorrow?")."""
    asks_a = {w.stem for w in al.only_a if w.kind == "wh"}
    asks_b = {w.stem for w in al.only_b if w.kind == "wh"}
    days = any(w.stem in _DAYS for w in (*al.only_a, *al.only_b))
    return days or bool(asks_a and asks_b)


def _light_stem(word: str) -> str:
    """Inflection off ("defeated" -> "defeat"), for comparing word order only."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _neighbours_kept(a: rules.Parsed, b: rules.Parsed) -> bool:
    """Every pair of neighbouring content words shared by both sides keeps its order.

    Content words found on both sides are listed in each side's order; the bigrams of the
    two lists must be the same. A block move keeps them inside the block; two entities
    trading places ("in Caen ... in Paris" / "in Paris ... in Caen") does not."""
    seq_a = [_light_stem(w.stem) for w in a.words if w.kind != "rel"]
    seq_b = [_light_stem(w.stem) for w in b.words if w.kind != "rel"]
    shared_a = [w for w in seq_a if w in set(seq_b)]
    shared_b = [w for w in seq_b if w in set(seq_a)]
    return set(itertools.pairwise(shared_a)) == set(itertools.pairwise(shared_b))


def _kinds(text: str, words: Sequence[str]) -> list[str]:
    names = rules._names(text)
    out = []
    for word in words:
        low = word.lower()
        if not any(ch.isalnum() for ch in word):
            out.append("punct")
        elif rules._number(low) is not None:
            out.append("num")
        elif low in _FUNCTION_WORDS:
            out.append("stop")
        elif rules._fold(low) in names:
            out.append("name")
        else:
            out.append("word")
    return out


def _content_sims(
    a: WordVectors, kinds_a: list[str], b: WordVectors, kinds_b: list[str]
) -> tuple[list[float], list[float]]:
    """Best cosine of each content word of ``a`` to a content word of ``b`` (1 for the same
    word); the second list holds the names' values."""
    rows = [i for i, k in enumerate(kinds_a) if k in ("word", "name", "num")]
    cols = [j for j, k in enumerate(kinds_b) if k in ("word", "name", "num")]
    if not rows:
        return [], []
    if not cols:
        return [0.0] * len(rows), [0.0 for i in rows if kinds_a[i] == "name"]
    sims = a.vectors[rows] @ b.vectors[cols].T
    folded_b = [rules._fold(b.words[j].lower()) for j in cols]
    for x, i in enumerate(rows):
        word = rules._fold(a.words[i].lower())
        for y, other in enumerate(folded_b):
            if word == other:
                sims[x, y] = 1.0
    best = sims.max(axis=1)
    return [float(s) for s in best], [
        float(s) for s, i in zip(best, rows, strict=True) if kinds_a[i] == "name"
    ]


def _best_by_stem(a: WordVectors, b: WordVectors) -> dict[str, float]:
    """Each word of ``a`` (folded) -> its best cosine to any word of ``b``."""
    if not a.words or not b.words:
        return {}
    best = (a.vectors @ b.vectors.T).max(axis=1)
    out: dict[str, float] = {}
    for word, sim in zip(a.words, best, strict=True):
        key = rules._fold(word.lower())
        out[key] = max(out.get(key, -1.0), float(sim))
    return out


def features(
    query: str, cached: str, pair: rules.Pair, wq: WordVectors, wc: WordVectors
) -> list[float]:
    """The :data:`FEATURES` of a pair; ``pair`` is ``rules.Pair(query, cached)`` and ``wq``,
    ``wc`` the word vectors of ``query`` and ``cached``."""
    al = pair.alignment
    kinds_q, kinds_c = _kinds(query, wq.words), _kinds(cached, wc.words)
    sims_q, names_q = _content_sims(wq, kinds_q, wc, kinds_c)
    sims_c, names_c = _content_sims(wc, kinds_c, wq, kinds_q)
    best_q, best_c = _best_by_stem(wq, wc), _best_by_stem(wc, wq)
    unaligned = sorted(
        [best_q.get(w.stem, _UNSEEN_SIM) for w in al.only_a if w.kind == "word"]
        + [best_c.get(w.stem, _UNSEEN_SIM) for w in al.only_b if w.kind == "word"]
    )
    words_q = sum(w.kind == "word" for w in al.only_a)
    words_c = sum(w.kind == "word" for w in al.only_b)
    moved = (*al.only_a, *al.only_b)
    return [
        float(wq.sentence @ wc.sentence),
        float(rules.Verifier().verify(query, cached).ok),
        al.edits / max(1, min(pair.a.content, pair.b.content)),
        unaligned[0] if unaligned else 1.0,
        float(np.mean(unaligned)) if unaligned else 1.0,
        float(max(words_q, words_c)),
        float(min(words_q, words_c)),
        float(any(w.kind == "wh" for w in moved)),
        float(any(w.kind == "rel" for w in moved)),
        float(sum(s < _LOW_SIM for s in unaligned)),
        min(sims_q + sims_c, default=1.0),
        min(names_q + names_c, default=1.0),
    ]
