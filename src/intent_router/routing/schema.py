"""The route model: what one ``routes/*.yaml`` file may say.

Unknown keys are refused (``extra="forbid"``), so a typo never silently becomes a default.

Two kinds of route file:

* ``kind: route`` (the default): utterances that mean the route, optional ``negatives``
  (requests that must *not* go to it), a chain (or weighted ``variants`` of it, with
  ``shadow`` models and a ``canary`` policy: :mod:`intent_router.rollout.policy`), a
  threshold and a cache policy;
* ``kind: none``: utterances that belong to **no** route. A query that lands among them is
  refused (out of scope → the default chain). Such a file takes only ``name``,
  ``description``, ``kind`` and ``utterances``; a chain, threshold, negatives or cache
  policy on it is refused with the field named.

Repeated utterances are not refused here: the loader drops the copies and warns with the
file and line (people paste traffic with duplicates).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from intent_router.cache.policy import RouteCachePolicy
from intent_router.rollout.policy import CanaryPolicy, ShadowPolicy, Variant, check_variants

RouteName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.-]+$"),
]
Utterance = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_SPACES = re.compile(r"\s+")

NONE_KIND = "none"
NONE_ROUTE_REFUSES = ("negatives", "threshold", "chain", "budget_chain", "cache", "variants",
                      "shadow", "canary")  # fmt: skip
"""Keys a ``kind: none`` route may not have: it is never chosen, so they would mean nothing."""


def utterance_key(text: str) -> str:
    """What makes two utterances "the same": case and runs of whitespace are ignored."""
    return _SPACES.sub(" ", text.strip()).casefold()


class Route(BaseModel):
    """One route: a name, the requests that mean it, and the model chain that answers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RouteName
    description: str = ""
    kind: Literal["route", "none"] = "route"
    """``none``: the utterances are examples of requests that belong to no route."""
    utterances: list[Utterance] = Field(min_length=1)
    negatives: list[Utterance] = Field(default_factory=list)
    """Requests that must not go to this route (they may go to another, or to none)."""
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    chain: list[ModelName] = Field(default_factory=list)
    budget_chain: list[ModelName] = Field(default_factory=list)
    """The chain for keys past the downgrade share of their budget (default: the chain
    without the models dearer than its cheapest)."""
    cache: RouteCachePolicy | None = None
    """Per-route response-cache policy; unset keys take the global defaults."""
    variants: list[Variant] = Field(default_factory=list)
    """Weighted chains (A/B, canary) in place of ``chain``."""
    shadow: ShadowPolicy | None = None
    canary: CanaryPolicy | None = None
    """When ``canary: true`` variants are rolled back (defaults when unset)."""

    @property
    def is_none(self) -> bool:
        return self.kind == NONE_KIND

    @field_validator("utterances", "negatives", mode="before")
    @classmethod
    def _strings_only(cls, value: object) -> object:
        # YAML turns `- 42` or `- yes` into int/bool; refuse rather than coerce silently.
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValueError(
                        f"item {i} is {type(item).__name__} {item!r}, not a string "
                        "(quote it in YAML)"
                    )
        return value

    @property
    def baseline_chain(self) -> list[str]:
        """The chain, or the heaviest non-canary variant's (what a canary falls back to)."""
        if not self.variants:
            return list(self.chain)
        baseline = [v for v in self.variants if not v.canary]
        return list(max(baseline, key=lambda v: v.weight).chain)

    def model_lists(self) -> dict[str, list[str]]:
        """Every list of models the route names, by where (for the models-file check)."""
        lists: dict[str, list[str]] = {}
        if self.variants:
            for variant in self.variants:
                lists[f"{self.name} (variant {variant.name})"] = list(variant.chain)
        else:
            lists[self.name] = list(self.chain)
        if self.shadow is not None:
            lists[f"{self.name} (shadow)"] = list(self.shadow.models)
        return lists

    @field_validator("variants")
    @classmethod
    def _variants_or_chain(cls, value: list[Variant], info: ValidationInfo) -> list[Variant]:
        if value and info.data.get("chain"):
            raise ValueError(
                "a route takes `chain` or `variants`, not both (put the chain in a variant)"
            )
        return check_variants(value)

    @field_validator("canary")
    @classmethod
    def _canary_needs_one(
        cls, value: CanaryPolicy | None, info: ValidationInfo
    ) -> CanaryPolicy | None:
        variants = info.data.get("variants") or []
        if value is not None and not any(v.canary for v in variants):
            raise ValueError("no variant has `canary: true`, so the canary policy means nothing")
        return value

    @field_validator(*NONE_ROUTE_REFUSES)
    @classmethod
    def _not_on_a_none_route(cls, value: object, info: ValidationInfo) -> object:
        # Fields validate in declaration order, so ``kind`` is known here.
        if info.data.get("kind") == NONE_KIND:
            raise ValueError(
                f"a route of kind none takes no {info.field_name}: its utterances only say "
                "what belongs to no route (remove the key, or drop `kind: none`)"
            )
        return value
