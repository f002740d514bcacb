"""Build the index from route files: the code behind `intent-router build` and
``scripts/build_index.py``.

Every text the scorer needs is embedded once (through the incremental embedding cache):
route utterances, ``kind: none`` utterances and ``negatives``. The build also reports
what a route author should look at — repeated utterances the loader dropped, and
overlapping routes (:mod:`intent_router.routing.overlap`) — in its report and manifest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from intent_router.embedding.cache import EmbeddingCache
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import RouteIndex, Thresholds, make_manifest, save_index
from intent_router.routing import scoring
from intent_router.routing.loader import RouteSet, load_routes, route_fingerprint
from intent_router.routing.overlap import OverlapReport, find_overlaps

log = logging.getLogger(__name__)

MANIFEST_WARNINGS = 50
"""At most this many loader warnings are copied into the manifest (all are logged)."""


@dataclass(frozen=True)
class BuildReport:
    folder: Path
    routes: int
    utterances: int
    embedded: int
    reused: int
    embed_seconds: float
    seconds: float
    none_routes: int = 0
    none_utterances: int = 0
    negatives: int = 0
    warnings: list[str] = field(default_factory=list)
    overlaps: OverlapReport | None = None

    @property
    def utterances_per_s(self) -> float:
        """Embedding throughput over the texts actually embedded in this build."""
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else float("nan")


@dataclass(frozen=True)
class _Texts:
    """Every text to embed, by role, with the route (or none route) index of each."""

    route_texts: list[str]
    route_labels: list[int]
    none_texts: list[str]
    none_labels: list[int]
    negative_texts: list[str]
    negative_labels: list[int]

    @classmethod
    def of(cls, route_set: RouteSet) -> _Texts:
        texts = cls([], [], [], [], [], [])
        for position, route in enumerate(route_set.routes):
            texts.route_texts.extend(route.utterances)
            texts.route_labels.extend([position] * len(route.utterances))
            texts.negative_texts.extend(route.negatives)
            texts.negative_labels.extend([position] * len(route.negatives))
        for position, route in enumerate(route_set.none_routes):
            texts.none_texts.extend(route.utterances)
            texts.none_labels.extend([position] * len(route.utterances))
        return texts

    @property
    def all(self) -> list[str]:
        return self.route_texts + self.none_texts + self.negative_texts


def build_index(
    routes: RouteSet | Path,
    index_dir: Path,
    encoder: Encoder,
    *,
    progress: bool = False,
    batch_size: int = 64,
) -> tuple[RouteIndex, BuildReport]:
    """Embed every utterance (re-using cached vectors), fit the scorer, publish atomically."""
    started = time.perf_counter()
    route_set = routes if isinstance(routes, RouteSet) else load_routes(routes)
    texts = _Texts.of(route_set)
    everything = texts.all

    cache = EmbeddingCache(index_dir / "embedding-cache", encoder.id, encoder.dimension)
    missing = cache.missing(everything)
    embed_started = time.perf_counter()
    if missing:
        log.info("embedding %d new texts (%d cached)", len(missing), len(everything))
        cache.add(
            missing,
            encoder.encode_utterances(missing, batch_size=batch_size, progress=progress),
        )
    embed_seconds = time.perf_counter() - embed_started
    vectors = cache.lookup(texts.route_texts)
    cache.save(keep=everything)

    label_array = np.array(texts.route_labels, dtype=np.int64)
    blocks = encoder.blocks  # a hybrid encoder's: one head per block
    scorer = scoring.fit(
        vectors,
        label_array,
        len(route_set.routes),
        none=_examples(cache, texts.none_texts, texts.none_labels, encoder.dimension),
        negatives=_examples(cache, texts.negative_texts, texts.negative_labels, encoder.dimension),
        blocks=[0, *(b.stop for b in blocks)] if len(blocks) > 1 else None,
    )
    overlaps = _overlaps(route_set, texts, vectors, cache)
    warnings = [str(w) for w in route_set.warnings]
    reused = len(set(everything)) - len(missing)
    manifest = make_manifest(
        encoder_id=encoder.id,
        encoder_model=encoder.model_name,
        encoder_name=encoder.name,
        dimension=encoder.dimension,
        routes_fingerprint=route_set.fingerprint,
        routes=[
            {
                "name": route.name,
                "utterances": len(route.utterances),
                "negatives": len(route.negatives),
                "fingerprint": route_fingerprint(route),
            }
            for route in route_set.routes
        ],
        none_routes=[
            {
                "name": route.name,
                "utterances": len(route.utterances),
                "fingerprint": route_fingerprint(route),
            }
            for route in route_set.none_routes
        ],
        build_seconds=time.perf_counter() - started,
        embedded=len(missing),
        reused=reused,
        scorer={
            "method": "nearest-utterance cosine + alpha * log-softmax of a linear head"
            + (" with a none class" if scorer.has_none else ""),
            "alpha": scorer.alpha,
            "sharpness": scorer.sharpness,
            "none_weight": scoring.none_class_weight(
                len(texts.route_texts), len(route_set.routes), len(texts.none_texts)
            )
            if scorer.has_none
            else None,
            "none_margin": scoring.NONE_MARGIN if scorer.has_none else None,
            "default_threshold": scoring.default_threshold(
                blocks[0].default_threshold, has_none=scorer.has_none
            ),
            "blocks": [
                {
                    "encoder": b.encoder,
                    "columns": [b.start, b.stop],
                    "default_threshold": scoring.default_threshold(
                        b.default_threshold, has_none=scorer.has_none
                    ),
                }
                for b in blocks
            ],
        },
        warnings={"count": len(warnings), "first": warnings[:MANIFEST_WARNINGS]},
        overlaps=overlaps.summary(),
    )
    index = RouteIndex(
        manifest=manifest,
        vectors=vectors,
        labels=label_array,
        texts=texts.route_texts,
        scorer_arrays=scorer.to_arrays(),
        thresholds=Thresholds(),
    )
    folder = save_index(index_dir, index)
    report = BuildReport(
        folder=folder,
        routes=len(route_set.routes),
        utterances=len(texts.route_texts),
        embedded=len(missing),
        reused=reused,
        embed_seconds=embed_seconds,
        seconds=time.perf_counter() - started,
        none_routes=len(route_set.none_routes),
        none_utterances=len(texts.none_texts),
        negatives=len(texts.negative_texts),
        warnings=warnings,
        overlaps=overlaps,
    )
    log.info(
        "built %s: %d routes, %d utterances (%d embedded, %d reused) in %.1fs",
        folder,
        report.routes,
        report.utterances,
        report.embedded,
        report.reused,
        report.seconds,
    )
    return index, report


def _examples(
    cache: EmbeddingCache, texts: list[str], labels: list[int], dimension: int
) -> scoring.Examples:
    if not texts:
        return scoring.Examples.empty(dimension)
    return scoring.Examples(cache.lookup(texts), np.array(labels, dtype=np.int64))


def _overlaps(
    route_set: RouteSet, texts: _Texts, vectors: np.ndarray, cache: EmbeddingCache
) -> OverlapReport:
    """Route utterances against route and none-route utterances: a route utterance near a
    none-route example is worth showing. None-route utterances are not checked themselves
    (they are diverse by design, their nearest neighbour is rarely one of their own)."""
    offset = len(route_set.routes)
    names = route_set.names + [r.name for r in route_set.none_routes]
    labels = np.array(
        texts.route_labels + [offset + label for label in texts.none_labels], dtype=np.int64
    )
    all_vectors = np.concatenate([vectors, cache.lookup(texts.none_texts)])
    # Unit rows, so the report speaks in cosines (a hybrid utterance fills two blocks).
    norms = np.linalg.norm(all_vectors, axis=1, keepdims=True)
    all_vectors = (all_vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return find_overlaps(
        all_vectors, labels, names, texts.route_texts + texts.none_texts, checked=offset
    )
