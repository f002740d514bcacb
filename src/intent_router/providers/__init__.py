"""Provider adapters: canonical chat types ⇄ OpenAI, Anthropic and Gemini wire formats."""

from __future__ import annotations

import httpx

from intent_router.providers.anthropic import AnthropicAdapter
from intent_router.providers.assemble import Assembler, replay
from intent_router.providers.base import (
    AdapterEvent,
    Attempt,
    ChatRequest,
    ChatResponse,
    Choice,
    Completion,
    ContentPart,
    DispatchEvent,
    Endpoint,
    ImagePart,
    Message,
    Outcome,
    ProviderAdapter,
    ResponseFormat,
    StreamDone,
    StreamEnd,
    StreamError,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from intent_router.providers.gemini import GeminiAdapter
from intent_router.providers.openai import OpenAIAdapter


def make_adapters(client: httpx.AsyncClient) -> dict[str, ProviderAdapter]:
    """One adapter per provider name, all sharing the injected client."""
    return {
        "openai": OpenAIAdapter(client),
        "anthropic": AnthropicAdapter(client),
        "gemini": GeminiAdapter(client),
    }


__all__ = [
    "AdapterEvent",
    "AnthropicAdapter",
    "Assembler",
    "Attempt",
    "ChatRequest",
    "ChatResponse",
    "Choice",
    "Completion",
    "ContentPart",
    "DispatchEvent",
    "Endpoint",
    "GeminiAdapter",
    "ImagePart",
    "Message",
    "OpenAIAdapter",
    "Outcome",
    "ProviderAdapter",
    "ResponseFormat",
    "StreamDone",
    "StreamEnd",
    "StreamError",
    "TextDelta",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "make_adapters",
    "replay",
]
