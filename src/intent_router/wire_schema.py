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

_TEXT_PART: JsonDict = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string", **NON_BLANK}},
}

HAS_USER_TEXT: JsonDict = {
    "contains": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"const": "user"},
            "content": {
                "anyOf": [
                    {"type": "string", **NON_BLANK},
                    {"type": "array", "contains": _TEXT_PART},
                ]
            },
        },
    }
}
"""A conversation needs one user message with text: the router routes on it (text as a
string, or a text part/block among the content parts)."""


# -- OpenAI chat messages, as ``openai_compat`` parses them --------------------------------

_STRING: JsonDict = {"type": "string"}
_TEXT: JsonDict = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": _STRING},
}
_IMAGE_URL = (
    r"^(https?://\S*|data:image/[A-Za-z0-9.+-]+;base64,"
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$"
)
_IMAGE: JsonDict = {
    "type": "object",
    "required": ["type", "image_url"],
    "properties": {
        "type": {"const": "image_url"},
        "image_url": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "pattern": _IMAGE_URL},
                "detail": {"enum": ["auto", "low", "high"]},
            },
        },
    },
}
_TEXT_CONTENT: JsonDict = {"anyOf": [_STRING, {"type": "array", "items": _TEXT}]}
_USER_CONTENT: JsonDict = {
    "anyOf": [_STRING, {"type": "array", "items": {"anyOf": [_TEXT, _IMAGE]}}]
}
_TOOL_CALL: JsonDict = {
    "type": "object",
    "required": ["id", "function"],
    "properties": {
        "id": _STRING,
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": _STRING, "arguments": _STRING},
        },
    },
}


def _turn(roles: list[JsonValue], content: JsonDict, **more: JsonDict) -> JsonDict:
    properties: JsonDict = {"role": {"enum": roles}, "content": content, "name": _STRING, **more}
    return {
        "type": "object",
        "required": ["role"],
        "properties": properties,
        "additionalProperties": False,
    }


_TOOL_CALLS: JsonDict = {"type": "array", "items": _TOOL_CALL}
# What the SDK echoes back on an assistant message it received: accepted when empty.
_ECHOED: dict[str, JsonDict] = {
    k: {"type": "null"} for k in ("refusal", "annotations", "audio", "function_call")
}
OPENAI_MESSAGE: JsonDict = {
    "anyOf": [
        _turn(["system", "developer"], _TEXT_CONTENT),
        _turn(["user"], _USER_CONTENT),
        _turn(["assistant"], _TEXT_CONTENT, tool_calls=_TOOL_CALLS, **_ECHOED),
        {
            **_turn(["assistant"], {"type": "null"}, tool_calls={**_TOOL_CALLS, "minItems": 1}),
            "required": ["role", "content", "tool_calls"],
        },
        {
            **_turn(["tool"], _TEXT_CONTENT, tool_call_id={"type": "string", "minLength": 1}),
            "required": ["role", "tool_call_id"],
        },
    ]
}
"""One Chat Completions message: per role, the content and fields the router accepts.
Rules across messages (a tool message answers an earlier call) are not stated here."""


# -- the rest of the Chat Completions body -------------------------------------------------

OPENAI_TOOL: JsonDict = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _STRING,
                "description": _STRING,
                "parameters": {"type": "object"},
                "strict": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
    },
}
OPENAI_TOOL_CHOICE: JsonDict = {
    "anyOf": [
        {"enum": ["auto", "none", "required"]},
        {
            "type": "object",
            "required": ["type", "function"],
            "properties": {
                "type": {"const": "function"},
                "function": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _STRING},
                },
            },
        },
    ]
}
OPENAI_RESPONSE_FORMAT: JsonDict = {
    "anyOf": [
        {"type": "object", "required": ["type"],
         "properties": {"type": {"enum": ["text", "json_object"]}}},
        {"type": "object", "required": ["type", "json_schema"], "properties": {
            "type": {"const": "json_schema"},
            "json_schema": {"type": "object", "required": ["name"], "properties": {
                "name": _STRING, "description": _STRING, "schema": {"type": "object"},
                "strict": {"type": "boolean"},
            }},
        }},
    ]
}  # fmt: skip
OPENAI_STOP: JsonDict = {"anyOf": [_STRING, {"type": "array", "items": _STRING, "maxItems": 4}]}
TOP_LOGPROBS_NEEDS_LOGPROBS: JsonDict = {
    "dependentSchemas": {
        "top_logprobs": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}}
    }
}

CROSS_FIELD_RULES = (
    "Rules across fields, not expressible in this schema: a `tool` message (a "
    "`tool_result` block) answers a tool call of an earlier assistant turn; a named "
    "`tool_choice` names one of `tools`; the prompt must fit the context window of a model "
    "of the chain (else 400 `context_length_exceeded`)."
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
