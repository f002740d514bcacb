"""The response cache meets the whole Chat Completions request: every answer-changing
field is in the scope, and tool calls are replayed (plain and streamed) only for the very
same question, never for a semantic neighbour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.test_api_cache import CODE_Q, SEMANTIC, make_settings

from intent_router.api.app import create_app
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream
from intent_router.testing.server import serve_in_thread

TOOL: Any = {"type": "function", "function": {"name": "run_code", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}}}}  # fmt: skip
OTHER_TOOL: Any = {"type": "function", "function": {"name": "search_docs"}}
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def sdk(fake: FakeUpstream, encoder: Encoder, tmp_path: Path) -> Iterator[openai.OpenAI]:
    fake.reset()
    with serve_in_thread(create_app(make_settings(tmp_path, fake), encoder=encoder)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ask(sdk: openai.OpenAI, content: Any = CODE_Q, **fields: Any) -> tuple[str, Any]:
    """(x-intent-router-cache, completion) for one question."""
    fields.setdefault("model", "auto")
    raw = sdk.chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": content}], **fields
    )
    return raw.headers["x-intent-router-cache"], raw.parse()


def calls_of(completion: Any) -> list[tuple[str, str, str]]:
    return [(c.id, c.function.name, c.function.arguments)
            for c in completion.choices[0].message.tool_calls or []]  # fmt: skip


def test_a_tool_call_answer_replays_as_the_same_tool_calls_plain_and_streamed(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    kind, first = ask(sdk, tools=[TOOL])
    assert kind == "miss" and first.choices[0].finish_reason == "tool_calls"
    kind, again = ask(sdk, tools=[TOOL])
    assert kind == "exact"
    assert calls_of(again) == calls_of(first) and again.choices[0].message.content is None
    assert again.choices[0].finish_reason == "tool_calls"
    with sdk.chat.completions.stream(
        model="auto", messages=[{"role": "user", "content": CODE_Q}], tools=[TOOL]
    ) as stream:
        replayed = stream.get_final_completion()
    assert calls_of(replayed) == calls_of(first)
    assert replayed.choices[0].finish_reason == "tool_calls"
    assert fake.calls() == 1


def test_a_semantic_neighbour_never_gets_cached_tool_calls(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    # control: without tools, the reworded question is a semantic hit
    assert ask(sdk)[0] == "miss" and ask(sdk, SEMANTIC)[0] == "semantic"
    # with tools, the same rewording is a miss: its arguments come from the question
    assert ask(sdk, tools=[TOOL])[0] == "miss"
    kind, neighbour = ask(sdk, SEMANTIC, tools=[TOOL])
    assert kind == "miss"
    assert json.loads(calls_of(neighbour)[0][2]) == {"query": SEMANTIC}
    assert fake.calls() == 3


@pytest.mark.parametrize(
    "change",
    [
        {"tools": [TOOL, OTHER_TOOL]},
        {"tools": [TOOL], "tool_choice": "none"},
        {"tools": [TOOL], "parallel_tool_calls": False},
        {"n": 2},
        {"seed": 1},
        {"top_p": 0.5},
        {"presence_penalty": 0.3},
        {"frequency_penalty": 0.3},
        {"logit_bias": {"42": 3}},
        {"logprobs": True},
        {"response_format": {"type": "json_object"}},
        {"reasoning_effort": "high"},
        {"extra_body": {"top_k": 7}},
        {"content": [{"type": "text", "text": CODE_Q},
                     {"type": "image_url", "image_url": {"url": PNG}}]},
    ],
)  # fmt: skip
def test_every_answer_changing_field_is_in_the_cache_scope(
    sdk: openai.OpenAI, fake: FakeUpstream, change: dict[str, Any]
) -> None:
    base: dict[str, Any] = {"model": "cheap-general", "tools": [TOOL], "tool_choice": "auto"}
    assert ask(sdk, **base)[0] == "miss"
    assert ask(sdk, **base)[0] == "exact"
    assert ask(sdk, **{**base, **change})[0] == "miss"
    assert fake.calls("gpt-up") == 2


def test_user_and_metadata_do_not_split_the_cache(sdk: openai.OpenAI) -> None:
    assert ask(sdk, model="cheap-general", user="a", metadata={"k": "1"})[0] == "miss"
    assert ask(sdk, model="cheap-general", user="b", metadata={"k": "2"})[0] == "exact"
