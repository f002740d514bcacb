"""Wire formats of the three adapters (httpx.MockTransport) and of our OpenAI endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from intent_router.errors import ChainExhaustedError, QueryError, UpstreamError
from intent_router.openai_compat import (
    completion_body,
    parse_request,
    sse_lines,
    to_canonical,
)
from intent_router.providers import (
    AnthropicAdapter,
    Attempt,
    ChatRequest,
    ChatResponse,
    Choice,
    Endpoint,
    GeminiAdapter,
    ImagePart,
    Message,
    OpenAIAdapter,
    Outcome,
    ResponseFormat,
    StreamDone,
    StreamEnd,
    StreamError,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from intent_router.providers.http import parse_retry_after

Handler = Callable[[httpx.Request], httpx.Response]
REQUEST = ChatRequest(
    messages=[
        Message("system", "be brief"),
        Message("user", "hello"),
        Message("assistant", "hi"),
        Message("user", "what is 2+2?"),
    ],
    max_tokens=50,
    temperature=0.2,
    stop=["END"],
)
ADAPTERS = {"openai": OpenAIAdapter, "anthropic": AnthropicAdapter, "gemini": GeminiAdapter}


def endpoint(key: str | None = "sk-test") -> Endpoint:
    return Endpoint("our-model", "https://up.example/base", "up-model", key, 5.0)


def adapter(provider: str, handler: Handler) -> Any:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ADAPTERS[provider](client)


def sse_body(*events: Any, named: bool = False) -> bytes:
    out = []
    for e in events:
        if isinstance(e, str):
            out.append(f"data: {e}\n\n")
        elif named:
            out.append(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n")
        else:
            out.append(f"data: {json.dumps(e)}\n\n")
    return "".join(out).encode()


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in events]


# -- OpenAI ----------------------------------------------------------------------------


async def test_openai_request_and_response() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(
            200,
            json={
                "model": "up-model-0613",
                "choices": [
                    {"message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 1},
            },
        )

    result = await adapter("openai", handler).complete(endpoint(), REQUEST)
    req = seen[0]
    assert str(req.url) == "https://up.example/base/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test"
    body = json.loads(req.content)
    assert body == {
        "model": "up-model",
        "messages": [{"role": m.role, "content": m.content} for m in REQUEST.messages],
        "max_tokens": 50, "temperature": 0.2, "stop": ["END"],
    }  # fmt: skip
    assert (result.text, result.finish_reason) == ("4", "stop")
    assert (result.input_tokens, result.output_tokens) == (20, 1)
    assert result.upstream_model == "up-model-0613"


async def test_openai_without_key_sends_no_auth_and_tolerates_missing_usage() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert "authorization" not in req.headers
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    result = await adapter("openai", handler).complete(endpoint(key=None), REQUEST)
    assert (result.text, result.finish_reason, result.input_tokens) == ("ok", "stop", None)


async def test_openai_stream_with_usage_chunk() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        chunks = sse_body(
            {"model": "m", "choices": [{"delta": {"role": "assistant", "content": ""}}]},
            {"model": "m", "choices": [{"delta": {"content": "2+2 "}}]},
            {"model": "m", "choices": [{"delta": {"content": "is 4"}, "finish_reason": "length"}]},
            {"model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}},
            "[DONE]",
        )
        return httpx.Response(200, content=chunks, headers={"content-type": "text/event-stream"})

    events = await collect(adapter("openai", handler).stream(endpoint(), REQUEST))
    assert events == [
        TextDelta("2+2 "),
        TextDelta("is 4"),
        StreamEnd((Choice(0, "2+2 is 4", (), "length"),), 9, 3, "m"),
    ]


@pytest.mark.parametrize(
    ("chunks", "match", "retryable"),
    [
        ([{"choices": [{"delta": {"content": "a"}}]}], "without \\[DONE\\]", True),
        (["{oops"], "malformed JSON in stream event", False),
        ([{"error": {"message": "server overloaded"}}], "server overloaded", True),
    ],
)
async def test_openai_stream_failures(chunks: list[Any], match: str, retryable: bool) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse_body(*chunks))

    with pytest.raises(UpstreamError, match=match) as info:
        await collect(adapter("openai", handler).stream(endpoint(), REQUEST))
    assert info.value.retryable is retryable


# -- Anthropic -------------------------------------------------------------------------


async def test_anthropic_request_and_response() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={
            "type": "message", "model": "claude-x-1",
            "content": [{"type": "text", "text": "Four"}, {"type": "text", "text": "."}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 11, "output_tokens": 2},
        })  # fmt: skip

    result = await adapter("anthropic", handler).complete(
        endpoint(), ChatRequest(REQUEST.messages, temperature=0.5, stop=["END"])
    )
    req = seen[0]
    assert str(req.url) == "https://up.example/base/v1/messages"
    assert req.headers["x-api-key"] == "sk-test"
    assert req.headers["anthropic-version"] == "2023-06-01"
    body = json.loads(req.content)
    assert body == {
        "model": "up-model", "max_tokens": 4096, "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]},
                     {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
                     {"role": "user", "content": [{"type": "text", "text": "what is 2+2?"}]}],
        "temperature": 0.5, "stop_sequences": ["END"],
    }  # fmt: skip
    assert (result.text, result.finish_reason) == ("Four.", "length")
    assert (result.input_tokens, result.output_tokens, result.upstream_model) == (
        11,
        2,
        "claude-x-1",
    )


async def test_anthropic_error_body_with_200() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return httpx.Response(200, json={"type": "error", "error": error})

    with pytest.raises(UpstreamError, match="overloaded_error: Overloaded") as info:
        await adapter("anthropic", handler).complete(endpoint(), REQUEST)
    assert info.value.retryable


async def test_anthropic_stream_events() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert json.loads(req.content)["stream"] is True
        events = [
            {
                "type": "message_start",
                "message": {"model": "claude-x-1", "usage": {"input_tokens": 7}},
            },
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {"type": "ping"},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Fo"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "ur"},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            },
            {"type": "message_stop"},
        ]
        return httpx.Response(200, content=sse_body(*events, named=True))

    events = await collect(adapter("anthropic", handler).stream(endpoint(), REQUEST))
    assert events == [
        TextDelta("Fo"),
        TextDelta("ur"),
        StreamEnd((Choice(0, "Four"),), 7, 2, "claude-x-1"),
    ]


async def test_anthropic_stream_error_event() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        events = [
            {"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 7}}},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Fo"}},
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ]
        return httpx.Response(200, content=sse_body(*events, named=True))

    with pytest.raises(UpstreamError, match="overloaded_error") as info:
        await collect(adapter("anthropic", handler).stream(endpoint(), REQUEST))
    assert info.value.retryable


# -- Gemini ----------------------------------------------------------------------------


def gemini_answer(text: str, finish: str | None = "STOP", usage: bool = True) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        cand["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-x-001"}
    if usage:
        out["usageMetadata"] = {"promptTokenCount": 12, "candidatesTokenCount": 3}
    return out


async def test_gemini_request_and_response() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=gemini_answer("4", "MAX_TOKENS"))

    result = await adapter("gemini", handler).complete(endpoint(), REQUEST)
    req = seen[0]
    assert str(req.url) == "https://up.example/base/v1beta/models/up-model:generateContent"
    assert req.headers["x-goog-api-key"] == "sk-test"
    assert json.loads(req.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "hello"}]},
            {"role": "model", "parts": [{"text": "hi"}]},
            {"role": "user", "parts": [{"text": "what is 2+2?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2, "stopSequences": ["END"]},
    }
    assert (result.text, result.finish_reason, result.input_tokens, result.output_tokens) == (
        "4", "length", 12, 3,
    )  # fmt: skip
    assert result.upstream_model == "gemini-x-001"


async def test_gemini_blocked_prompt_is_not_retryable() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"promptFeedback": {"blockReason": "SAFETY"}})

    with pytest.raises(UpstreamError, match="prompt blocked: SAFETY") as info:
        await adapter("gemini", handler).complete(endpoint(), REQUEST)
    assert not info.value.retryable


async def test_gemini_stream() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.url.path.endswith("/up-model:streamGenerateContent")
        assert req.url.params["alt"] == "sse"
        body = sse_body(gemini_answer("Fo", None, False), gemini_answer("ur", "STOP"))
        return httpx.Response(200, content=body)

    events = await collect(adapter("gemini", handler).stream(endpoint(), REQUEST))
    assert events == [
        TextDelta("Fo"),
        TextDelta("ur"),
        StreamEnd((Choice(0, "Four"),), 12, 3, "gemini-x-001"),
    ]


# -- error mapping, all providers ------------------------------------------------------

ERROR_BODY = {"error": {"message": "nope", "type": "x"}}
HTTP_DATE = "<an HTTP-date 30 s from now>"  # made when the test runs, not at collection


def _http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (429, {"retry-after": "7"}, True, 7.0),
        (503, {"retry-after": HTTP_DATE}, True, 30.0),
        (500, {}, True, None),
        (529, {}, True, None),
        (400, {}, False, None),
        (401, {}, False, None),
        (403, {}, False, None),
        (404, {}, False, None),
        (422, {}, False, None),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_status_errors(
    provider: str, status: int, headers: dict[str, str], retryable: bool,
    retry_after: float | None, streaming: bool,
) -> None:  # fmt: skip
    if headers.get("retry-after") == HTTP_DATE:
        headers = {"retry-after": _http_date_in(30)}

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=ERROR_BODY, headers=headers)

    a = adapter(provider, handler)
    with pytest.raises(UpstreamError) as info:
        if streaming:
            await collect(a.stream(endpoint(), REQUEST))
        else:
            await a.complete(endpoint(), REQUEST)
    err = info.value
    assert (err.status, err.retryable, err.model) == (status, retryable, "our-model")
    assert "nope" in str(err)
    if retry_after is None:
        assert err.retry_after is None
    else:
        assert err.retry_after == pytest.approx(retry_after, abs=2)


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
@pytest.mark.parametrize(
    ("exc", "match"),
    [
        (httpx.ConnectError("refused"), "connection failed"),
        (httpx.ReadTimeout("slow"), "timed out"),
        (httpx.ConnectTimeout("slow"), "timed out"),
        (httpx.RemoteProtocolError("gone"), "connection dropped"),
        (httpx.ReadError("reset"), "connection dropped"),
    ],
)
async def test_transport_errors_are_retryable(provider: str, exc: Exception, match: str) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(UpstreamError, match=match) as info:
        await adapter(provider, handler).complete(endpoint(), REQUEST)
    assert info.value.retryable and info.value.status is None


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{not json", "malformed JSON body"),
        (b'{"unexpected": true}', "missing field"),
        (b'{"choices": [{"message": {"content": 5}}], "content": "x", "candidates": [7]}', "field"),
    ],
)
async def test_unusable_200_is_not_retryable(provider: str, content: bytes, match: str) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"content-type": "application/json"})

    with pytest.raises(UpstreamError, match=match) as info:
        await adapter(provider, handler).complete(endpoint(), REQUEST)
    assert not info.value.retryable and info.value.status == 200
    assert "unusable answer" in str(info.value)


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_endpoint_repr_hides_the_key() -> None:
    assert "sk-test" not in repr(endpoint())


# -- our OpenAI-compatible endpoint ----------------------------------------------------


def test_parse_request_keeps_every_field_and_joins_text_parts_with_spaces() -> None:
    body = parse_request({
        "model": "auto", "user": "u1", "seed": 3, "n": 2, "logit_bias": {"50256": -100},
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "name": "bob", "content": [
                {"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]},
        ],
        "max_completion_tokens": 30, "max_tokens": 99, "stop": "END", "stream": True,
        "stream_options": {"include_usage": True}, "top_k": 40, "repetition_penalty": 1.1,
        "top_p": 0.5, "presence_penalty": 0.1, "frequency_penalty": 0.2, "logprobs": True,
        "top_logprobs": 2, "metadata": {"a": "b"}, "reasoning_effort": "low",
        "parallel_tool_calls": False,
    })  # fmt: skip
    assert body.include_usage
    req = to_canonical(body)
    assert req.messages == (
        Message("developer", "be brief"),
        Message("user", (TextPart("hello"), TextPart("there")), name="bob"),
    )
    assert req.messages[1].text() == "hello there"
    assert (req.max_tokens, req.max_tokens_field, req.stop, req.stream) == (
        30, "max_completion_tokens", ("END",), True)  # fmt: skip
    assert (req.n, req.seed, req.top_p, req.user, req.reasoning_effort) == (2, 3, 0.5, "u1", "low")
    assert (req.presence_penalty, req.frequency_penalty) == (0.1, 0.2)
    assert (req.logprobs, req.top_logprobs, req.logit_bias) == (True, 2, {"50256": -100})
    assert (req.metadata, req.parallel_tool_calls) == ({"a": "b"}, False)
    assert req.extra == {"top_k": 40, "repetition_penalty": 1.1}


def test_parse_request_reads_tools_tool_turns_images_and_json_mode() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    req = to_canonical(parse_request({
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "weather here?"},
                {"type": "image_url", "image_url": {"url": png, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]},
            {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "weather", "description": "d", "parameters": {"type": "object"},
            "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "w", "schema": {"type": "object"}, "strict": True}},
    }))  # fmt: skip
    user, assistant, tool = req.messages
    assert user.images() == (ImagePart(png, "low"), ImagePart("https://x.test/a.jpg"))
    assert assistant.content is None
    assert assistant.tool_calls == (ToolCall("call_1", "weather", '{"city": "Paris"}'),)
    assert (tool.role, tool.tool_call_id, tool.text()) == ("tool", "call_1", "sunny")
    assert req.tools == (Tool("weather", "d", {"type": "object"}, True),)
    assert req.tool_choice == ToolChoice("function", "weather")
    assert req.response_format == ResponseFormat("json_schema", "w", {"type": "object"}, None, True)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, r"messages\[0\]\.role: 'robot'"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
         r"messages\[0\]\.content\[0\]\.type: content part 'input_audio' is not supported"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]},
         r"messages\[0\]\.content\[0\]\.image_url\.url: must be an http"),
        ({"messages": [{"role": "assistant", "content": None}]},
         r"messages\[0\]: content may only be null"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "c9"}]},
         r"messages\[0\]\.tool_call_id: 'c9' answers no earlier assistant tool call"),
        ({"messages": [{"role": "user", "content": "x", "audio": {"id": "a"}}]},
         r"messages\[0\]\.audio: this message field is not supported"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "custom"}]},
         r"tools\[0\]\.type: only 'function' tools"),
        ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"},
         "tool_choice: must be"),
        ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"},
         "tool_choice: 'required' needs tools"),
        ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
         "response_format.type"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "n: Input should be greater"),
        ({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3},
         "top_logprobs: requires logprobs"),
    ],
)  # fmt: skip
def test_parse_request_names_the_bad_field(body: dict[str, Any], match: str) -> None:
    with pytest.raises(QueryError, match=match):
        to_canonical(parse_request({"model": "auto", **body}))


def test_parse_request_rejects_empty_messages() -> None:
    with pytest.raises(QueryError, match="messages"):
        parse_request({"model": "auto", "messages": []})


def response(**kw: Any) -> ChatResponse:
    fields: dict[str, Any] = dict(
        text="4", finish_reason="stop", input_tokens=10, output_tokens=1, model="cheap",
        upstream_model="gpt-x", provider="openai", route="math", cost_usd=0.00001,
        latency_ms=12.5,
        attempts=(Attempt("cheap", "openai", Outcome.OK, 200, "", 12.0),),
    )  # fmt: skip
    fields.update(kw)
    return ChatResponse(**fields)


def test_completion_body_is_a_valid_openai_chat_completion() -> None:
    body = completion_body(response(), completion_id="chatcmpl-1", created=5)
    parsed = ChatCompletion.model_validate(body)
    assert parsed.choices[0].message.content == "4"
    assert parsed.usage is not None and parsed.usage.total_tokens == 11
    assert body["x_router"]["route"] == "math"
    assert body["x_router"]["attempts"][0]["outcome"] == "ok"
    json.dumps(body)


async def events_of(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def decode(lines: list[str]) -> list[Any]:
    assert all(line.startswith("data: ") and line.endswith("\n\n") for line in lines)
    return [line[6:-2] if line[6:-2] == "[DONE]" else json.loads(line[6:-2]) for line in lines]


async def test_sse_lines_are_openai_chunks() -> None:
    lines = [
        line
        async for line in sse_lines(
            events_of(TextDelta("2+2 "), TextDelta("is 4"), StreamDone(response())),
            model="auto", include_usage=True,
        )
    ]  # fmt: skip
    out = decode(lines)
    assert out[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(c) for c in out[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "2+2 is 4"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 10
    assert len({c.id for c in chunks}) == 1


async def test_sse_lines_turn_a_late_failure_into_an_error_event() -> None:
    error = StreamError("model 'cheap': connection dropped", "cheap", None, ())
    lines = [line async for line in sse_lines(events_of(TextDelta("2+"), error), model="auto")]
    out = decode(lines)
    assert out[-1] == {
        "error": {
            "message": "model 'cheap': connection dropped",
            "type": "upstream_error",
            "code": 502,
            "model": "cheap",
        }
    }
    assert "[DONE]" not in out


def test_chat_request_validates() -> None:
    with pytest.raises(QueryError, match="at least one message"):
        ChatRequest(messages=[])
    with pytest.raises(QueryError, match="role 'robot'"):
        ChatRequest(messages=[Message("robot", "x")])  # type: ignore[arg-type]
    with pytest.raises(QueryError, match=r"messages\[0\]: a tool message needs 'tool_call_id'"):
        ChatRequest(messages=[Message("tool", "x")])
    with pytest.raises(QueryError, match=r"messages\[1\]: content may only be null"):
        ChatRequest(messages=[Message("user", "x"), Message("assistant", None)])
    with pytest.raises(QueryError, match="tool_choice names 'nope'"):
        ChatRequest([Message("user", "x")], tool_choice=ToolChoice("function", "nope"))
    req = ChatRequest([Message("user", "x" * 40)], max_tokens=5)
    assert req.estimated_input_tokens() == 14
    assert req.to_dict()["messages"][0]["content"] == "x" * 40


def test_message_text_joins_text_parts_and_images_cost_a_flat_estimate() -> None:
    png = "data:image/png;base64," + "A" * 40_000
    msg = Message("user", [TextPart("what is"), ImagePart(png, "low"), TextPart("this?")])
    assert msg.text() == "what is this?"
    assert msg.images() == (ImagePart(png, "low"),)
    # the base64 bytes do not count as text: a flat 85 tokens for a low-detail image
    assert ChatRequest([msg]).estimated_input_tokens() == len("what isthis?") // 4 + 4 + 85
    with pytest.raises(QueryError, match="data URL"):
        ImagePart("data:text/plain;base64,AAAA")
    with pytest.raises(QueryError, match="http"):
        ImagePart("ftp://x/y.png")


async def test_sse_lines_send_nothing_when_no_model_starts() -> None:
    async def exhausted() -> AsyncIterator[Any]:
        raise ChainExhaustedError("no model answered", attempts=[], status=502)
        yield  # pragma: no cover

    lines = sse_lines(exhausted(), model="auto")
    with pytest.raises(ChainExhaustedError):
        await anext(lines)


async def test_sse_lines_report_a_stream_that_just_stops() -> None:
    lines = [line async for line in sse_lines(events_of(TextDelta("a")), model="auto")]
    assert decode(lines)[-1]["error"]["message"] == "stream ended unexpectedly"
