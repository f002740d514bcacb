"""The route model: what one ``routes/*.yaml`` file may say.

Unknown keys are refused (``extra="forbid"``), so a typo never silently becomes a default.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from intent_router.cache.policy import RouteCachePolicy

RouteName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.-]+$"),
]
Utterance = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_SPACES = re.compile(r"\s+")


class Route(BaseModel):
    """One route: a name, the requests that mean it, and the model chain that answers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RouteName
    description: str = ""
    utterances: list[Utterance] = Field(min_length=1)
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    chain: list[ModelName] = Field(default_factory=list)
    cache: RouteCachePolicy | None = None
    """Per-route response-cache policy; unset keys take the global defaults."""

    @field_validator("utterances", mode="before")
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

    @field_validator("utterances")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        for i, text in enumerate(value):
            key = _SPACES.sub(" ", text).casefold()
            if key in seen:
                raise ValueError(f"item {i} repeats item {seen[key]}: {text!r}")
            seen[key] = i
        return value
