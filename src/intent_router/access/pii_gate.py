"""The PII gate: requests carrying personal data go only to ``pii_approved`` models.

The detector of :mod:`intent_router.observability.redact` reads every message's text.
When it finds personal data (``EMAIL``, ``PHONE``, ``CARD``, ``IBAN``, ``SSN``, ``IP``;
secrets alone do not close the gate, they are not personal data), the models of the
chain not marked ``pii_approved: true`` in the models file are skipped with that reason;
if none is left, :class:`~intent_router.errors.PiiNotApprovedError` (400) names what was
found and which models are approved, and no upstream is called.

When it is on: the models file's ``pii_gate:`` says ``on``, ``off``, or ``auto`` (the
default): on as soon as any model sets ``pii_approved``, so a file that never mentions it
behaves as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from intent_router.errors import PiiNotApprovedError
from intent_router.models import ModelsConfig
from intent_router.observability.redact import find_pii
from intent_router.providers import ChatRequest

PII_KINDS = frozenset({"EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP"})


@dataclass(frozen=True)
class Gated:
    """The chain after the gate, the models it skipped (with why) and the decision row part."""

    chain: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    record: dict[str, Any] | None = None  # None: gate off, nothing recorded
    approved: tuple[str, ...] | None = None  # set when personal data limits the models

    def allows(self, model: str) -> bool:
        return self.approved is None or model in self.approved


@dataclass(frozen=True)
class PiiGate:
    enabled: bool
    approved: tuple[str, ...]

    @classmethod
    def from_models(cls, models: ModelsConfig) -> PiiGate:
        approved = tuple(sorted(n for n, s in models.models.items() if s.pii_approved))
        on = models.pii_gate == "on" or (models.pii_gate == "auto" and bool(approved))
        return cls(enabled=on, approved=approved)

    def apply(self, request: ChatRequest, chain: Sequence[str]) -> Gated:
        if not self.enabled:
            return Gated(list(chain))
        kinds = found_kinds(request)
        if not kinds:
            return Gated(list(chain), record={"personal_data": []})
        kept = [m for m in chain if m in self.approved]
        why = f"personal data in the request ({', '.join(kinds)}); model not pii_approved"
        skipped = [(m, why) for m in chain if m not in kept]
        record = {"personal_data": kinds, "skipped": [m for m, _ in skipped]}
        if not kept:
            approved = ", ".join(self.approved) or "none"
            raise PiiNotApprovedError(
                f"the request contains personal data ({', '.join(kinds)}) and no model of "
                f"its chain [{', '.join(chain)}] is approved for it (pii_approved: true); "
                f"approved models: {approved}",
                kinds=kinds,
                approved=self.approved,
            )
        return Gated(kept, skipped, record, self.approved)


def found_kinds(request: ChatRequest) -> list[str]:
    """The kinds of personal data in the request's messages, sorted."""
    kinds: set[str] = set()
    for message in request.messages:
        text = message.text()
        if text:
            kinds.update(f.kind for f in find_pii(text) if f.kind in PII_KINDS)
    return sorted(kinds)
