"""Tool calls, choices and usage details at the adapter seam (httpx.MockTransport), and our
OpenAI rendering of them (validated by the SDK's own types)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from tests.test_providers import adapter, collect, decode, endpoint, events_of, response, sse_body

from intent_router.errors import QueryError, UnsupportedFieldError
from intent_router.gateway import routing_text
from intent_router.openai_compat import completion_body, sse_lines
from intent_router.providers import (
    ChatRequest,
    Choice,
    Message,
    StreamDone,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    replay,
)

ASK = ChatRequest([Message("user", "weather?")])


async def test_openai_stream_keeps_choices_and_tool_call_fragments_apart() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> Any:
            return {"model": "m", "choices": [{"index": index, "delta": delta,
                                               "finish_reason": finish}]}  # fmt: skip

        call = {"index": 0, "id": "c1", "type": "function",
                "function": {"name": "f", "arguments": ""}}  # fmt: skip
        body = sse_body(
            chunk(0, {"role": "assistant", "content": None, "tool_calls": [call]}),
            chunk(1, {"content": "hel"}),
            chunk(0, {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chunk(1, {"content": "lo"}, "stop"),
            chunk(0, {"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
            chunk(0, {}, "tool_calls"),
            {"model": "m", "choices": [], "usage": {
                "prompt_tokens": 3, "completion_tokens": 4,
                "completion_tokens_details": {"reasoning_tokens": 2}}},
            "[DONE]",
        )  # fmt: skip
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    events = await collect(adapter("openai", handler).stream(endpoint(), ASK))
    assert events[:-1] == [
        ToolCallDelta(0, "c1", "f", "", 0), TextDelta("hel", 1),
        ToolCallDelta(0, None, None, '{"a":', 0), TextDelta("lo", 1),
        ToolCallDelta(0, None, None, " 1}", 0),
    ]  # fmt: skip
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.choices == (
        Choice(0, "", (ToolCall("c1", "f", '{"a": 1}'),), "tool_calls"),
        Choice(1, "hello", (), "stop"),
    )
    assert end.usage_details == {"completion_tokens_details": {"reasoning_tokens": 2}}


async def test_anthropic_stream_turns_tool_use_blocks_into_tool_call_deltas() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        def delta(index: int, **d: Any) -> Any:
            return {"type": "content_block_delta", "index": index, "delta": d}

        body = sse_body(
            {"type": "message_start", "message": {"model": "claude-x", "usage": {
                "input_tokens": 5, "cache_read_input_tokens": 10}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
            delta(0, type="text_delta", text="Let me check."),
            {"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}},
            delta(1, type="input_json_delta", partial_json='{"city"'),
            delta(1, type="input_json_delta", partial_json=': "Paris"}'),
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
             "usage": {"output_tokens": 9}},
            {"type": "message_stop"},
            named=True,
        )  # fmt: skip
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    events = await collect(adapter("anthropic", handler).stream(endpoint(), ASK))
    assert events[:-1] == [
        TextDelta("Let me check."), ToolCallDelta(0, "toolu_1", "weather"),
        ToolCallDelta(0, arguments='{"city"'), ToolCallDelta(0, arguments=': "Paris"}'),
    ]  # fmt: skip
    end = events[-1]
    assert end.choices[0].tool_calls == (ToolCall("toolu_1", "weather", '{"city": "Paris"}'),)
    assert (end.finish_reason, end.input_tokens, end.output_tokens) == ("tool_calls", 15, 9)
    assert end.usage_details == {"prompt_tokens_details": {"cached_tokens": 10}}


async def test_gemini_function_calls_thoughts_and_usage_details() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "candidates": [{"index": 0, "finishReason": "STOP", "content": {"parts": [
                {"text": "thinking...", "thought": True},
                {"functionCall": {"id": "g1", "name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "time", "args": {}}}]}}],
            "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3,
                              "thoughtsTokenCount": 5, "cachedContentTokenCount": 4},
        })  # fmt: skip

    result = await adapter("gemini", handler).complete(endpoint(), ASK)
    choice = result.choices[0]
    assert (choice.text, choice.finish_reason) == ("", "tool_calls")
    assert choice.tool_calls[0] == ToolCall("g1", "weather", '{"city": "Paris"}')
    assert choice.tool_calls[1].name == "time" and choice.tool_calls[1].id.startswith("call_")
    assert (result.input_tokens, result.output_tokens) == (7, 8)
    assert result.usage_details == {
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


def test_a_tool_call_with_arguments_that_are_not_json_is_refused_before_translation() -> None:
    request = ChatRequest([
        Message("user", "x"),
        Message("assistant", None, tool_calls=[ToolCall("c1", "f", "{not json")]),
        Message("tool", "r", tool_call_id="c1"),
    ])  # fmt: skip
    for provider in ("anthropic", "gemini"):
        with pytest.raises(QueryError, match="tool call 'c1': arguments are not valid JSON"):
            adapter(provider, lambda r: httpx.Response(500)).payload(
                endpoint(), request, **({"stream": False} if provider == "anthropic" else {})
            )


def test_anthropic_refuses_json_output_together_with_tools() -> None:
    from intent_router.providers import ResponseFormat, Tool

    request = ChatRequest(
        [Message("user", "x")], tools=[Tool("f")], response_format=ResponseFormat("json_object")
    )
    with pytest.raises(UnsupportedFieldError, match=r"'response_format'.*'our-model'") as caught:
        adapter("anthropic", lambda r: httpx.Response(500)).payload(
            endpoint(), request, stream=False
        )
    assert (caught.value.field, caught.value.model) == ("response_format", "our-model")


def test_routing_text_joins_text_parts_and_skips_tool_turns() -> None:
    from intent_router.providers import ImagePart, TextPart

    request = ChatRequest([
        Message("user", [TextPart("fix"), ImagePart("https://x.test/a.png"), TextPart("this")]),
        Message("assistant", None, tool_calls=[ToolCall("c1", "run", "{}")]),
        Message("tool", "Traceback ...", tool_call_id="c1"),
    ])  # fmt: skip
    assert routing_text(request) == "fix this"
    with pytest.raises(QueryError, match="no user message with text"):
        routing_text(ChatRequest([Message("user", [ImagePart("https://x.test/a.png")])]))


def with_calls() -> Any:
    calls = (ToolCall("c1", "f", '{"a": 1}'), ToolCall("c2", "g", "{}"))
    return response(
        text="", finish_reason="tool_calls",
        choices=(Choice(0, "", calls, "tool_calls"),
                 Choice(1, "hi", (), "stop", {"content": [{"token": "hi", "logprob": -0.1,
                                                           "bytes": None, "top_logprobs": []}]})),
        usage_details={"completion_tokens_details": {"reasoning_tokens": 3}},
    )  # fmt: skip


def test_completion_body_renders_tool_calls_choices_logprobs_and_usage_details() -> None:
    body = completion_body(with_calls())
    parsed = ChatCompletion.model_validate(body)
    first, second = parsed.choices
    assert first.message.content is None and first.finish_reason == "tool_calls"
    assert [(c.id, c.function.name) for c in first.message.tool_calls or []] == [  # type: ignore[union-attr]
        ("c1", "f"), ("c2", "g")]  # fmt: skip
    assert second.message.content == "hi" and second.logprobs is not None
    assert parsed.usage is not None and parsed.usage.completion_tokens_details is not None
    assert parsed.usage.completion_tokens_details.reasoning_tokens == 3
    assert "choices" not in body["x_router"]


async def test_a_replayed_answer_streams_as_the_same_chunks_an_upstream_would_send() -> None:
    lines = [line async for line in sse_lines(replay(with_calls()), model="auto")]
    chunks = [ChatCompletionChunk.model_validate(c) for c in decode(lines)[:-1]]
    deltas = [(c.choices[0].index, c.choices[0].delta) for c in chunks]
    calls = [(i, tc.index, tc.id, tc.function and tc.function.name)
             for i, d in deltas for tc in d.tool_calls or []]  # fmt: skip
    assert calls == [(0, 0, "c1", "f"), (0, 1, "c2", "g")]
    assert [d.content for i, d in deltas if i == 1 and d.content] == ["hi"]
    finishes = {c.choices[0].index: c.choices[0].finish_reason for c in chunks}
    assert finishes == {0: "tool_calls", 1: "stop"}


async def test_sse_lines_open_each_choice_once_with_its_role() -> None:
    events = events_of(TextDelta("a", 1), ToolCallDelta(0, "c", "f", "{}"),
                       TextDelta("b", 1), StreamDone(with_calls()))  # fmt: skip
    out = decode([line async for line in sse_lines(events, model="auto")])
    roles = [(c["choices"][0]["index"], c["choices"][0]["delta"]) for c in out[:-1]
             if "role" in c["choices"][0]["delta"]]  # fmt: skip
    assert roles == [(1, {"role": "assistant", "content": ""}),
                     (0, {"role": "assistant", "content": None})]  # fmt: skip
    assert json.dumps(out)  # all JSON


async def test_a_streamed_openai_refusal_stays_a_refusal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse_body(
            {"model": "m", "choices": [{"index": 0, "delta": {"refusal": "I can't "}}]},
            {"model": "m", "choices": [{"index": 0, "delta": {"refusal": "help."},
                                        "finish_reason": "stop"}]},
            "[DONE]",
        )  # fmt: skip
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    events = await collect(adapter("openai", handler).stream(endpoint(), ASK))
    end = events[-1]
    assert (end.choices[0].text, end.choices[0].refusal) == ("", "I can't help.")
    done = response(text="", choices=end.choices)
    lines = [line async for line in sse_lines(replay(done), model="auto")]
    deltas = [c["choices"][0]["delta"] for c in decode(lines)[:-1]]
    assert {"refusal": "I can't help."} in deltas
    assert completion_body(done)["choices"][0]["message"]["refusal"] == "I can't help."
