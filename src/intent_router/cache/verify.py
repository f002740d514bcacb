"""Does the cached question really ask the same thing? Checks run after the vector search.

Cosine similarity cannot tell "flights from Paris to London" from "flights from London to
Paris", nor "convert 5 USD to EUR" from "convert 50 USD to EUR": the words are the same, the
answers are not. So a semantic candidate above the threshold must also pass a few small,
explainable checks on the two texts. Each check is a pure function of a parsed pair and the
:class:`Verifier` names the first one that fails. Nothing is learned from data; the only
number chosen on data is ``DEFAULT_WORDS_PER_EDIT`` (on half 0 of PAWS dev, see
``scripts/bench_cache.py``).

Both texts are parsed into a sequence of meaningful words: content words (plural folded),
names (capitalised mid-sentence or all caps), numbers (digits or number words), symbols,
relation words (from, to, of, by, than, in, 's …) and the question word (why, how, who …),
after request phrasing is rewritten ("can you tell me", "what is the best way to" →
"how to"). Then the words are aligned in order (:func:`align`), letting one phrase or clause
move as a block ("In 1066, who won …" / "Who won … in 1066").

- ``numbers``   every number appears the same number of times ("3" = "three").
- ``negation``  the same count of negating words (not, no, never, without, n't …).
- ``order``     no word changed places: a word left unaligned on one side is not found
                unaligned on the other. Catches swapped roles ("from Paris to London",
                "dog bites man", "written by X and directed by Y").
- ``key_words`` names, numbers, symbols and the question word are never substituted, added
                or dropped; a relation word may only be added or dropped, or swapped among
                in / at / on.
- ``edits``     the remaining plain-word edits fit the budget: one per
                ``DEFAULT_WORDS_PER_EDIT`` content words, so none for a short request
                ("how to kill a python process" / "how to kill a python").

A paraphrase that uses synonyms or passive voice fails these checks and is a *miss*, never a
wrong answer: the cache may miss; it must not lie.

The server uses :class:`~intent_router.cache.pairmodel.ModelVerifier`, which keeps the hard
checks here as vetoes and lets a small fitted model judge the plain-word edits; this module's
:class:`Verifier` is the rule-only fallback (``ResponseCache``'s default) and a model input.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Final

from intent_router.cache.keys import normalize_text

_TOKEN = re.compile(
    r"\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|k|m|x)?|[^\W\d_]+(?:[+#]+|'[^\W\d_]+)?|n't|'s\b"
    r"|[%$€£¥+*/=<>^&|#@~-]",
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_IS = re.compile(r"\b(it|what|that|there|here|he|she|who|where|how|when|why)'s\b")
_BOUNDARY = re.compile(r"[,;:()\[\]{}!?\"]|\s-\s|\.(?:\s|$)")

NEGATIONS: Final = _words(
    "not no never none nobody nothing nowhere neither nor without cannot n't isnt arent "
    "wasnt werent dont doesnt didnt cant couldnt wont wouldnt shouldnt"
)
RELATIONS: Final = _words(
    "from to into onto of by for with without than at in on over under between against as "
    "via per vs versus toward towards after before since until about through 's"
)
"""Words that give the word after them a role; changing a word's role changes the ask."""

CLAUSE_BREAKS: Final = _words(
    "and or but that which who whom whose while whereas because although if when where"
)
STOPWORDS: Final = _words(
    "a an the this that these those it its it's is are was were be been being am do does "
    "did doing done have has had having will would shall should can could may might must "
    "i me my mine we us our you your yours he him his she her hers they them their there "
    "here also just so then too very really quite some any each such own same other only "
    "again further once and or but if while because as until whether"
)
WH_WORDS: Final = _words("what why how when where who whom whose which")
ASK_WORDS: Final = WH_WORDS - {"what"}
"""The first of these opening one of the first two clauses is the question's ask ("what" is
left out: "what is X" asks for X, as "tell me X" does). Later ones are relative pronouns."""

_SMALL_NUMBERS: Final = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS: Final = {
    w: str(i) for i, w in enumerate(_SMALL_NUMBERS.split())
} | {
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
    "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000",
    "million": "1000000", "billion": "1000000000", "dozen": "12", "half": "0.5",
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "twice": "2x", "double": "2x", "triple": "3x", "once": "1x",
}  # fmt: skip

# Request phrasing that does not change the ask, rewritten before comparing: the ways of
# asking "how" become "how to" (first), then politeness is dropped. Everything else,
# including "best" and every other wh-word, is kept.
_HOW_TO: Final = " how to "
_FILLERS: Final = tuple(
    (re.compile(rf"\b{pattern}\b"), replacement)
    for pattern, replacement in (
        (
            r"what(?: is| are) (?:the |a )?(?:best |correct |right |proper |easiest |good )?"
            r"(?:way|ways|method|approach) (?:to|of)",
            _HOW_TO,
        ),
        (r"is there (?:a|any) way to", _HOW_TO),
        (
            r"how (?:do|can|should|would|could|might|does|shall) (?:i|we|one|you) (?:go about )?",
            _HOW_TO,
        ),
        (r"how to (?:go about )?", _HOW_TO),
        (r"(?:can|could|would|will) you(?: please| kindly)*", " , "),
        (r"(?:please|kindly|pls|plz|hi|hey|hello|thanks|thank you)", " , "),
        (r"i (?:want|need|would like|'d like|wanna) to know", " , "),
        (r"(?:tell|show|teach) me", " , "),
        (r"help me(?: to)?", " , "),
        (r"do you know", " , "),
        (r"i wonder(?: if)?", " , "),
    )
)


@dataclass(frozen=True, slots=True)
class Word:
    """One meaningful token of a question: folded form, kind and clause number.

    ``kind`` is ``word`` (a content word), ``name`` (capitalised mid-sentence, or all
    caps: a named thing), ``num``, ``sym`` (``+``, ``%``, ``$`` …), ``wh`` (the question
    word) or ``rel`` (a relation word).
    """

    stem: str
    kind: str
    clause: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the checks compare, computed once per text."""

    numbers: Counter[str]
    negations: int
    words: tuple[Word, ...]

    @property
    def content(self) -> int:
        return sum(w.kind != "rel" for w in self.words)


def _fold(token: str) -> str:
    """Light, safe folding: plural ``-s``/``-es``/``-ies`` only; nothing that merges senses."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("ches", "shes", "sses", "xes", "zes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _number(token: str) -> str | None:
    if token[0].isdigit():
        return token.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token) else token
    return _NUMBER_WORDS.get(token)


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w+#]*|\b[A-Z]{2,}[\w+#]*")


def _names(text: str) -> frozenset[str]:
    """Tokens capitalised mid-sentence or written in capitals: likely names and codes."""
    return frozenset(_fold(m.group().casefold()) for m in _NAME.finditer(text.strip()))


@lru_cache(maxsize=8192)
def parse(text: str) -> Parsed:
    """Parse a question into numbers, negation count and a sequence of meaningful words."""
    names = _names(text)
    folded = _IS.sub(r"\1 is", normalize_text(text)).replace("n't", " n't")
    folded = re.sub(r"'s\b", " 's", folded)
    for filler, replacement in _FILLERS:
        folded = filler.sub(replacement, folded)  # a dropped phrase acts as a clause break
    numbers: Counter[str] = Counter()
    negations = 0
    words: list[Word] = []
    clause = 0
    pos = 0
    asked = False
    for match in _TOKEN.finditer(folded):
        token = match.group()
        opens = not words or _BOUNDARY.search(folded, pos, match.start()) is not None
        if opens and words:
            clause += 1
        pos = match.end()
        if token in NEGATIONS:
            negations += 1
        elif token in ASK_WORDS and not asked and clause <= 1 and opens:
            asked = True
            words.append(Word(token, "wh", clause))  # the question word: it is the ask
        elif token in CLAUSE_BREAKS or token in WH_WORDS:
            clause += 1
        elif token in RELATIONS:
            words.append(Word(token, "rel", clause))
        elif (value := _number(token)) is not None:
            numbers[value] += 1
            words.append(Word(value, "num", clause))
        elif not token[0].isalnum():
            words.append(Word(token, "sym", clause))
        elif token not in STOPWORDS:
            stem = _fold(token)
            words.append(Word(stem, "name" if stem in names else "word", clause))
    return Parsed(numbers=numbers, negations=negations, words=tuple(words))


def _stems(words: Sequence[Word]) -> tuple[str, ...]:
    return tuple(w.stem for w in words)


def _units(p: Parsed) -> list[tuple[str, ...]]:
    """Word groups that may move as a whole: a phrase opened by a relation word ("in 1963",
    "to London") or a clause of three or more words."""
    clauses: dict[int, list[Word]] = {}
    for w in p.words:
        clauses.setdefault(w.clause, []).append(w)
    units: list[tuple[str, ...]] = []
    for clause in clauses.values():
        if len(clause) >= 3:
            units.append(_stems(clause))
        for i, w in enumerate(clause):
            if w.kind == "rel" and i + 1 < len(clause) and clause[i + 1].kind != "rel":
                end = next(
                    (k for k in range(i + 1, len(clause)) if clause[k].kind == "rel"), len(clause)
                )
                units.append(_stems(clause[i:end]))
    return units


def _find(words: Sequence[Word], unit: tuple[str, ...]) -> int:
    """Index of the first contiguous occurrence of ``unit`` in ``words``, or -1."""
    n = len(unit)
    return next((i for i in range(len(words) - n + 1) if _stems(words[i : i + n]) == unit), -1)


@dataclass(frozen=True, slots=True)
class Alignment:
    """Order-preserving alignment of two questions' words, after at most one block move."""

    only_a: tuple[Word, ...]
    only_b: tuple[Word, ...]
    edits: int
    """Substitutions, insertions and deletions needed, counted in words."""

    @property
    def moved(self) -> bool:
        """Some word is unaligned on both sides: it changed place, not wording."""
        return bool(Counter(_stems(self.only_a)) & Counter(_stems(self.only_b)))


def _align(seq_a: Sequence[Word], seq_b: Sequence[Word]) -> Alignment:
    matcher = SequenceMatcher(None, _stems(seq_a), _stems(seq_b), autojunk=False)
    only_a: list[Word] = []
    only_b: list[Word] = []
    edits = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            only_a.extend(seq_a[i1:i2])
            only_b.extend(seq_b[j1:j2])
            edits += max(i2 - i1, j2 - j1)
    return Alignment(tuple(only_a), tuple(only_b), edits)


def _at_edge(words: Sequence[Word], start: int, n: int) -> bool:
    """The group opens or closes its clause (fronted or trailing, not wedged inside)."""
    end = start + n
    opens = start == 0 or words[start - 1].clause != words[start].clause
    closes = end == len(words) or words[end].clause != words[end - 1].clause
    return opens or closes


def align(a: Parsed, b: Parsed) -> Alignment:
    """Align the words of ``a`` and ``b`` in order, letting ONE phrase or clause move.

    One move covers the usual rewordings ("In 1963, Roy joined …" / "Roy joined … in
    1963"); a swap needs two moves ("written by X, directed by Y" / "written by Y,
    directed by X") and stays visible as moved words.
    """
    plain = _align(a.words, b.words)
    if not plain.moved:
        return plain
    for unit in sorted({*_units(a), *_units(b)}, key=len, reverse=True):
        i, j = _find(a.words, unit), _find(b.words, unit)
        if (
            i >= 0
            and j >= 0
            and _at_edge(a.words, i, len(unit))
            and _at_edge(b.words, j, len(unit))
        ):
            rest_a = a.words[:i] + a.words[i + len(unit) :]
            rest_b = b.words[:j] + b.words[j + len(unit) :]
            moved = _align(rest_a, rest_b)
            if not moved.moved:
                return moved
    return plain


class Pair:
    """A query and a cached question, parsed, with their alignment computed once."""

    def __init__(self, query: str, cached: str) -> None:
        self.a = parse(query)
        self.b = parse(cached)
        self._alignment: Alignment | None = None

    @property
    def alignment(self) -> Alignment:
        if self._alignment is None:
            self._alignment = align(self.a, self.b)
        return self._alignment


Check = Callable[[Pair], bool]
"""A check is True when the two questions agree on what it looks at."""


def same_numbers(pair: Pair) -> bool:
    return pair.a.numbers == pair.b.numbers


def same_negation(pair: Pair) -> bool:
    return pair.a.negations == pair.b.negations


def in_order(pair: Pair) -> bool:
    """No word swapped places: "from Paris to London" / "from London to Paris",
    "dog bites man" / "man bites dog"."""
    return not pair.alignment.moved


_PLACE: Final = frozenset({"in", "at", "on"})


def same_key_words(pair: Pair) -> bool:
    """Names, numbers and the question word are never edited; a relation word may be
    added or dropped (within the edit budget) but not exchanged, except in / at / on."""
    al = pair.alignment
    if any(w.kind not in ("word", "rel") for w in (*al.only_a, *al.only_b)):
        return False
    rel_a = {w.stem for w in al.only_a if w.kind == "rel"}
    rel_b = {w.stem for w in al.only_b if w.kind == "rel"}
    return not (rel_a and rel_b) or (rel_a | rel_b) <= _PLACE


class FewEdits:
    """At most one plain-word edit per ``words_per_edit`` content words (short: none).

    A one-word change in a 3-word request is a different request; in a 20-word sentence
    it is usually a rewording ("located" / "situated").
    """

    def __init__(self, words_per_edit: int) -> None:
        self.words_per_edit = words_per_edit

    def __call__(self, pair: Pair) -> bool:
        budget = min(pair.a.content, pair.b.content) // self.words_per_edit
        return pair.alignment.edits <= budget


DEFAULT_WORDS_PER_EDIT: Final = 8

DEFAULT_CHECKS: Final[tuple[tuple[str, Check], ...]] = (
    ("numbers", same_numbers),
    ("negation", same_negation),
    ("order", in_order),
    ("key_words", same_key_words),
    ("edits", FewEdits(DEFAULT_WORDS_PER_EDIT)),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verifier's answer; ``failed`` names the first check that disagreed."""

    ok: bool
    failed: str | None = None


class Verifier:
    """Runs named checks on (query, cached question); the first failure rejects."""

    def __init__(self, checks: Sequence[tuple[str, Check]] = DEFAULT_CHECKS) -> None:
        self.checks = tuple(checks)

    def verify(self, query: str, cached: str) -> Verdict:
        pair = Pair(query, cached)
        for name, check in self.checks:
            if not check(pair):
                return Verdict(ok=False, failed=name)
        return Verdict(ok=True)


class AcceptAll(Verifier):
    """No checks: cosine alone decides. For measurements only; it lets the cache lie."""

    def __init__(self) -> None:
        super().__init__(())
