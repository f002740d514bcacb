"""The whole Chat Completions request through the router to every provider, with the
official ``openai`` SDK: what each provider is sent (the fake upstream's recorded bodies),
tool calls plain and streamed, an agent loop, images, ``n``, JSON output and refusals.

Models (see tests/test_api_completions.write_models): ``strong-coder`` → Anthropic
``claude-up``, ``cheap-general`` → OpenAI ``gpt-up``, ``strong-reasoner`` → Gemini
``gemini-up``. Requests pin the model so each test knows which adapter it crosses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from tests.test_api_cache import make_settings

from intent_router.api.app import create_app
from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream
from intent_router.testing.server import serve_in_thread

UPSTREAM = {"strong-coder": "claude-up", "cheap-general": "gpt-up", "strong-reasoner": "gemini-up"}
ALL = list(UPSTREAM)
CODE_Q = "write a python function that parses a date"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
TIME_TOOL: Any = {"type": "function", "function": {"name": "get_time"}}
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
IMAGE_URL = "https://images.example/cat.jpg"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    fake: FakeUpstream, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("compat"), fake, cache_backend="off")
    with serve_in_thread(create_app(settings, encoder=encoder)) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
def sdk(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def sent(fake: FakeUpstream, model: str) -> dict[str, Any]:
    """The one body the upstream of ``model`` received."""
    bodies = fake.bodies(UPSTREAM[model])
    assert len(bodies) == 1, bodies
    body: dict[str, Any] = bodies[0]
    return body


# -- every field reaches each provider as documented ---------------------------------------


def test_openai_receives_the_request_as_sent_with_unknown_fields(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    messages: Any = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "name": "bob", "content": [{"type": "text", "text": "hi"},
                                                    {"type": "image_url", "image_url": {
                                                        "url": IMAGE_URL, "detail": "low"}}]},
    ]  # fmt: skip
    fields: Any = dict(
        tools=[WEATHER_TOOL], tool_choice="none", parallel_tool_calls=False, n=2, seed=7,
        top_p=0.9, presence_penalty=0.5, frequency_penalty=-0.5, logit_bias={"50256": -100},
        logprobs=True, top_logprobs=2, user="u-1", metadata={"team": "a"},
        reasoning_effort="low", stop=["END"], max_completion_tokens=50, temperature=0.3,
        response_format={"type": "json_object"},
    )  # fmt: skip
    completion = sdk.chat.completions.create(
        model="cheap-general", messages=messages, **fields,
        extra_body={"top_k": 40, "repetition_penalty": 1.1},
    )  # fmt: skip
    body = sent(fake, "cheap-general")
    assert body["messages"] == messages
    assert body["model"] == "gpt-up"
    for name, value in fields.items():
        assert body[name] == value, name
    assert (body["top_k"], body["repetition_penalty"]) == (40, 1.1)
    assert "max_tokens" not in body  # the client's own name for the limit is kept
    assert [c.index for c in completion.choices] == [0, 1]
    logprobs = completion.choices[1].logprobs
    assert logprobs is not None and logprobs.content and len(logprobs.content[0].top_logprobs) == 2
    assert json.loads(completion.choices[0].message.content or "")["answer"].startswith("[gpt-up]")


def test_anthropic_receives_translated_fields(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    sdk.chat.completions.create(
        model="strong-coder",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "use tools"},
            {"role": "user", "content": "weather in Paris?"},
        ],
        tools=[WEATHER_TOOL, TIME_TOOL], tool_choice={"type": "function",
                                                      "function": {"name": "get_weather"}},
        parallel_tool_calls=False, stop=["END"], top_p=0.8, temperature=1.5, user="u-1",
        seed=7, metadata={"team": "a"}, max_tokens=64,
    )  # fmt: skip
    body = sent(fake, "strong-coder")
    assert body["system"] == "be brief\n\nuse tools"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]}
    ]
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather for a city",
         "input_schema": WEATHER_TOOL["function"]["parameters"]},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]  # fmt: skip
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather",
                                   "disable_parallel_tool_use": True}  # fmt: skip
    assert (body["stop_sequences"], body["top_p"], body["max_tokens"]) == (["END"], 0.8, 64)
    assert body["temperature"] == 1.0  # clamped to Anthropic's range
    assert body["metadata"] == {"user_id": "u-1"}
    assert "seed" not in body  # ignored, as the README's table says


def test_gemini_receives_translated_fields(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    completion = sdk.chat.completions.create(
        model="strong-reasoner",
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "two answers please"}],
        n=2, seed=7, top_p=0.8, presence_penalty=0.5, frequency_penalty=0.25, logprobs=True,
        top_logprobs=3, stop=["END"], max_tokens=64, temperature=1.5,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        reasoning_effort="medium", tools=[WEATHER_TOOL], tool_choice="none",
    )  # fmt: skip
    body = sent(fake, "strong-reasoner")
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["generationConfig"] == {
        "candidateCount": 2, "seed": 7, "topP": 0.8, "presencePenalty": 0.5,
        "frequencyPenalty": 0.25, "responseLogprobs": True, "logprobs": 3,
        "stopSequences": ["END"], "maxOutputTokens": 64, "temperature": 1.5,
        "responseMimeType": "application/json", "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingBudget": 8192},
    }  # fmt: skip
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Current weather for a city",
        "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"]}]}]  # fmt: skip
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert len(completion.choices) == 2
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content and len(logprobs.content[0].top_logprobs) == 3
    assert json.loads(completion.choices[1].message.content or "")["answer"].startswith("[gemini")


# -- tool calls, plain and streamed, and a whole agent loop --------------------------------


@pytest.mark.parametrize("model", ALL)
def test_tool_calls_come_back_plain(sdk: openai.OpenAI, model: str) -> None:
    completion = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
    )  # fmt: skip
    choice = completion.choices[0]
    assert completion.model == model
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"query": "weather in Paris?"}  # type: ignore[union-attr]
    assert all(c.id for c in calls) and len({c.id for c in calls}) == 2


@pytest.mark.parametrize("model", ALL)
def test_tool_calls_stream_as_openai_deltas(sdk: openai.OpenAI, model: str) -> None:
    with sdk.chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL, TIME_TOOL], stream_options={"include_usage": True},
    ) as stream:  # fmt: skip
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c.function.arguments) for c in calls] == [{"query": "weather in Paris?"}] * 2
    assert final.choices[0].finish_reason == "tool_calls"
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    firsts = [d for d in deltas if d.id is not None]
    assert [(d.index, d.function and d.function.name) for d in firsts] == [
        (0, "get_weather"), (1, "get_time")]  # fmt: skip
    assert chunks[-1].usage is not None


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("stream", [False, True])
def test_an_agent_loop_passes_through_each_adapter(
    sdk: openai.OpenAI, fake: FakeUpstream, model: str, stream: bool
) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = sdk.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    call = (first.choices[0].message.tool_calls or [])[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    if stream:
        with sdk.chat.completions.stream(
            model=model, messages=messages, tools=[WEATHER_TOOL]
        ) as events:
            answer = events.get_final_completion()
    else:
        answer = sdk.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    upstream = UPSTREAM[model]
    assert answer.choices[0].message.content == f"[{upstream}] tool said: sunny, 21C"
    assert answer.choices[0].finish_reason == "stop"
    second = fake.bodies(upstream)[1]
    if model == "strong-coder":
        assert second["messages"][1]["content"] == [
            {"type": "tool_use", "id": call.id, "name": "get_weather",
             "input": {"query": "weather in Paris?"}}]  # fmt: skip
        assert second["messages"][2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}]}  # fmt: skip
    elif model == "strong-reasoner":
        call_part = {"name": "get_weather", "args": {"query": "weather in Paris?"}}
        assert second["contents"][1] == {"role": "model", "parts": [{"functionCall": call_part}]}
        assert second["contents"][2] == {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather",
                                  "response": {"result": "sunny, 21C"}}}]}  # fmt: skip
    else:
        assert second["messages"][1]["tool_calls"][0]["id"] == call.id
        assert second["messages"][2] == messages[2]


def test_consecutive_tool_results_merge_into_one_anthropic_user_turn(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather and time in Paris?"}]
    first = sdk.chat.completions.create(
        model="strong-coder", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    calls = first.choices[0].message.tool_calls or []
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"r{i}"}
                 for i, c in enumerate(calls)]  # fmt: skip
    answer = sdk.chat.completions.create(
        model="strong-coder", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    assert answer.choices[0].message.content == "[claude-up] tool said: r0 | r1"
    turns = fake.bodies("claude-up")[1]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in turns[2]["content"]] == [c.id for c in calls]


def test_a_tool_result_turn_routes_on_the_last_user_text(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    messages: Any = [
        {"role": "user", "content": CODE_Q},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "def parse(): ..."},
    ]  # fmt: skip
    raw = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=messages, tools=[WEATHER_TOOL]
    )
    assert raw.headers["x-intent-router-route"] == "code"
    assert raw.parse().choices[0].message.content == "[claude-up] tool said: def parse(): ..."


# -- images, n, JSON output, refusals ----------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_images_by_url_and_data_url_reach_each_provider(
    sdk: openai.OpenAI, fake: FakeUpstream, model: str
) -> None:
    content: Any = [
        {"type": "text", "text": "what is in"},
        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        {"type": "text", "text": "these pictures?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
    ]
    completion = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    upstream = UPSTREAM[model]
    assert completion.choices[0].message.content == (
        f"[{upstream}] what is in these pictures? [2 images]"
    )
    body = sent(fake, model)
    data = PNG.split(",", 1)[1]
    if model == "strong-coder":
        blocks = body["messages"][0]["content"]
        assert blocks[1] == {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}
        assert blocks[3] == {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": data}}  # fmt: skip
    elif model == "strong-reasoner":
        parts = body["contents"][0]["parts"]
        assert parts[1] == {"fileData": {"mimeType": "image/jpeg", "fileUri": IMAGE_URL}}
        assert parts[3] == {"inlineData": {"mimeType": "image/png", "data": data}}
    else:
        assert body["messages"][0]["content"] == content


@pytest.mark.parametrize("model", ["cheap-general", "strong-reasoner"])
def test_n_returns_that_many_choices_plain_and_streamed(sdk: openai.OpenAI, model: str) -> None:
    messages: Any = [{"role": "user", "content": "say hi"}]
    plain = sdk.chat.completions.create(model=model, messages=messages, n=3)
    assert [c.index for c in plain.choices] == [0, 1, 2]
    with sdk.chat.completions.stream(model=model, messages=messages, n=2) as stream:
        final = stream.get_final_completion()
    texts = [c.message.content for c in final.choices]
    assert texts == [plain.choices[0].message.content] * 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2), ("logprobs", True), ("logit_bias", {"1": 5}), ("presence_penalty", 0.5),
     ("reasoning_effort", "high")],
)  # fmt: skip
def test_anthropic_refuses_what_it_cannot_honour_naming_field_and_model(
    sdk: openai.OpenAI, fake: FakeUpstream, field: str, value: Any
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(
            model="strong-coder", messages=[{"role": "user", "content": "hi"}],
            **{field: value},
        )  # fmt: skip
    # 400 once api/errors.py maps QueryError to invalid_request_error (issue 7, errors part)
    assert caught.value.status_code in (400, 422)
    message = str(caught.value)
    assert f"field '{field}'" in message and "'strong-coder'" in message
    assert fake.calls() == 0  # refused before any upstream call


def test_unknown_fields_are_refused_by_translating_adapters(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    for model in ("strong-coder", "strong-reasoner"):
        with pytest.raises(openai.APIStatusError, match=f"field 'min_p'.*'{model}'"):
            sdk.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}],
                extra_body={"min_p": 0.1},
            )  # fmt: skip
    assert fake.calls() == 0


def test_top_k_is_translated_where_the_provider_has_it(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    for model in ALL:
        sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], extra_body={"top_k": 5}
        )
    assert fake.bodies("claude-up")[0]["top_k"] == 5
    assert fake.bodies("gemini-up")[0]["generationConfig"]["topK"] == 5
    assert fake.bodies("gpt-up")[0]["top_k"] == 5


def test_a_refused_field_in_a_stream_is_refused_before_any_byte(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.APIStatusError, match=r"field 'logprobs'.*'strong-coder'"):
        sdk.chat.completions.create(
            model="strong-coder", messages=[{"role": "user", "content": "hi"}],
            logprobs=True, stream=True,
        )  # fmt: skip
    assert fake.calls() == 0


@pytest.mark.parametrize("model", ["cheap-general", "strong-reasoner"])
def test_streamed_logprobs_reach_the_sdk_accumulator(sdk: openai.OpenAI, model: str) -> None:
    with sdk.chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "say hi twice"}], logprobs=True,
        top_logprobs=1,
    ) as stream:  # fmt: skip
        final = stream.get_final_completion()
    logprobs = final.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    tokens = "".join(t.token for t in logprobs.content)
    assert tokens == final.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_json_output_is_a_forced_tool_answered_as_text(
    sdk: openai.OpenAI, fake: FakeUpstream, stream: bool
) -> None:
    schema = {"type": "object", "properties": {"query": {"type": "string"}}}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    messages: Any = [{"role": "user", "content": "answer in JSON"}]
    if stream:
        with sdk.chat.completions.stream(
            model="strong-coder", messages=messages, response_format=fmt
        ) as events:
            completion = events.get_final_completion()
    else:
        completion = sdk.chat.completions.create(
            model="strong-coder", messages=messages, response_format=fmt
        )
    choice = completion.choices[0]
    assert json.loads(choice.message.content or "") == {"query": "answer in JSON"}
    assert (choice.finish_reason, choice.message.tool_calls) == ("stop", None)
    body = sent(fake, "strong-coder")
    assert body["tools"][0]["name"] == "reply" and body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": "reply"}
