"""What of a prompt or answer may reach the logs: nothing, a redacted copy, or all of it."""

from __future__ import annotations

from typing import Literal

from intent_router.errors import ConfigError
from intent_router.observability.redact import redact

LogPrompts = Literal["off", "redacted", "full"]
LOG_PROMPTS_MODES: tuple[LogPrompts, ...] = ("off", "redacted", "full")


def prompt_for_log(text: str, mode: LogPrompts) -> str | None:
    """The text to write for ``mode``: None when ``off`` (the default everywhere),
    personal data replaced by typed placeholders when ``redacted``, unchanged when ``full``."""
    if mode == "off":
        return None
    if mode == "redacted":
        return redact(text)[0]
    if mode == "full":
        return text
    raise ConfigError(
        f"must be one of {', '.join(LOG_PROMPTS_MODES)}, not {mode!r}", field="log_prompts"
    )
