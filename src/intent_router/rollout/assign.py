"""Sticky, weighted assignment of a request to one variant of its route.

**Who is the subject.** The caller's key id when API keys are on, else the request's
``user`` field, else the request id. The first two are sticky: the same key (or user)
gets the same variant on every request while the weights stay. The request id is not
(a fresh id each request): anonymous traffic without ``user`` is split per request.

**How.** Weighted rendezvous hashing: for each variant with weight ``w > 0``,
``u = blake2b(route, variant, subject)`` read as a number in (0, 1), and the variant with
the highest ``-w / ln(u)`` wins. Each variant wins with probability ``w / sum(w)``, and a
change of weights moves as few subjects as possible: setting a canary's weight to 0 moves
only the canary's subjects (spread over the others in proportion to their weights), and
raising one variant's weight only moves subjects *to* it. (Cumulative ranges over one hash
would also reshuffle subjects between the untouched variants.) Only the variant's name
and the weights matter, not the order of the list.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

SUBJECT_KEY = "key"
SUBJECT_USER = "user"
SUBJECT_REQUEST = "request"


@dataclass(frozen=True, slots=True)
class Subject:
    """What a request is assigned by, and whether that is sticky across requests."""

    kind: str  # key | user | request
    value: str

    @property
    def sticky(self) -> bool:
        return self.kind != SUBJECT_REQUEST


def subject_for(key_id: str | None, user: str | None, request_id: str) -> Subject:
    """The key id (``None`` or anonymous: no keys), else ``user``, else the request id."""
    if key_id:
        return Subject(SUBJECT_KEY, key_id)
    if user:
        return Subject(SUBJECT_USER, user)
    return Subject(SUBJECT_REQUEST, request_id)


def unit_hash(*parts: str) -> float:
    """A stable number in the open interval (0, 1) from ``parts`` (blake2b, 64 bits)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def choose(route: str, subject: Subject, weights: Mapping[str, float]) -> str | None:
    """The variant ``subject`` gets among ``weights`` (name → weight); None if all are 0."""
    best: str | None = None
    best_score = -math.inf
    for name, weight in weights.items():
        if weight <= 0:
            continue
        score = -weight / math.log(unit_hash(route, name, subject.kind, subject.value))
        if score > best_score:
            best, best_score = name, score
    return best
