"""Conversation-aware routing: follow-ups stay, clear new asks move, single turns unchanged.

Real encoder, real index over the small test routes; the API tests go through the app with
its lifespan running and, for completions, the fake upstream on loopback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from intent_router.api.app import create_app
from intent_router.config import Settings
from intent_router.embedding.encoder import Encoder
from intent_router.errors import ConfigError, QueryError
from intent_router.routing import conversation
from intent_router.routing.conversation import (
    CONTEXT_CHARS,
    MAX_CONTEXT_TURNS,
    Turn,
    shipped_model,
)
from intent_router.routing.turn_model import FEATURES, TurnModel, novel_vector
from intent_router.service import RouterService
from intent_router.testing import FakeUpstream

CODE_CHAT: list[Turn] = [
    ("system", "Answer briefly."),
    ("user", "write a python function that counts how often each word appears in a string"),
    ("assistant", "Here is a function using collections.Counter."),
]
MATH_CHAT: list[Turn] = [
    ("user", "what's the derivative of ln(x^2 + 1)?"),
    ("assistant", "It is 2x / (x^2 + 1), by the chain rule."),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from tests.conftest import SMALL_ROUTES

    folder = tmp_path_factory.mktemp("conversation")
    routes = folder / "routes"
    routes.mkdir()
    for name, fields in SMALL_ROUTES.items():
        (routes / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **fields}))
    return Settings(
        routes_dir=routes, index_dir=folder / "index", models_file=None, build_on_start=True
    )


@pytest.fixture
async def service(settings: Settings, encoder: Encoder) -> AsyncIterator[RouterService]:
    router = RouterService.from_settings(settings, encoder)
    await router.start()
    yield router
    await router.aclose()


@pytest.mark.parametrize(
    ("chat", "follow_up", "route"),
    [
        (CODE_CHAT, "now make it ignore punctuation", "code"),
        (CODE_CHAT, "thanks! can you add error handling?", "code"),
        (CODE_CHAT, "ok and how do I fix it?", "code"),
        (CODE_CHAT, "what about the second one?", "code"),
        (MATH_CHAT, "and the second derivative?", "math"),
    ],
)
async def test_a_follow_up_stays_on_the_route_of_the_earlier_turns(
    service: RouterService, chat: list[Turn], follow_up: str, route: str
) -> None:
    routed = await service.route_conversation([*chat, ("user", follow_up)])
    assert routed.decision.route == route
    assert routed.conversation is not None
    assert routed.conversation.context_decision is not None
    assert routed.conversation.context_decision.route == route


async def test_a_follow_up_that_routes_nowhere_alone_is_decided_by_the_context(
    service: RouterService,
) -> None:
    follow_up = "now make it ignore punctuation"
    alone = await service.route(follow_up)
    routed = await service.route_conversation([*CODE_CHAT, ("user", follow_up)])
    assert alone.decision.route is None  # the old behaviour: the last turn alone
    assert routed.decision.route == "code"
    assert routed.decision.chain == ["strong-coder", "cheap-general"]  # the route's chain
    record = routed.conversation
    assert record is not None
    assert record.decided_by == "context"
    assert record.deciding_turns == [1] and record.last_turn == 3
    assert record.last_turn_decision.route is None
    record_dict = record.to_dict()
    assert record_dict["decided_by"] == "context"
    assert record_dict["conversation"]["context_route"] == "code"
    assert record_dict["conversation"]["context_turns"] == [1]


@pytest.mark.parametrize(
    ("chat", "switch", "route"),
    [
        (CODE_CHAT, "thanks — now translate that into French", "translation"),
        (CODE_CHAT, "unrelated, but what's the capital of Peru?", None),
        (MATH_CHAT, "how do you say 'good luck on your exam' in Spanish?", "translation"),
    ],
)
async def test_a_clear_new_ask_moves_and_the_last_turn_decides(
    service: RouterService, chat: list[Turn], switch: str, route: str | None
) -> None:
    routed = await service.route_conversation([*chat, ("user", switch)])
    assert routed.decision.route == route
    assert routed.conversation is not None
    assert routed.conversation.decided_by == "last_turn"
    assert routed.conversation.deciding_turns == [len(chat)]


async def test_a_single_turn_is_routed_exactly_as_a_query(service: RouterService) -> None:
    query = "write a python function that parses a date"
    alone = await service.route(query)
    routed = await service.route_conversation([("system", "be brief"), ("user", query)])
    assert routed.decision == alone.decision
    assert (routed.vector == alone.vector).all()
    assert routed.conversation is not None
    assert routed.conversation.decided_by == "last_turn"
    assert routed.conversation.context_turns == () and routed.conversation.why == "single turn"


async def test_the_turns_of_one_conversation_share_one_encoder_batch(
    service: RouterService,
) -> None:
    before = service.batcher.stats.batches, service.batcher.stats.items
    await service.route_conversation([*CODE_CHAT, ("user", "thanks! now add type hints")])
    after = service.batcher.stats.batches, service.batcher.stats.items
    assert after[0] - before[0] == 1
    assert after[1] - before[1] >= 2  # the last turn and the earlier one, at least


def test_plan_reads_user_turns_only_and_bounds_what_it_embeds() -> None:
    long_ask = "summarize this: " + "word " * 400
    turns: list[Turn] = [
        ("system", "be brief"),
        ("user", "first ask"),
        ("assistant", "an answer"),
        ("user", long_ask),
        ("tool", "tool output"),
        ("user", "second ask"),
        ("developer", "a rule"),
        ("user", "   "),
        ("user", "thanks. now make it shorter please"),
        ("assistant", "prefilled"),
    ]
    plan = conversation.plan_turns(turns)
    assert plan.last == 8 and plan.last_text == "thanks. now make it shorter please"
    assert plan.clauses == ("now make it shorter please",)
    assert plan.referential and not plan.topic_change  # short, and "it" points back
    assert MAX_CONTEXT_TURNS == 2 and plan.context == (5, 3)  # most recent first, blank skipped
    assert all(len(text) <= CONTEXT_CHARS for text in plan.context_texts)
    assert plan.texts()[0] == plan.last_text and len(plan.texts()) == 1 + 1 + 1 + len(plan.context)
    assert plan.joined == f"{plan.context_texts[0]} {plan.last_text}"  # embedded together
    assert plan.new_words == 4  # thanks, make, shorter, please: not in the earlier user turns


def test_a_topic_change_is_read_from_the_last_turn_and_not_embedded_as_a_clause() -> None:
    plan = conversation.plan_turns(
        [("user", "solve 3x = 9"), ("user", "different question: who wrote Hamlet?")]
    )
    assert plan.topic_change and not plan.referential
    assert plan.clauses == ("who wrote Hamlet?",)


def test_a_conversation_without_user_text_is_refused() -> None:
    with pytest.raises(QueryError, match="no user message"):
        conversation.plan_turns([("system", "be brief"), ("assistant", "hello"), ("user", " ")])


@pytest.fixture
def client(settings: Settings, encoder: Encoder) -> Iterator[TestClient]:
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client


def _messages(turns: list[Turn]) -> list[dict[str, str]]:
    return [{"role": role, "content": text} for role, text in turns]


def test_route_endpoint_takes_messages_and_says_which_turns_decided(client: TestClient) -> None:
    chat = _messages([*CODE_CHAT, ("user", "ok and how do I fix it?")])
    body = client.post("/route", json={"messages": chat}).json()
    assert body["route"] == "code" and body["decided_by"] == "context"
    assert body["conversation"]["deciding_turns"] == [1]
    assert body["conversation"]["last_turn"] == 3
    by_query = client.post("/route", json={"query": "ok and how do I fix it?"}).json()
    assert by_query["route"] is None and by_query["decided_by"] is None


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"query": "hi", "messages": [{"role": "user", "content": "hi"}]}, "exactly one"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "user message with text"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
    ],
)
def test_route_refuses_bad_messages(
    client: TestClient, payload: dict[str, object], words: str
) -> None:
    response = client.post("/route", json=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and words in error["message"]


def test_chat_completions_route_a_follow_up_with_its_conversation(
    settings: Settings, encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.test_api_completions import write_models

    with FakeUpstream() as fake:
        full = Settings(
            routes_dir=settings.routes_dir,
            index_dir=settings.index_dir,
            models_file=write_models(fake, tmp_path),
            build_on_start=True,
            cache_backend="off",
        )
        with TestClient(create_app(full, encoder=encoder)) as api:
            chat = _messages([*CODE_CHAT, ("user", "now make it ignore punctuation")])
            with caplog.at_level(logging.INFO, logger="intent_router.requests"):
                response = api.post(
                    "/v1/chat/completions", json={"model": "auto", "messages": chat}
                )
            assert response.status_code == 200
            assert response.headers["x-intent-router-route"] == "code"
            assert response.headers["x-intent-router-model"] == "strong-coder"
            assert fake.calls("claude-up") == 1
            lines = [r.getMessage() for r in caplog.records if r.name == "intent_router.requests"]
            assert json.loads(lines[-1])["decided_by"] == "context"
            routed = api.post("/complete", json={"messages": chat}).json()["routing"]
            assert routed["route"] == "code" and routed["decided_by"] == "context"
            assert routed["conversation"]["deciding_turns"] == [1]


SHIPPED_ROUTES = Path(__file__).resolve().parents[1] / "routes"


@pytest.fixture(scope="module")
def shipped_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shipped routes, with their ``kind: none`` route (what the turn model was fitted on)."""
    folder = tmp_path_factory.mktemp("conversation-shipped")
    return Settings(
        routes_dir=SHIPPED_ROUTES, index_dir=folder / "index", models_file=None,
        build_on_start=True,
    )  # fmt: skip


@pytest.fixture
async def shipped(shipped_settings: Settings, encoder: Encoder) -> AsyncIterator[RouterService]:
    router = RouterService.from_settings(shipped_settings, encoder)
    await router.start()
    yield router
    await router.aclose()


SUPPORT_CHAT: list[Turn] = [
    ("user", "I want to return the shoes I bought last week"),
    ("assistant", "You can start a return from Orders > Return item within 30 days."),
]
STORY_CHAT: list[Turn] = [
    ("user", "write a short story about a lighthouse keeper who finds a message in a bottle"),
    ("assistant", "The fog rolled in as Elias climbed the stairs..."),
]


@pytest.mark.parametrize(
    ("chat", "last", "route"),
    [
        (CODE_CHAT, "what's the time complexity of that?", "code"),  # points back
        (SUPPORT_CHAT, "do I have to pay for the shipping?", "customer_support"),
        (STORY_CHAT, "make the ending sadder", "creative_writing"),
        (MATH_CHAT, "and the second derivative?", "math"),  # ellipsis, no pronoun
    ],
)
async def test_on_the_shipped_routes_a_follow_up_stays(
    shipped: RouterService, chat: list[Turn], last: str, route: str
) -> None:
    routed = await shipped.route_conversation([*chat, ("user", last)])
    assert routed.decision.route == route
    assert routed.conversation is not None and routed.conversation.deciding_turns != []


@pytest.mark.parametrize(
    ("chat", "last", "route"),
    [
        (CODE_CHAT, "thanks — now translate that into French", "translation"),
        (
            STORY_CHAT,
            "now summarize that story in two sentences for my kid's teacher",
            "summarization",
        ),
        (MATH_CHAT, "what's the best hiking trail near Denver?", None),  # into out-of-scope
        (SUPPORT_CHAT, "ok. can you translate this complaint into German?", "translation"),
    ],
)
async def test_on_the_shipped_routes_a_switch_moves_and_the_last_turn_decides(
    shipped: RouterService, chat: list[Turn], last: str, route: str | None
) -> None:
    routed = await shipped.route_conversation([*chat, ("user", last)])
    assert routed.decision.route == route
    record = routed.conversation
    assert record is not None and record.decided_by == "last_turn"
    assert record.deciding_turns == [len(chat)]
    assert record.context_decision is not None and record.context_decision.route is not None


async def test_the_record_says_what_the_turn_model_weighed(shipped: RouterService) -> None:
    routed = await shipped.route_conversation([*STORY_CHAT, ("user", "make the ending sadder")])
    record = routed.conversation
    assert record is not None
    out = record.to_dict()["conversation"]
    assert out["context_route"] == "creative_writing" and out["context_turns"] == [0]
    assert out["last_turn"] == 2 and "novel_route" in out
    if out["p_move"] is not None:  # the turn model decided: it says how sure it was
        assert 0.0 <= out["p_move"] < shipped_model().threshold


def test_the_novel_part_of_a_turn_keeps_what_is_new_and_drops_most_of_the_context() -> None:
    rng = np.random.default_rng(0)
    context, noise = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 16)))
    last = (noise + 2 * context) / np.linalg.norm(noise + 2 * context)
    novel = novel_vector(last.astype(np.float32), context.astype(np.float32))
    assert abs(float(np.linalg.norm(novel)) - 1.0) < 1e-5
    assert float(novel @ context) < float(last @ context) - 0.3  # much less of the context
    new_last, new_novel = last - (last @ context) * context, novel - (novel @ context) * context
    cosine = new_last @ new_novel / np.linalg.norm(new_last) / np.linalg.norm(new_novel)
    assert float(cosine) > 0.999  # what the last turn adds is kept, in the same direction


def test_the_shipped_turn_model_loads_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    model = shipped_model()
    assert set(model.weights) == set(FEATURES) and 0.0 < model.threshold < 1.0
    bad = tmp_path / "turn_weights.json"
    bad.write_text(json.dumps({"weights": {"last_margin": 1.0}, "bias": 0.0}))
    with pytest.raises(ConfigError, match=r"turn_weights\.json.*weights"):
        TurnModel.load(bad)
