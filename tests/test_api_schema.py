"""The published OpenAPI schema states the rules the server applies: requests a
schema-driven fuzzer (schemathesis) builds as valid are never refused.

Bounded: a few derandomized examples per operation against a real server and the fake
upstream. Accepted refusals are only the rules the schema states in words because JSON
Schema cannot (``CROSS_FIELD_RULES``: a tool result answers an earlier call, a
tool_choice needs tools and names one of them, the prompt fits a model). The model is set
to ``auto`` (any other name depends on the models file).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from tests.router_server import model, running_router

from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream

EXAMPLES = 6
FUZZED = ["/route", "/complete", "/v1/chat/completions", "/v1/messages",
          "/v1/messages/count_tokens"]  # fmt: skip
CROSS_FIELD = ("answers no earlier assistant tool call", "not in tools", "needs tools",
               "context window")  # fmt: skip


@pytest.fixture(scope="module")
def server(encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("schema")
    with FakeUpstream() as fake:
        models = {"general": model(fake, "openai", "gpt-up", context_window=100_000)}
        # every chain answered by an OpenAI upstream: extra fields pass, as documented
        with running_router(
            encoder, folder, models, default_chain=["general"], chain=["general"]
        ) as url:
            yield url


def _auto(case: Any) -> Any:
    if isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = "auto"
    return case


@pytest.fixture(scope="module")
def operations(server: str) -> dict[str, Any]:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{server}/openapi.json").json())
    return {op.path: op for op in (r.ok() for r in schema.get_all_operations())}


@pytest.mark.parametrize("path", FUZZED)
def test_valid_looking_requests_are_not_refused(
    server: str, operations: dict[str, Any], path: str
) -> None:
    operation = operations[path]
    refused: list[str] = []

    @hypothesis.given(case=operation.as_strategy().map(_auto))
    @hypothesis.settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
    )  # fmt: skip
    def check(case: Any) -> None:
        response = httpx.post(f"{server}{path}", json=case.body, timeout=30)
        if response.status_code < 400:
            return
        error = response.json().get("error", {})
        if response.status_code == 400 and any(r in error["message"] for r in CROSS_FIELD):
            return
        refused.append(f"{response.status_code} {error} for {str(case.body)[:300]}")

    check()
    assert not refused, "\n".join(refused[:5])
