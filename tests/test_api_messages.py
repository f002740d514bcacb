"""The Anthropic ingress end to end: the official anthropic SDK → our /v1/messages → the
fake upstream (real servers on loopback), and the pure translation in anthropic_compat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from tests.router_server import model, running_router

from intent_router import anthropic_compat, anthropic_render
from intent_router.embedding.encoder import Encoder
from intent_router.providers import ImagePart, TextPart, ToolCall, ToolChoice
from intent_router.testing import FakeUpstream, Fault

CODE_Q = "write a python function that parses a date"
HI = "hi there, how are you today"
PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = {
    "name": "get_weather",
    "description": "current weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def server(
    fake: FakeUpstream, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    models = {
        "cheap-general": model(fake, "openai", "gpt-up"),
        "fast-small": model(fake, "openai", "small-up"),
        "strong-coder": model(fake, "anthropic", "claude-up"),
        "strong-reasoner": model(fake, "gemini", "gemini-up"),
    }
    folder = tmp_path_factory.mktemp("messages")
    with running_router(encoder, folder, models, default_chain=["cheap-general"]) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
def sdk(server: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server, api_key="unused", max_retries=0) as client:
        yield client


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- plain answers ------------------------------------------------------------------------


def test_auto_routes_and_answers_as_an_anthropic_message(
    sdk: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    raw = sdk.messages.with_raw_response.create(
        model="auto", max_tokens=100, messages=[user(CODE_Q)]
    )
    message = raw.parse()
    assert raw.headers["x-intent-router-route"] == "code"
    assert raw.headers["x-intent-router-model"] == "strong-coder"
    assert message.model == "strong-coder" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == f"[claude-up] {CODE_Q}"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert fake.calls("claude-up") == 1


def test_system_and_multi_turn_reach_an_openai_upstream(
    sdk: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    message = sdk.messages.create(
        model="fast-small",
        max_tokens=50,
        system=[{"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"}],
        messages=[user("hello"), {"role": "assistant", "content": "hi!"}, user(HI)],
        stop_sequences=["END"],
        metadata={"user_id": "u-42"},
        extra_body={"temperature": 0.3},  # older API field, no longer an SDK argument
    )
    assert message.content[0].text == f"[small-up] {HI}"  # type: ignore[union-attr]
    sent = fake.requests("small-up")[-1].body
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["stop"] == ["END"] and sent["temperature"] == 0.3
    assert sent["max_tokens"] == 50 and sent["user"] == "u-42"
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"},
    ]  # fmt: skip


def test_x_api_key_and_authorization_are_both_accepted(server: str) -> None:
    body = {"model": "auto", "max_tokens": 20, "messages": [user(HI)]}
    for headers in ({"x-api-key": "k"}, {"authorization": "Bearer k"}, {}):
        response = httpx.post(f"{server}/v1/messages", json=body, headers=headers)
        assert response.status_code == 200, response.text


def test_streaming_uses_anthropic_events(sdk: anthropic.Anthropic, fake: FakeUpstream) -> None:
    with sdk.messages.stream(
        model="auto", max_tokens=100, messages=[user("solve the equation 3x + 7 = 22")]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "[gemini-up] solve the equation 3x + 7 = 22"
    assert final.model == "strong-reasoner" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert fake.calls("gemini-up") == 1


def test_stream_event_order_and_headers(server: str) -> None:
    body = {"model": "auto", "max_tokens": 20, "stream": True, "messages": [user(CODE_Q)]}
    with httpx.stream("POST", f"{server}/v1/messages", json=body) as response:
        assert response.headers["x-intent-router-model"] == "strong-coder"
        assert response.headers["x-request-id"].startswith("req_")
        kinds = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert set(kinds[3:-3]) == {"content_block_delta"}
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]


# -- tools and images, through each provider ---------------------------------------------

PINNED = [
    ("fast-small", "small-up"),  # OpenAI wire format
    ("strong-coder", "claude-up"),  # Anthropic
    ("strong-reasoner", "gemini-up"),  # Gemini
]


@pytest.mark.parametrize(("model", "upstream"), PINNED)
def test_a_tool_loop_passes_through_each_provider(
    sdk: anthropic.Anthropic, model: str, upstream: str
) -> None:
    question = user("what is the weather in Oslo?")
    first = sdk.messages.create(
        model=model, max_tokens=100, tools=[WEATHER], messages=[question]  # type: ignore[list-item]
    )
    assert first.stop_reason == "tool_use" and first.model == model
    (call,) = first.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"query": "what is the weather in Oslo?"}
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}
    second = sdk.messages.create(
        model=model,
        max_tokens=100,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            question,
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
            {"role": "user", "content": [result]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == f"[{upstream}] tool said: sunny, 21 C"  # type: ignore[union-attr]


@pytest.mark.parametrize(("model", "upstream"), PINNED)
def test_streamed_tool_use_is_reassembled_by_the_sdk(
    sdk: anthropic.Anthropic, model: str, upstream: str
) -> None:
    with sdk.messages.stream(
        model=model,
        max_tokens=100,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[user("weather in Rome, please")],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        assert "".join(stream.text_stream) == ""
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.model == model
    (call,) = final.content
    assert call.type == "tool_use" and call.id
    assert call.input == {"query": "weather in Rome, please"}


@pytest.mark.parametrize(("model", "upstream"), PINNED)
def test_images_reach_each_provider(sdk: anthropic.Anthropic, model: str, upstream: str) -> None:
    content = [
        {"type": "text", "text": "what is in these pictures?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.png"}},
    ]
    message = sdk.messages.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": content}]  # type: ignore[typeddict-item]
    )
    assert message.content[0].text == f"[{upstream}] what is in these pictures? [2 images]"  # type: ignore[union-attr]


# -- errors -------------------------------------------------------------------------------


def test_bad_requests_raise_the_sdks_bad_request_error(
    sdk: anthropic.Anthropic, server: str, fake: FakeUpstream
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(model="auto", max_tokens=0, messages=[user(HI)])
    assert info.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: Input should be greater than or equal to 1",
        },
    }
    bad_block = [{"role": "user", "content": [{"type": "thinking", "thinking": "hmm"}]}]
    with pytest.raises(anthropic.BadRequestError, match=r"messages\[0\]\.content\[0\]"):
        sdk.messages.create(model="auto", max_tokens=10, messages=bad_block)  # type: ignore[arg-type]
    not_json = httpx.post(
        f"{server}/v1/messages", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["type"] == "error"
    assert fake.calls() == 0


def test_an_unknown_model_raises_not_found(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        sdk.messages.create(model="claude-9", max_tokens=10, messages=[user(HI)])
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_upstream_failure_is_an_api_error(sdk: anthropic.Anthropic, fake: FakeUpstream) -> None:
    fake.always("small-up", Fault.http(500))
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk.messages.create(model="fast-small", max_tokens=10, messages=[user(HI)])
    assert info.value.status_code == 502
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_a_prompt_too_long_is_a_bad_request(sdk: anthropic.Anthropic, fake: FakeUpstream) -> None:
    with pytest.raises(anthropic.BadRequestError, match="context window"):
        sdk.messages.create(model="auto", max_tokens=10, messages=[user("x " * 40000)])
    assert fake.calls() == 0


def test_count_tokens_is_an_estimate(sdk: anthropic.Anthropic) -> None:
    short = sdk.messages.count_tokens(model="auto", messages=[user(HI)])
    long = sdk.messages.count_tokens(model="auto", messages=[user(HI * 10)], system="be brief")
    assert 0 < short.input_tokens < long.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.count_tokens(model="claude-9", messages=[user(HI)])


# -- translation (pure) -------------------------------------------------------------------


def test_tool_loop_images_and_options_translate_to_canonical() -> None:
    # fmt: off
    body = anthropic_compat.MessagesRequest.model_validate(
        {
            "model": "auto", "max_tokens": 64, "top_k": 5, "top_p": 0.9, "thinking": {"x": 1},
            "system": "use tools", "tools": [WEATHER],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": PIXEL}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "let me look"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                     "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                     "input": {"city": "Rome"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                     "content": [{"type": "text", "text": "timeout"}]},
                    {"type": "text", "text": "and tomorrow?",
                     "cache_control": {"type": "ephemeral"}},
                ]},
            ],
        }
    )
    # fmt: on
    request = anthropic_compat.to_canonical(body)
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    first_user = request.messages[1]
    assert first_user.parts() == (
        TextPart("weather here?"),
        ImagePart(f"data:image/png;base64,{PIXEL}"),
        ImagePart("https://x.test/a.png"),
    )
    assistant = request.messages[2]
    assert assistant.content == "let me look"
    assert assistant.tool_calls == (
        ToolCall("toolu_1", "get_weather", '{"city": "Oslo"}'),
        ToolCall("toolu_2", "get_weather", '{"city": "Rome"}'),
    )
    assert (request.messages[3].tool_call_id, request.messages[3].content) == ("toolu_1", "sunny")
    assert request.messages[4].content == "Error: timeout"
    assert request.tools[0].parameters == WEATHER["input_schema"]
    assert request.tool_choice == ToolChoice("required")
    assert request.parallel_tool_calls is False
    assert (request.max_tokens, request.top_p) == (64, 0.9)
    assert request.extra == {"thinking": {"x": 1}, "top_k": 5}


def test_tool_calls_answer_as_tool_use_blocks() -> None:
    from intent_router.providers import ChatResponse, Choice

    call = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
    response = ChatResponse(
        text="", finish_reason="tool_calls", input_tokens=5, output_tokens=3, model="m",
        upstream_model="u", provider="openai", route=None, cost_usd=0.0, latency_ms=1.0,
        attempts=(), choices=(Choice(0, "checking", (call,), "tool_calls"),),
    )  # fmt: skip
    body = anthropic_render.message_body(response)
    assert body["stop_reason"] == "tool_use"
    assert body["content"] == [
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert json.loads(json.dumps(body))  # JSON-clean
