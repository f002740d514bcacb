"""Route a conversation, not only its last turn: a follow-up stays, a new ask moves.

Stateless: everything comes from the turns the request carries, as ``(role, text)`` pairs
(roles ``system``/``developer``/``user``/``assistant``/``tool``; only user turns are read).

The method, in two steps (measured on ``scripts/data/conversations.jsonl``, see the README)
-------------------------------------------------------------------------------------
1. :func:`plan_turns` picks what to embed, all in one encoder batch: the last user turn (the
   text a single-turn request routes on), its clauses (``"thanks! now translate that into
   French"`` → ``"now translate that into French"``: leading thanks or chatter dilute the
   ask), the previous user turn and the last one **joined** as one text, and up to
   :data:`MAX_CONTEXT_TURNS` earlier user turns, each cut to :data:`CONTEXT_CHARS`
   characters (the ask is usually at the start of a pasted text).
2. :func:`read` makes four readings, with no further encoder call. The **last turn** is the
   best of its full text and its clauses. The **context** is one vector: the
   recency-weighted mean (weight :data:`RECENCY_DECAY` per turn back) of the earlier user
   turns, routed like any query (route thresholds and chains apply unchanged; its best
   route is kept within :data:`CONTEXT_SLACK` under the threshold). The **novel part** is
   the last turn with most of the context direction projected out
   (:func:`~intent_router.routing.turn_model.novel_vector`), so "now summarize that story"
   is not pulled back to the story's route by "story". The **joined** text says whether
   the last turn still reads as part of the previous ask. :func:`decide` then:

   * no earlier user turn → the last turn alone (single-turn requests are unchanged);
   * the last turn says the topic changes (``"unrelated, but …"``, ``"different question:"``,
     ``"by the way"``) → it moves (to its novel part's route, else its own reading, which
     may be no route);
   * the context has no route → the last turn alone;
   * the last turn routes to the context route on its own, and its novel part leans there
     too → that route;
   * otherwise the **turn model** (:mod:`intent_router.routing.turn_model`, a logistic
     model with a few shipped weights, fitted by ``scripts/fit_turn_model.py`` on the
     ``train`` and ``dev`` chats) weighs the evidence: ``P(move)`` at or above its
     threshold → the last turn moves; below → it is a follow-up and the context decides.

Tried and left out: the assistant turns' text in the context (same or lower accuracy, and
more to embed), averaging route scores instead of vectors, 1 or 3 earlier turns instead of
2 (same), fixed margins instead of the model (the previous version: a grid over its three
constants moved neither kind by more than a point, and it could not tell a self-contained
question that leaves for no route from an elliptic follow-up).

Known limits: a conversation whose earlier turns the router misses (a long pasted text, an
ask it does not know) has no context route, so its follow-ups route alone; a switch is only
as good as the router on the last turn (an ask it misroutes alone is misrouted here too);
a self-contained question that leaves for no route ("who won the world cup in 2014?")
after a short support or chit-chat exchange still often stays; with the hybrid encoder,
an earlier turn and the last one identified as different languages share no vector space
(their cosine is 0), which reads as a switch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from intent_router.errors import QueryError
from intent_router.routing.matcher import Decision, Matcher
from intent_router.routing.turn_model import Evidence, TurnModel, novel_vector, route_scores

Turn = tuple[str, str]
"""One message of the conversation: ``(role, text)``."""

MAX_CONTEXT_TURNS = 2
"""Earlier user turns read, most recent first (1, 2 and 3 score the same on the data set)."""

CONTEXT_CHARS = 200
"""Characters kept of each earlier user turn."""

RECENCY_DECAY = 0.5
"""Weight of an earlier user turn relative to the one after it."""

REFERENTIAL_MAX_WORDS = 8
"""A last turn this short that points back ("make it shorter") is ``referential``."""

CONTEXT_SLACK = 0.08
"""How far below its threshold the context may score and still hold a follow-up: earlier
turns are often a short ask plus pasted text, which dilutes their score, and the follow-up
alone scores lower still."""

MAX_CLAUSES = 3
MIN_CLAUSE_WORDS = 3

_CLAUSE_SPLIT = re.compile(  # after . ! ? ; : — before a dash — before ", but/and/so/now/also"
    r"(?<=[.!?;:])\s+|\s+(?:\u2014|\u2013|--)\s+|,\s+(?=(?:but|and|so|now|also)\b)"
)
_REFERENTIAL = re.compile(  # closed-class words that point back, or a continuing first word
    r"\b(it|its|that|this|these|those|them|they|one|ones|same|instead|again|another)\b"
    r"|^\W*(and|also|now|so|then|but|or|ok|okay|plus|what about|how about)\b",
    re.IGNORECASE,
)
_TOPIC_CHANGE = re.compile(
    r"\b(unrelated|(different|separate|new) (question|topic|thing|task|subject|request)"
    r"|another (question|topic|subject)|by the way|btw|switching (topics?|gears)"
    r"|random question|change of (topic|subject)|on another note|something (else|different)"
    r"|totally different|never ?mind)\b",
    re.IGNORECASE,
)

_WORD = re.compile(r"[^\W\d_]+")

DecidedBy = Literal["last_turn", "context"]


@dataclass(frozen=True)
class TurnPlan:
    """The turns to embed for one request, with their message indexes."""

    last: int
    last_text: str
    clauses: tuple[str, ...] = ()
    referential: bool = False  # short, and points back at the earlier turns
    context: tuple[int, ...] = ()  # message indexes, most recent first
    context_texts: tuple[str, ...] = ()
    topic_change: bool = False
    new_words: int = 0  # content words of the last turn absent from the earlier user turns

    @property
    def joined(self) -> str:
        """The previous user turn and the last one as one text (empty without context)."""
        return f"{self.context_texts[0]} {self.last_text}" if self.context_texts else ""

    def texts(self) -> list[str]:
        """Everything to embed, in one batch: last turn, its clauses, the previous user
        turn joined with the last one, earlier turns."""
        if not self.context:
            return [self.last_text]
        return [self.last_text, *self.clauses, self.joined, *self.context_texts]


@dataclass(frozen=True)
class ConversationDecision:
    """The routing decision for a conversation, and which turns made it."""

    decision: Decision
    decided_by: DecidedBy
    why: str
    last_turn: int
    last_turn_decision: Decision
    context_turns: tuple[int, ...] = ()
    context_decision: Decision | None = None
    novel_decision: Decision | None = None  # the last turn without the context direction
    p_move: float | None = None  # the turn model's probability that the last turn moves

    @property
    def deciding_turns(self) -> list[int]:
        return [self.last_turn] if self.decided_by == "last_turn" else list(self.context_turns)

    def to_dict(self) -> dict[str, Any]:
        """New keys for the decision record (next to :meth:`Decision.to_dict`)."""
        context = self.context_decision
        return {
            "decided_by": self.decided_by,
            "conversation": {
                "why": self.why,
                "deciding_turns": self.deciding_turns,
                "last_turn": self.last_turn,
                "last_turn_route": self.last_turn_decision.route,
                "last_turn_score": round(self.last_turn_decision.score, 6),
                "context_turns": list(self.context_turns),
                "context_route": context.route if context else None,
                "context_score": round(context.score, 6) if context else None,
                "novel_route": self.novel_decision.route if self.novel_decision else None,
                "p_move": None if self.p_move is None else round(self.p_move, 4),
            },
        }


def plan_turns(turns: Sequence[Turn], *, clean: Callable[[str], str] | None = None) -> TurnPlan:
    """Pick the last user turn, its clauses and the earlier user turns to embed.

    ``clean`` (text → text) normalises the last turn as a single query would be; the
    earlier turns are whitespace-collapsed and cut to :data:`CONTEXT_CHARS`.
    """
    users = [(i, text) for i, (role, text) in enumerate(turns) if role == "user" and text.strip()]
    if not users:
        raise QueryError("the conversation has no user message with text to route")
    last, raw = users[-1]
    text = clean(raw) if clean is not None else " ".join(raw.split())
    earlier = users[-1 - MAX_CONTEXT_TURNS : -1][::-1]
    if not earlier:
        return TurnPlan(last=last, last_text=text)
    return TurnPlan(
        last=last,
        last_text=text,
        clauses=tuple(_clauses(text)),
        context=tuple(i for i, _ in earlier),
        context_texts=tuple(_context_text(t) for _, t in earlier),
        topic_change=bool(_TOPIC_CHANGE.search(text)),
        new_words=len(_content_words(text) - _content_words(" ".join(t for _, t in earlier))),
        referential=len(text.split()) <= REFERENTIAL_MAX_WORDS and bool(_REFERENTIAL.search(text)),
    )


def decide(
    plan: TurnPlan,
    vectors: npt.NDArray[np.float32],
    decisions: Sequence[Decision],
    matcher: Matcher,
    model: TurnModel | None = None,
) -> ConversationDecision:
    """The decision for ``plan`` from the vectors and decisions of ``plan.texts()``.

    ``model`` (default: the shipped :class:`TurnModel`) says whether the last turn moves.
    """
    last = decisions[0]
    if not plan.context:
        return ConversationDecision(last, "last_turn", "single turn", plan.last, last)
    r = read(plan, vectors, decisions, matcher)
    reading, context, novel = r.reading, r.context, r.novel

    def result(
        why: str,
        by: DecidedBy = "last_turn",
        chosen: Decision | None = None,
        p: float | None = None,
    ) -> ConversationDecision:
        chosen = chosen or (context if by == "context" else reading)
        return ConversationDecision(
            chosen, by, why, plan.last, reading, plan.context, context, novel, p
        )

    if plan.topic_change:
        return result("the last turn changes the topic", chosen=r.moved)
    if context.route is None:
        return result("the earlier turns have no route")
    if r.agrees:
        return result("the last turn agrees with the earlier turns")
    model = model or shipped_model()
    p = model.p_move(r.evidence.features())
    if p >= model.threshold:
        return result("the last turn asks for something else", chosen=r.moved, p=p)
    return result("follow-up on the route of the earlier turns", by="context", p=p)


@dataclass(frozen=True)
class Readings:
    """The three readings of a conversation with earlier turns, and the model's evidence."""

    reading: Decision  # the last turn, whole or by its clearest clause
    context: Decision  # the earlier turns' context vector (lenient)
    novel: Decision  # the last turn with the context direction projected out
    evidence: Evidence

    @property
    def agrees(self) -> bool:
        """The last turn routes to the context route on its own, and its novel part leans
        there too (otherwise the model weighs it)."""
        route = self.context.route
        return self.reading.route == route and _top(self.novel) == route

    @property
    def moved(self) -> Decision:
        """Where a moving last turn goes: its novel part's route, else its own reading."""
        keep_novel = self.novel.route is not None or self.reading.route is None
        return self.novel if keep_novel else self.reading


def read(
    plan: TurnPlan,
    vectors: npt.NDArray[np.float32],
    decisions: Sequence[Decision],
    matcher: Matcher,
) -> Readings:
    """Every reading :func:`decide` weighs (``plan`` has earlier turns); no encoder call."""
    n_last = 1 + len(plan.clauses)
    reading = _best_reading(decisions[:n_last])
    context_vector = _context_vector(vectors[-len(plan.context) :])
    context = _lenient(matcher.decide(context_vector[None, :])[0], matcher)
    novel_vectors = np.stack([novel_vector(v, context_vector) for v in vectors[:n_last]])
    novel = _best_reading(matcher.decide(novel_vectors))
    joined = matcher.decide(vectors[n_last : n_last + 1])[0]
    evidence = Evidence(
        reading=reading,
        joined=joined,
        novel=novel,
        context=context,
        last_scores=route_scores(matcher.names, matcher.scores(vectors[:1])[0]),
        cosine=float(vectors[0] @ context_vector),
        referential=plan.referential,
        points_back=bool(_REFERENTIAL.search(plan.last_text)),
        new_words=plan.new_words,
        words=len(plan.last_text.split()),
    )
    return Readings(reading, context, novel, evidence)


@functools.cache
def shipped_model() -> TurnModel:
    """The shipped weights (read once)."""
    return TurnModel.load()


def _top(decision: Decision) -> str | None:
    return decision.candidates[0].route if decision.candidates else None


def _content_words(text: str) -> set[str]:
    """Words of 4+ letters (a crude, language-blind stand-in for content words)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 4}


def _context_text(text: str) -> str:
    return " ".join(text.split())[:CONTEXT_CHARS]


def _lenient(context: Decision, matcher: Matcher) -> Decision:
    """The context decision, its best route kept when within :data:`CONTEXT_SLACK`."""
    best = context.candidates[0] if context.candidates else None
    if context.route is not None or best is None:
        return context
    if best.score < context.threshold - CONTEXT_SLACK:
        return context
    return replace(context, route=best.route, chain=matcher.chains[matcher.names.index(best.route)])


def _clauses(text: str) -> list[str]:
    parts = [p.strip(" ,") for p in _CLAUSE_SPLIT.split(text)]
    parts = [p for p in parts if p]
    if len(parts) < 2:
        return []
    kept = [p for p in parts if len(p.split()) >= MIN_CLAUSE_WORDS]
    return [p for p in kept if not _TOPIC_CHANGE.search(p)][:MAX_CLAUSES]


def _best_reading(decisions: Sequence[Decision]) -> Decision:
    """The last turn read as a whole or as its clearest clause (highest score over threshold)."""
    return max(decisions, key=lambda d: d.score - d.threshold)


def _context_vector(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Recency-weighted mean of the earlier turns (rows most recent first), L2-normalised."""
    weights = RECENCY_DECAY ** np.arange(len(vectors), dtype=np.float32)
    mean = (weights[:, None] * np.asarray(vectors, dtype=np.float32)).sum(axis=0)
    norm = float(np.linalg.norm(mean))
    result: npt.NDArray[np.float32] = (mean / norm if norm > 0 else mean).astype(np.float32)
    return result
