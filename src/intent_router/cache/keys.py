"""What makes two requests "the same question": the scope and the exact key.

A cached answer may only be served for a request that would get the same answer, so
everything that changes the answer goes into the :class:`CacheScope`: the route, the chain
(or the pinned model), the system prompt, the sampling parameters, tools and response
format, stop sequences and every earlier turn of the conversation. Only the *last* user
message is left out: the exact tier keys on its normalised text, the semantic tier compares
it by meaning, and both only ever look inside one scope.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,;:!?.)\]}])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[{])\s+")
_TRAILING_PUNCT = re.compile(r"[\s?!.,;:…]+$")
_LEADING_PUNCT = re.compile(r"^[\s¿¡]+")
_REPEATED_PUNCT = re.compile(r"([?!,;:])\1+")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "`": "'"})
_DASHES = str.maketrans({"–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-"})


def normalize_text(text: str) -> str:
    """Fold a question to the form the exact tier compares.

    Unicode NFKC, casefold, curly quotes and dashes made plain, whitespace collapsed, no
    space before punctuation, and trailing ``?!.,;:`` dropped. Inner punctuation is kept:
    ``C++`` is not ``C``, and ``5.0`` is not ``50``.
    """
    folded = unicodedata.normalize("NFKC", text).translate(_QUOTES).translate(_DASHES)
    folded = _SPACES.sub(" ", folded.casefold()).strip()
    folded = _REPEATED_PUNCT.sub(r"\1", folded)
    folded = _SPACE_BEFORE_PUNCT.sub(r"\1", folded)
    folded = _SPACE_AFTER_OPEN.sub(r"\1", folded)
    folded = _TRAILING_PUNCT.sub("", folded)
    return _LEADING_PUNCT.sub("", folded)


def _canonical(value: Any) -> Any:
    """Make a JSON-able value whose serialisation does not depend on how it was spelt."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)  # 1 and 1.0 mean the same temperature
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_canonical(v) for v in value]
    raise TypeError(f"cache scope value of type {type(value).__name__} is not JSON-like")


def _turn(message: Mapping[str, Any]) -> dict[str, Any]:
    """One earlier turn, with its text whitespace-collapsed (but not case-folded)."""
    turn = {str(k): _canonical(v) for k, v in message.items()}
    content = turn.get("content")
    if isinstance(content, str):
        turn["content"] = _SPACES.sub(" ", content).strip()
    return turn


@dataclass(frozen=True, slots=True)
class CacheScope:
    """A stable hash of everything that changes the answer except the last user message.

    Build it with :meth:`of`; two requests share a scope only if every part is equal.
    ``route`` is kept readable for stats and logs; ``digest`` is what is compared.
    ``exact``, when set, is the digest the exact tier keys on instead: the service uses a
    scope known *before* routing (the request and the routing configuration), so exact
    repeats are answered without embedding the query at all.
    """

    digest: str
    route: str
    exact: str | None = None

    @classmethod
    def of(
        cls,
        *,
        route: str,
        chain: Sequence[str] = (),
        model: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        stop: str | Sequence[str] | None = None,
        history: Sequence[Mapping[str, Any]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> CacheScope:
        """Hash the answer-changing parts of a request.

        ``model`` is the pinned model when the caller bypasses the chain. ``history`` is
        every message *before* the last user message (earlier user and assistant turns,
        tool results), in order. ``extra`` takes any other answer-changing parameter
        (``top_p``, ``seed`` …) so a new knob never needs a new argument.
        """
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        parts = {
            "v": 1,
            "route": route,
            "chain": list(chain),
            "model": model,
            "system": _SPACES.sub(" ", system).strip() if system else None,
            "temperature": _canonical(temperature),
            "max_tokens": max_tokens,
            "tools": _canonical(list(tools)) if tools else None,
            "tool_choice": _canonical(tool_choice),
            "response_format": _canonical(response_format),
            "stop": sorted(stops) or None,
            "history": [_turn(m) for m in history],
            "extra": _canonical(dict(extra)) if extra else None,
        }
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return cls(digest=hashlib.sha256(blob.encode()).hexdigest()[:32], route=route)


def exact_key(scope: CacheScope, text: str) -> str:
    """The exact-tier key: the scope plus the normalised last user message."""
    blob = f"{scope.exact or scope.digest}\x00{normalize_text(text)}"
    return hashlib.sha256(blob.encode()).hexdigest()[:40]
