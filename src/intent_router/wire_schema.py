"""JSON Schema fragments for rules the published OpenAPI schema must state.

The request models validate these rules in code (or the gateway does); these fragments
make ``/openapi.json`` say the same, so a schema-driven client or fuzzer never builds a
request that looks valid and is refused.
"""

from __future__ import annotations

from pydantic.config import JsonDict

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
