"""Conversation turns, provider-neutral: roles, content parts, tool calls.

A :class:`Message` carries what a Chat Completions message can carry:

* ``content`` — plain text, a tuple of parts (:class:`TextPart`, :class:`ImagePart`), or
  ``None`` (an assistant turn that only calls tools);
* ``tool_calls`` — the functions an assistant turn asked for (:class:`ToolCall`);
* ``tool_call_id`` — on a ``tool`` message, which call this is the result of;
* ``name`` — the optional participant name.

Roles are ``system``, ``developer``, ``user``, ``assistant`` and ``tool``. ``developer``
is kept distinct: OpenAI-compatible upstreams receive it as sent; Anthropic and Gemini
have one system slot, so it joins the system prompt there (in conversation order).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from intent_router.errors import QueryError

Role = Literal["system", "developer", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool"})
SYSTEM_ROLES: frozenset[str] = frozenset({"system", "developer"})
ImageDetail = Literal["auto", "low", "high"]

IMAGE_TOKENS_LOW = 85  # OpenAI's flat price of a low-detail image
IMAGE_TOKENS_HIGH = 765  # a 1024x1024 image at high detail: a sensible default estimate


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by ``http(s)://`` URL or ``data:<media type>;base64,<data>`` URL."""

    url: str
    detail: ImageDetail | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://", "data:")):
            raise QueryError("image_url.url: must be an http(s) URL or a data: URL")
        if self.url.startswith("data:"):
            self.inline()  # validates

    def inline(self) -> tuple[str, str] | None:
        """``(media type, base64 data)`` for a data URL, None for a web URL."""
        if not self.url.startswith("data:"):
            return None
        head, sep, data = self.url.partition(",")
        media, _, encoding = head.removeprefix("data:").partition(";")
        if not sep or encoding != "base64" or not media.startswith("image/"):
            raise QueryError("image_url.url: a data URL must be data:image/<type>;base64,<data>")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise QueryError("image_url.url: the data URL is not valid base64") from exc
        return media, data

    def estimated_tokens(self) -> int:
        return IMAGE_TOKENS_LOW if self.detail == "low" else IMAGE_TOKENS_HIGH


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is JSON text as the model wrote it."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object (``{}`` when empty); not JSON → QueryError."""
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except ValueError as exc:
            raise QueryError(f"tool call '{self.id}': arguments are not valid JSON") from exc
        if not isinstance(value, dict):
            raise QueryError(f"tool call '{self.id}': arguments must be a JSON object")
        return value


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str | Sequence[ContentPart] | None = ""
    name: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.content is not None and not isinstance(self.content, str):
            object.__setattr__(self, "content", tuple(self.content))
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    def parts(self) -> tuple[ContentPart, ...]:
        """The content as parts (plain text is one text part; None is no part)."""
        if self.content is None:
            return ()
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return tuple(self.content)

    def text(self) -> str:
        """Text parts joined with single spaces; images and tool payloads are left out."""
        if isinstance(self.content, str):
            return self.content
        return " ".join(p.text for p in self.parts() if isinstance(p, TextPart))

    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts() if isinstance(p, ImagePart))

    def estimated_tokens(self) -> int:
        """~4 characters per token, images at a flat price, plus 4 tokens per message."""
        chars = sum(len(p.text) for p in self.parts() if isinstance(p, TextPart))
        chars += sum(len(c.name) + len(c.arguments) for c in self.tool_calls)
        return chars // 4 + 4 + sum(i.estimated_tokens() for i in self.images())

    def validate(self, where: str) -> None:
        """Raise QueryError (naming ``where``) when the turn is not a valid one for its role."""
        if self.role not in ROLES:
            known = "/".join(sorted(ROLES))
            raise QueryError(f"{where}: role '{self.role}' is not one of {known}")
        if self.role == "tool" and not self.tool_call_id:
            raise QueryError(f"{where}: a tool message needs 'tool_call_id'")
        if self.role != "tool" and self.tool_call_id is not None:
            raise QueryError(f"{where}: only tool messages take 'tool_call_id'")
        if self.tool_calls and self.role != "assistant":
            raise QueryError(f"{where}: only assistant messages take 'tool_calls'")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise QueryError(f"{where}: content may only be null on an assistant tool call")
        if self.images() and self.role != "user":
            raise QueryError(f"{where}: images are only accepted in user messages")
        for part in self.parts():
            if not isinstance(part, TextPart | ImagePart):
                raise QueryError(f"{where}: content parts must be text or image parts")
