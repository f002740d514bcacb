"""Errors the SDKs understand, request ids, pinned models: the official openai SDK → our
server → the fake upstream (both real servers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.router_server import model, running_router

from intent_router.api.errors import ApiError, describe, error_body
from intent_router.embedding.encoder import Encoder
from intent_router.errors import ChainExhaustedError
from intent_router.testing import FakeUpstream, Fault

CODE_Q = "write a python function that parses a date"
HI = [{"role": "user", "content": "hi there, how are you today"}]


@pytest.fixture(scope="module")
def server(
    fake: FakeUpstream, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    models = {
        "cheap-general": model(fake, "openai", "gpt-up"),
        "fast-small": model(fake, "openai", "small-up"),
        "strong-coder": model(fake, "anthropic", "claude-up", fallbacks=["strong-reasoner"]),
        "strong-reasoner": model(fake, "gemini", "gemini-up"),
        "tiny": model(fake, "openai", "tiny-up", context_window=64),
        "limited": model(fake, "openai", "limited-up"),  # left cooling down by its 429 test
    }
    folder = tmp_path_factory.mktemp("errors")
    with running_router(encoder, folder, models, default_chain=["cheap-general"]) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
def sdk(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


# -- 400: validation, JSON, content type ---------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"messages": []}, "messages", "at least 1 item"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "not one of"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content", "string"),
        ({"messages": HI, "temperature": 7}, "temperature", "less than or equal to 2"),
        ({"messages": HI, "max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
    ],
)
def test_invalid_fields_are_a_bad_request_naming_the_field(
    sdk: openai.OpenAI, fake: FakeUpstream, fields: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="auto", **fields)
    assert info.value.status_code == 400
    assert (info.value.type, info.value.param, info.value.code) == (
        "invalid_request_error", param, None,
    )  # fmt: skip
    assert words in info.value.message and param in info.value.message
    assert fake.calls() == 0


def test_missing_messages_is_a_bad_request(server: str) -> None:
    response = httpx.post(f"{server}/v1/chat/completions", json={"model": "auto"})
    assert response.status_code == 400
    assert response.json() == error_body(
        "messages: Field required", "invalid_request_error", param="messages"
    )


def test_bad_json_is_a_bad_request_that_does_not_echo_the_body(server: str) -> None:
    body = b'{"model": "auto", "messages": [SECRET-PROMPT'
    response = httpx.post(
        f"{server}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "not valid JSON" in error["message"]
    assert "SECRET" not in response.text


def test_a_wrong_content_type_is_a_bad_request_that_does_not_echo_the_body(
    sdk: openai.OpenAI, server: str
) -> None:
    with pytest.raises(openai.BadRequestError, match="Content-Type must be application/json"):
        sdk.chat.completions.create(
            model="auto", messages=HI, extra_headers={"content-type": "text/plain"}
        )
    response = httpx.post(f"{server}/v1/chat/completions", content=b"SECRET-PROMPT")
    assert response.status_code == 400 and "SECRET" not in response.text
    assert "(got none)" in response.json()["error"]["message"]


def test_unknown_extra_fields_are_accepted(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="fast-small", messages=HI, extra_body={"top_k": 5, "repetition_penalty": 1.1}
    )
    assert completion.model == "fast-small"


# -- 404 / 405 -----------------------------------------------------------------------------


def test_unknown_model_is_not_found(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.chat.completions.create(model="gpt-99", messages=HI)
    assert (info.value.code, info.value.param) == ("model_not_found", "model")
    assert "gpt-99" in info.value.message and fake.calls() == 0


def test_models_endpoint_finds_one_model_or_says_not_found(sdk: openai.OpenAI) -> None:
    assert sdk.models.retrieve("auto").id == "auto"
    assert sdk.models.retrieve("strong-coder").owned_by == "intent-router"
    with pytest.raises(openai.NotFoundError) as info:
        sdk.models.retrieve("gpt-99")
    assert info.value.code == "model_not_found"


def test_unknown_paths_and_methods_answer_the_same_error_shape(server: str) -> None:
    missing = httpx.post(f"{server}/v1/embeddings", json={"input": "x"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    wrong = httpx.get(f"{server}/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == {
        "message": "method GET is not allowed on /v1/chat/completions",
        "type": "invalid_request_error", "param": None, "code": "method_not_allowed",
    }  # fmt: skip


# -- context length ------------------------------------------------------------------------


def test_a_prompt_too_long_for_every_model_is_a_fast_bad_request(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    long = [{"role": "user", "content": "please summarise this: " + "lorem ipsum " * 4000}]
    for name in ("auto", "tiny"):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=name, messages=long)
        assert (info.value.code, info.value.param) == ("context_length_exceeded", "messages")
    assert fake.calls() == 0  # decided without any upstream call


# -- 5xx -----------------------------------------------------------------------------------


def test_upstream_retry_after_reaches_the_client(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.always("limited-up", Fault.http(429, retry_after="30"))
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="limited", messages=HI)
    assert info.value.status_code == 502 and info.value.code == "upstream_failed"
    assert info.value.response.headers["retry-after"] == "30"
    assert fake.calls("limited-up") == 1  # 30 s is past the deadline: not retried


def test_no_model_tried_is_a_503_with_retry_after() -> None:
    error = describe(ChainExhaustedError("breakers open", attempts=[], status=503, retry_after=2.5))
    assert (error.status, error.type) == (503, "service_unavailable")
    assert error.code == "no_model_available"
    response = error.response("/v1/chat/completions")
    assert response.headers["retry-after"] == "3"


def test_the_error_body_for_other_layers() -> None:
    """The one builder other layers (the body-size limit) use for their answers."""
    too_large = ApiError(413, "request body over 1 MiB", code="request_too_large")
    assert too_large.response("/v1/chat/completions").body == (
        b'{"error":{"message":"request body over 1 MiB","type":"invalid_request_error",'
        b'"param":null,"code":"request_too_large"}}'
    )
    anthropic = too_large.response("/v1/messages").body
    assert anthropic == (
        b'{"type":"error","error":{"type":"request_too_large","message":"request body over 1 MiB"}}'
    )


# -- request ids ---------------------------------------------------------------------------


def test_request_id_is_echoed_or_generated_on_every_response(
    sdk: openai.OpenAI, server: str
) -> None:
    echoed = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=HI, extra_headers={"x-request-id": "client-abc-123"}
    )
    assert echoed.headers["x-request-id"] == "client-abc-123"
    first = httpx.get(f"{server}/healthz").headers["x-request-id"]
    second = httpx.get(f"{server}/healthz").headers["x-request-id"]
    assert first.startswith("req_") and first != second
    error = httpx.get(f"{server}/nowhere", headers={"x-request-id": "e-1"})
    assert error.status_code == 404 and error.headers["x-request-id"] == "e-1"
    bad = httpx.get(f"{server}/healthz", headers={"x-request-id": "x" * 500})
    assert bad.headers["x-request-id"].startswith("req_")  # unusable ids are replaced


def test_streams_carry_the_request_id_and_the_answering_model(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.always("claude-up", Fault.http(500))
    with sdk.chat.completions.with_streaming_response.create(
        model="strong-coder", messages=HI, stream=True, extra_headers={"x-request-id": "s-1"}
    ) as response:
        assert response.headers["x-request-id"] == "s-1"
        assert response.headers["x-intent-router-model"] == "strong-reasoner"
        chunks = list(response.parse())
    assert {c.model for c in chunks} == {"strong-reasoner"}


# -- pinned models -------------------------------------------------------------------------


def test_a_pinned_model_is_never_answered_by_the_default_chain(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.always("small-up", Fault.http(500))
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="fast-small", messages=HI)
    attempts = info.value.body["attempts"]  # type: ignore[index]
    assert {a["model"] for a in attempts} == {"fast-small"}
    assert fake.calls("small-up") == 2  # its own retries
    assert fake.calls("gpt-up") == 0  # never the default chain


def test_a_pinned_model_with_fallbacks_fails_over_to_them(
    sdk: openai.OpenAI, fake: FakeUpstream
) -> None:
    ok = sdk.chat.completions.with_raw_response.create(model="strong-coder", messages=HI)
    assert ok.headers["x-intent-router-model"] == "strong-coder"
    fake.always("claude-up", Fault.http(401))
    raw = sdk.chat.completions.with_raw_response.create(model="strong-coder", messages=HI)
    completion = raw.parse()
    assert completion.model == "strong-reasoner"
    assert raw.headers["x-intent-router-model"] == "strong-reasoner"
    assert completion.choices[0].message.content == f"[gemini-up] {HI[0]['content']}"
    assert fake.calls("gpt-up") == 0


def test_a_bug_is_a_500_in_the_same_shape_with_the_request_id(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from intent_router.api.app import create_app
    from intent_router.config import Settings

    app = create_app(Settings(routes_dir=tmp_path, index_dir=tmp_path, models_file=None))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: nothing loaded
    response = client.get("/boom", headers={"x-request-id": "bug-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "bug-1"
    assert response.json() == error_body("internal error", "server_error", code="internal_error")
