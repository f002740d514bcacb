"""The router as a service: embed once → match → (cache, dispatch). No HTTP here."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intent_router.build import build_index
from intent_router.config import Settings
from intent_router.embedding.batcher import MicroBatcher
from intent_router.embedding.choice import load_encoder
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import RouteIndex, load_index
from intent_router.errors import IndexMissingError, QueryError, StaleIndexError
from intent_router.observability.metrics import Metrics
from intent_router.routing import conversation
from intent_router.routing.conversation import ConversationDecision, Turn
from intent_router.routing.explain import Explanation, explain
from intent_router.routing.loader import RouteSet, load_routes
from intent_router.routing.matcher import Decision, Matcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    """A routing decision with the query vector it came from (reused by the cache)."""

    decision: Decision
    vector: np.ndarray
    truncated: bool
    conversation: ConversationDecision | None = None  # which turns decided (conversations)


def prepare_index(
    settings: Settings, encoder: Encoder, routes: RouteSet, *, build: bool
) -> RouteIndex:
    """Load the index for ``routes``; with ``build``, (re)build it when missing or stale."""
    try:
        return load_index(
            settings.index_dir,
            routes_fingerprint=routes.fingerprint,
            encoder_id=encoder.id,
            encoder_name=encoder.name,
        )
    except (IndexMissingError, StaleIndexError) as exc:
        if not build:
            raise
        log.info("building the index: %s", exc)
    index, _ = build_index(routes, Path(settings.index_dir), encoder)
    return index


class RouterService:
    """Holds the long-lived routing state; created and closed by the server's lifespan."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        routes: RouteSet,
        index: RouteIndex,
        *,
        default_chain: list[str] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self._largest_batch = 0
        self.metrics.declare_routes(list(routes.names))
        self.encoder = encoder
        self.routes = routes
        self.index = index
        self.matcher = Matcher(routes, index, default_chain=default_chain)
        self.batcher: MicroBatcher[str, tuple[np.ndarray, Decision]] = MicroBatcher(
            self._embed_and_match,
            max_batch=settings.max_batch,
            max_wait_s=settings.batch_wait_ms / 1000,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        encoder: Encoder | None = None,
        *,
        default_chain: list[str] | None = None,
        metrics: Metrics | None = None,
    ) -> RouterService:
        encoder = encoder or load_encoder(settings.encoder)
        routes = load_routes(settings.routes_dir)
        index = prepare_index(settings, encoder, routes, build=settings.build_on_start)
        return cls(settings, encoder, routes, index, default_chain=default_chain, metrics=metrics)

    async def start(self) -> None:
        self.batcher.start()

    async def aclose(self) -> None:
        await self.batcher.aclose()

    def _embed_and_match(self, texts: list[str]) -> list[tuple[np.ndarray, Decision]]:
        # Small encoder batches over length-sorted texts pad less than one big batch.
        vectors, langs = self.encoder.encode_queries(texts, batch_size=min(len(texts), 16))
        self.metrics.encoder_batches.inc()
        self.metrics.encoder_batch_items.inc(len(texts))
        self._largest_batch = max(self._largest_batch, len(texts))
        self.metrics.encoder_batch_size_max.set(self._largest_batch)
        decisions = [
            dataclasses.replace(d, encoder=self.encoder.encoder_for(lang), lang=lang)
            for d, lang in zip(self.matcher.decide(vectors), langs, strict=True)
        ]
        return list(zip(vectors, decisions, strict=True))

    def clean_query(self, query: str) -> tuple[str, bool]:
        text = " ".join(query.split())
        if not text:
            raise QueryError("query is empty or only whitespace")
        limit = self.settings.max_query_chars
        return (text[:limit], True) if len(text) > limit else (text, False)

    async def route(self, query: str) -> Routed:
        text, truncated = self.clean_query(query)
        vector, decision = await self._submit(text)
        self.metrics.routed.labels(self.metrics.route_label(decision.route)).inc()
        return Routed(decision=decision, vector=vector, truncated=truncated)

    async def route_conversation(self, turns: Sequence[Turn]) -> Routed:
        """Route the last user turn in the light of the earlier ones (one encoder batch).

        ``vector`` is the last user turn's own vector (the cache's key), whatever decided.
        """
        plan = conversation.plan_turns(turns, clean=lambda text: self.clean_query(text)[0])
        _, truncated = self.clean_query(turns[plan.last][1])
        t0 = time.perf_counter()
        results = await self.batcher.submit_many(plan.texts())
        self.metrics.embed.observe(time.perf_counter() - t0)
        vectors = np.stack([vector for vector, _ in results])
        decided = conversation.decide(plan, vectors, [d for _, d in results], self.matcher)
        self.metrics.routed.labels(self.metrics.route_label(decided.decision.route)).inc()
        return Routed(decided.decision, vectors[0], truncated, decided)

    async def embed(self, query: str) -> np.ndarray:
        """The query vector alone (a pinned request's cache key); not counted as routed."""
        text, _ = self.clean_query(query)
        vector, _ = await self._submit(text)
        return vector

    async def _submit(self, text: str) -> tuple[np.ndarray, Decision]:
        t0 = time.perf_counter()
        try:
            return await self.batcher.submit(text)
        finally:
            self.metrics.embed.observe(time.perf_counter() - t0)

    async def explain(self, query: str, *, k: int = 8) -> tuple[Explanation, Routed]:
        """The decision for ``query`` with every route's score and the nearest utterances
        (for the console); not counted as a routing decision."""
        text, truncated = self.clean_query(query)
        vector, decision = await self.batcher.submit(text)
        explanation = await asyncio.to_thread(
            explain, self.matcher, self.index, vector, decision, k=k
        )
        return explanation, Routed(decision=decision, vector=vector, truncated=truncated)
