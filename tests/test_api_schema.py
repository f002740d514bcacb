"""The published OpenAPI schema states the rules the server applies: requests a
schema-driven fuzzer (schemathesis) builds as valid are never refused.

Bounded: a few derandomized examples per operation against a real server and the fake
upstream. Accepted refusals are only the rules the schema states in words because JSON
Schema cannot (``CROSS_FIELD_RULES``: a tool result answers an earlier call, a named
tool_choice names a tool, the prompt fits a model). The model is set to ``auto`` (any
other name depends on the models file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

from intent_router.api.app import create_app  # noqa: E402
from intent_router.config import Settings  # noqa: E402
from intent_router.embedding.encoder import Encoder  # noqa: E402
from intent_router.testing import FakeUpstream  # noqa: E402
from intent_router.testing.server import serve_in_thread  # noqa: E402

EXAMPLES = 6
FUZZED = ["/route", "/complete", "/v1/chat/completions", "/v1/messages",
          "/v1/messages/count_tokens"]  # fmt: skip
CROSS_FIELD = ("answers no earlier assistant tool call", "not in tools", "context window")


@pytest.fixture(scope="module")
def server(encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.conftest import SMALL_ROUTES

    folder = tmp_path_factory.mktemp("schema")
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():  # every chain answered by an OpenAI upstream
        (routes / f"{name}.yaml").write_text(
            yaml.safe_dump({"name": name, **fields, "chain": ["general"]})
        )
    with FakeUpstream() as fake:
        models = {
            "default_chain": ["general"],
            "deadline_s": 5,
            "models": {
                "general": {"provider": "openai", "base_url": fake.openai_base,
                            "model": "gpt-up", "context_window": 100_000},
            },
        }  # fmt: skip
        path = Path(folder / "models.yaml")
        path.write_text(yaml.safe_dump(models))
        settings = Settings(
            routes_dir=routes, index_dir=folder / "index", models_file=path,
            build_on_start=True, cache_backend="off",
        )  # fmt: skip
        with serve_in_thread(create_app(settings, encoder=encoder)) as url:
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
