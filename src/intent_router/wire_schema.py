"""JSON Schema fragments for rules the published OpenAPI schema must state.

The request models validate these rules in code (or the gateway does); these fragments
make ``/openapi.json`` say the same, so a schema-driven client or fuzzer never builds a
request that looks valid and is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic.config import JsonDict, JsonValue

NON_BLANK: JsonDict = {"pattern": r"\S"}
"""A string with at least one non-whitespace character."""
BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
"""Standard base64 with padding (no line breaks)."""

_STRING: JsonDict = {"type": "string"}


def _object(required: list[JsonValue], closed: bool = False, **properties: JsonValue) -> JsonDict:
    """An object schema: its ``required`` keys, its properties; ``closed``: no others."""
    schema: JsonDict = {"type": "object", "required": required, "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _text_part(text: JsonDict) -> JsonDict:
    return _object(["type", "text"], type={"const": "text"}, text=text)


HAS_USER_TEXT: JsonDict = {
    "contains": _object(
        ["role", "content"],
        role={"const": "user"},
        content={
            "anyOf": [
                {"type": "string", **NON_BLANK},
                {"type": "array", "contains": _text_part({"type": "string", **NON_BLANK})},
            ]
        },
    )
}
"""A conversation needs one user message with text: the router routes on it (text as a
string, or a text part/block among the content parts)."""


# -- OpenAI chat messages, as ``openai_compat`` parses them --------------------------------

_TEXT = _text_part(_STRING)
_IMAGE_URL = rf"^(https?://\S*|data:image/[A-Za-z0-9.+-]+;base64,{BASE64})$"
_IMAGE = _object(
    ["type", "image_url"],
    type={"const": "image_url"},
    image_url=_object(
        ["url"],
        url={"type": "string", "pattern": _IMAGE_URL},
        detail={"enum": ["auto", "low", "high"]},
    ),
)
_TEXT_CONTENT: JsonDict = {"anyOf": [_STRING, {"type": "array", "items": _TEXT}]}
_USER_CONTENT: JsonDict = {
    "anyOf": [_STRING, {"type": "array", "items": {"anyOf": [_TEXT, _IMAGE]}}]
}
_FUNCTION_CALL = _object(["name", "arguments"], name=_STRING, arguments=_STRING)
_TOOL_CALLS: JsonDict = {
    "type": "array",
    "items": _object(
        ["id", "function"], id=_STRING, type={"const": "function"}, function=_FUNCTION_CALL
    ),
}
# What the SDK echoes back on an assistant message it received: accepted when empty.
_ECHOED: dict[str, JsonValue] = {
    k: {"type": "null"} for k in ("refusal", "annotations", "audio", "function_call")
}


def _turn(roles: list[JsonValue], content: JsonDict, *more: str, **fields: JsonValue) -> JsonDict:
    """One role's message: ``role``, ``content``, ``name`` and ``fields``; ``more`` required."""
    properties: dict[str, JsonValue] = {"role": {"enum": roles}, "content": content}
    properties |= {"name": _STRING, **fields}
    return _object(["role", *more], closed=True, **properties)


OPENAI_MESSAGE: JsonDict = {
    "anyOf": [
        _turn(["system", "developer"], _TEXT_CONTENT),
        _turn(["user"], _USER_CONTENT),
        _turn(["assistant"], _TEXT_CONTENT, tool_calls=_TOOL_CALLS, **_ECHOED),
        _turn(["assistant"], {"type": "null"}, "content", "tool_calls",
              tool_calls={**_TOOL_CALLS, "minItems": 1}),
        _turn(["tool"], _TEXT_CONTENT, "tool_call_id",
              tool_call_id={"type": "string", "minLength": 1}),
    ]
}  # fmt: skip
"""One Chat Completions message: per role, the content and fields the router accepts.
Rules across messages (a tool message answers an earlier call) are not stated here."""


# -- the rest of the Chat Completions body -------------------------------------------------

OPENAI_TOOL = _object(
    ["type", "function"],
    type={"const": "function"},
    function=_object(
        ["name"],
        closed=True,
        name=_STRING,
        description=_STRING,
        parameters={"type": "object"},
        strict={"type": "boolean"},
    ),
)
OPENAI_TOOL_CHOICE: JsonDict = {
    "anyOf": [
        {"enum": ["auto", "none", "required"]},
        _object(
            ["type", "function"],
            type={"const": "function"},
            function=_object(["name"], name=_STRING),
        ),
    ]
}
OPENAI_RESPONSE_FORMAT: JsonDict = {
    "anyOf": [
        _object(["type"], type={"enum": ["text", "json_object"]}),
        _object(
            ["type", "json_schema"],
            type={"const": "json_schema"},
            json_schema=_object(
                ["name"],
                name=_STRING,
                description=_STRING,
                schema={"type": "object"},
                strict={"type": "boolean"},
            ),
        ),
    ]
}
OPENAI_STOP: JsonDict = {"anyOf": [_STRING, {"type": "array", "items": _STRING, "maxItems": 4}]}
TOP_LOGPROBS_NEEDS_LOGPROBS: JsonDict = {
    "dependentSchemas": {"top_logprobs": _object(["logprobs"], logprobs={"const": True})}
}

CROSS_FIELD_RULES = (
    "Rules across fields, not expressible in this schema: a `tool` message (a "
    "`tool_result` block) answers a tool call of an earlier assistant turn; a "
    "`tool_choice` other than auto/none needs `tools`, and a named one names one of them; "
    "the prompt must fit the context window of a model of the chain (else 400 "
    "`context_length_exceeded`)."
)


def not_null(*fields: str) -> Callable[[JsonDict], None]:
    """A ``json_schema_extra`` hook publishing optional fields as present-or-absent only:
    an explicit ``null`` is not part of the contract."""

    def edit(schema: JsonDict) -> None:
        properties = schema.get("properties")
        assert isinstance(properties, dict)
        for name in fields:
            prop = properties[name]
            assert isinstance(prop, dict)
            variants = prop.pop("anyOf", None)
            if isinstance(variants, list):
                kept = [v for v in variants if v != {"type": "null"}]
                prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})  # type: ignore[arg-type]
            prop.pop("default", None)

    return edit
