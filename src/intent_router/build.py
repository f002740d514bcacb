"""Build the index from route files: the code behind `intent-router build` and
``scripts/build_index.py``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intent_router.embedding.cache import EmbeddingCache
from intent_router.embedding.encoder import Encoder
from intent_router.embedding.index import RouteIndex, Thresholds, make_manifest, save_index
from intent_router.routing import scoring
from intent_router.routing.loader import RouteSet, load_routes, route_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    folder: Path
    routes: int
    utterances: int
    embedded: int
    reused: int
    embed_seconds: float
    seconds: float

    @property
    def utterances_per_s(self) -> float:
        """Embedding throughput over the texts actually embedded in this build."""
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else float("nan")


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
    texts: list[str] = []
    labels: list[int] = []
    for position, route in enumerate(route_set.routes):
        texts.extend(route.utterances)
        labels.extend([position] * len(route.utterances))

    cache = EmbeddingCache(index_dir / "embedding-cache", encoder.id, encoder.dimension)
    missing = cache.missing(texts)
    embed_started = time.perf_counter()
    if missing:
        log.info("embedding %d new utterances (%d cached)", len(missing), len(texts))
        cache.add(
            missing,
            encoder.encode_utterances(missing, batch_size=batch_size, progress=progress),
        )
    embed_seconds = time.perf_counter() - embed_started
    vectors = cache.lookup(texts)
    cache.save(keep=texts)

    label_array = np.array(labels, dtype=np.int64)
    views = encoder.query_views(vectors)  # the hybrid encoder's query-shaped rows
    scorer = scoring.fit(
        vectors,
        label_array,
        len(route_set.routes),
        head_rows=None if views is None else (views[0], label_array[views[1]]),
    )
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
                "fingerprint": route_fingerprint(route),
            }
            for route in route_set.routes
        ],
        build_seconds=time.perf_counter() - started,
        embedded=len(missing),
        reused=len(set(texts)) - len(missing),
        scorer={
            "method": "centroid cosine + alpha * log-softmax of a linear head",
            "alpha": scorer.alpha,
            "sharpness": scorer.sharpness,
            "default_threshold": encoder.default_threshold,
        },
    )
    index = RouteIndex(
        manifest=manifest,
        vectors=vectors,
        labels=label_array,
        texts=texts,
        scorer_arrays=scorer.to_arrays(),
        thresholds=Thresholds(),
    )
    folder = save_index(index_dir, index)
    report = BuildReport(
        folder=folder,
        routes=len(route_set.routes),
        utterances=len(texts),
        embedded=len(missing),
        reused=len(set(texts)) - len(missing),
        embed_seconds=embed_seconds,
        seconds=time.perf_counter() - started,
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
