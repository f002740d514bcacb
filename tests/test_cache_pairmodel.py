"""The learned cache verifier: shipped weights, vetoes that always hold, rewordings it hears."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from intent_router.cache import ModelVerifier, PairModel, Verifier, evidence
from intent_router.cache.pairmodel import FORMAT, WEIGHTS_FILE
from intent_router.cache.verify import Pair
from intent_router.embedding.encoder import Encoder
from intent_router.errors import ConfigError

PAIRS_FILE = Path(__file__).resolve().parent.parent / "scripts" / "data" / "cache_pairs.tsv"


def hand_pairs(*categories: str) -> list[tuple[str, str]]:
    lines = [ln for ln in PAIRS_FILE.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]  # fmt: skip
    rows = [ln.split("\t") for ln in lines[1:]]
    return [(cached, query) for _, cat, cached, query in rows if cat in categories]


@pytest.fixture(scope="module")
def verifier(encoder: Encoder) -> ModelVerifier:
    return ModelVerifier(encoder.word_vectors)


def test_the_shipped_weights_load_from_the_package_and_are_small_and_versioned() -> None:
    shipped = resources.files("intent_router.cache").joinpath(WEIGHTS_FILE)
    text = shipped.read_text(encoding="utf-8")
    assert len(text.encode()) < 4096
    data = json.loads(text)
    assert data["format"] == FORMAT and data["version"]
    assert tuple(data["features"]) == evidence.FEATURES
    model = PairModel.load()
    assert len(model.coef) == len(evidence.FEATURES)
    assert model.meta["cosine_gate"] == 0.9
    assert PairModel.from_json(model.to_json()) == model


def test_weights_for_other_features_are_refused_naming_the_file(tmp_path: Path) -> None:
    data = json.loads(PairModel.load().to_json())
    data["features"] = data["features"][:-1]
    bad = tmp_path / "weights.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"weights\.json"):
        PairModel.load(bad)


REWORDINGS = [  # written by hand after the model was fitted; none is in QQP or PAWS
    ("How can I stop procrastinating?", "How do I stop procrastination?"),
    ("How do I get rid of a cold quickly?", "What is the fastest way to get rid of a cold?"),
    (
        "How can I read a text file line by line in Python?",
        "How do I read a file line by line using Python?",
    ),
    ("What is the best way to learn guitar at home?", "How can I learn to play guitar at home?"),
]


@pytest.mark.parametrize(("cached", "query"), REWORDINGS)
def test_rewordings_the_rules_refuse_are_heard(
    verifier: ModelVerifier, cached: str, query: str
) -> None:
    assert not Verifier().verify(query, cached).ok  # the rule verifier misses these
    assert verifier.verify(query, cached).ok


@pytest.mark.parametrize(
    ("cached", "query", "veto"),
    [
        ("convert 5 USD to EUR", "convert 50 USD to EUR", "numbers"),
        ("What time is it in Tokyo when it is 9am?", "What time is it in Tokyo when it is 9pm?",
         "numbers"),
        ("How to make bread with yeast", "How to make bread without yeast", "negation"),
        ("Is it legal to fly a drone here?", "Is it illegal to fly a drone here?", "negation"),
        ("flights from Paris to London", "flights from London to Paris", "order"),
        ("Who defeated Napoleon at Waterloo?", "Who did Napoleon defeat at Waterloo?",
         "neighbours"),
        ("How do I buy an eBay gift card?", "How do I buy an Amazon gift card?", "key_words"),
    ],
)  # fmt: skip
def test_changed_facts_are_vetoed_whatever_the_model_says(
    verifier: ModelVerifier, cached: str, query: str, veto: str
) -> None:
    assert verifier.verify(query, cached).failed == veto


def test_no_number_or_negation_near_miss_of_the_hand_set_passes_the_vetoes() -> None:
    pairs = hand_pairs("number", "negation")
    assert len(pairs) >= 40
    passed = [p for p in pairs if evidence.veto(Pair(p[1], p[0]), p[1], p[0]) is None]
    assert passed == []


def test_no_number_negation_or_direction_near_miss_of_the_hand_set_is_accepted(
    verifier: ModelVerifier,
) -> None:
    pairs = hand_pairs("number", "negation", "direction")
    accepted = [(c, q) for c, q in pairs if verifier.verify(q, c).ok]
    assert accepted == []


def test_word_vectors_come_from_the_same_pass_as_the_sentence_vector(encoder: Encoder) -> None:
    text = "The Tabaci River is a tributary of the Leurda River"
    (words,) = encoder.word_vectors([text])
    assert words.words[:3] == ("The", "Tabaci", "River")
    assert words.vectors.shape == (len(words.words), encoder.dimension)
    assert np.allclose(np.linalg.norm(words.vectors, axis=1), 1.0, atol=1e-5)
    assert float(words.sentence @ encoder.encode([text])[0]) > 0.9999
    assert encoder.word_vectors([]) == []
