"""Shared fixtures: one real encoder per session and a small route set on disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from intent_router.embedding.encoder import Encoder
from intent_router.testing import FakeUpstream

SMALL_ROUTES: dict[str, dict[str, object]] = {
    "code": {
        "description": "Writing or fixing source code",
        "utterances": [
            "write a python function that parses a date",
            "fix this javascript bug in my react component",
            "why does my rust code not compile",
            "refactor this java class to use interfaces",
            "write a SQL query that joins two tables",
            "explain what this bash script does",
            "write a go program that reads a file line by line",
            "implement a linked list in C",
            "my python code throws a KeyError, how do I fix it",
            "write unit tests for this function",
        ],
        "chain": ["strong-coder", "cheap-general"],
    },
    "math": {
        "description": "Calculations and proofs",
        "utterances": [
            "what is the derivative of x squared times sine x",
            "solve the equation 3x + 7 = 22",
            "compute the integral of 1 over x from 1 to e",
            "prove that the square root of two is irrational",
            "what is the probability of rolling two sixes",
            "calculate 17 percent of 2400",
            "integrate sin(x) from 0 to pi",
            "what is the limit of 1/n as n goes to infinity",
            "find the roots of x^2 - 5x + 6",
            "how many ways can 5 people sit in a row",
        ],
        "chain": ["strong-reasoner"],
    },
    "translation": {
        "description": "Translating text between languages",
        "utterances": [
            "translate this sentence into french",
            "how do you say good morning in japanese",
            "translate the following paragraph from german to english",
            "what does 'gracias por todo' mean in english",
            "render this email in spanish please",
            "translate my menu into italian",
            "how do I say 'where is the bathroom' in german",
            "what is the portuguese word for butterfly",
            "translate this letter to chinese",
            "can you put this text into dutch",
        ],
        "chain": ["cheap-general"],
    },
    "chitchat": {
        "description": "Small talk",
        "utterances": [
            "hi there, how are you today",
            "good morning! how is it going",
            "thanks, that was really helpful",
            "tell me a bit about yourself",
            "i'm feeling a bit bored, let's chat",
            "goodbye, talk to you later",
            "hey, what's up?",
            "how was your weekend",
            "nice to meet you",
            "you're fun to talk to",
        ],
        "chain": ["fast-small"],
    },
}


@pytest.fixture(autouse=True)
def _minilm_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests written for all-MiniLM-L6-v2 (its thresholds, its session fixture) run with it
    even though the shipped default is the hybrid; tests of other encoders choose theirs."""
    monkeypatch.setenv("INTENT_ROUTER_ENCODER", "minilm")


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    """The fake LLM upstream on loopback, one per test module."""
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="session")
def use_m_encoder() -> Encoder:
    """USE Multilingual v3, loaded once per session."""
    from intent_router.embedding.multilingual import UseMultilingualEncoder

    return UseMultilingualEncoder()


@pytest.fixture(scope="session")
def hybrid_encoder(encoder: Encoder, use_m_encoder: Encoder) -> Encoder:
    """The hybrid over the session's MiniLM and USE-M (nothing loaded twice)."""
    from intent_router.embedding.hybrid import HybridEncoder
    from intent_router.embedding.langid import LanguageDetector

    return HybridEncoder(encoder, use_m_encoder, LanguageDetector())


RouteWriter = Callable[..., Path]


@pytest.fixture
def write_routes(tmp_path: Path) -> RouteWriter:
    """Write route dicts (name -> fields) as YAML files into a fresh folder."""

    def write(routes: dict[str, dict[str, object]] | None = None, folder: str = "routes") -> Path:
        target = tmp_path / folder
        target.mkdir(exist_ok=True)
        for name, fields in (routes if routes is not None else SMALL_ROUTES).items():
            (target / f"{name}.yaml").write_text(
                yaml.safe_dump({"name": name, **fields}, sort_keys=False)
            )
        return target

    return write


@pytest.fixture
def routes_dir(write_routes: RouteWriter) -> Path:
    return write_routes()
