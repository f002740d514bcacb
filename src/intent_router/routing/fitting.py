"""Fitting an index's thresholds on labelled rows (``intent-router fit``), one set per block.

A single encoder's vectors are one block: every row is embedded as a query and the global
threshold (and, if asked, per-route ones) is fitted on all of them under the objective
(:mod:`~intent_router.routing.thresholds`).

A hybrid encoder's vectors have one block per encoder, and a query is held to the
thresholds of the block it fills (:class:`~intent_router.routing.matcher.Matcher`). Each
block's thresholds are fitted as if its encoder were the only one: on the rows the block
reads (:attr:`~intent_router.embedding.encoder.Block.languages`: MiniLM's block the English
rows, the multilingual block every row), each embedded by that block's encoder, whatever
language the identifier would have sent it to. So on English data MiniLM's block gets the
threshold ``--encoder minilm`` would get, and the multilingual block the one
``--encoder use-m`` would. A row's language is its ``lang`` field, else the identified one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from intent_router.embedding.encoder import Block, Encoder, Vectors
from intent_router.embedding.index import BlockThresholds, Thresholds
from intent_router.routing.evaluation import Example
from intent_router.routing.matcher import Matcher
from intent_router.routing.thresholds import Objective, fit_thresholds

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BlockRows:
    """The rows that fit one block's thresholds, embedded by that block's encoder."""

    position: int  # the block's index in ``encoder.blocks``
    block: Block
    rows: IntArray  # positions in the examples
    vectors: Vectors


@dataclass(frozen=True)
class BlockFit:
    """One block's fitted thresholds and the number of rows they were fitted on."""

    encoder: str
    rows: int
    global_threshold: float
    per_route: dict[str, float] = field(default_factory=dict)


def embed_for_fit(
    encoder: Encoder, examples: Sequence[Example], *, progress: bool = False
) -> list[BlockRows]:
    """Each block's rows (blocks without rows are left out), embedded once."""
    texts = [e.text for e in examples]
    blocks = encoder.blocks
    if len(blocks) == 1:
        every = np.arange(len(texts), dtype=np.int64)
        return [BlockRows(0, blocks[0], every, encoder.encode(texts, progress=progress))]
    detected = encoder.languages([t for t, e in zip(texts, examples, strict=True) if not e.lang])
    found = iter(detected)
    langs = [e.lang or next(found) for e in examples]
    out = []
    for position, block in enumerate(blocks):
        reads = block.languages
        rows = np.array(
            [i for i, lang in enumerate(langs) if reads is None or lang in reads], dtype=np.int64
        )
        if len(rows):
            vectors = encoder.encode_block([texts[i] for i in rows], position)
            out.append(BlockRows(position, block, rows, vectors))
    return out


def gold_routes(matcher: Matcher, examples: Sequence[Example]) -> IntArray:
    """Each example's route index in the matcher, -1 for out of scope."""
    position = {name: i for i, name in enumerate(matcher.names)}
    return np.array([position[e.route] if e.route else -1 for e in examples], dtype=np.int64)


def fit_blocks(
    matcher: Matcher,
    embedded: Sequence[BlockRows],
    gold: IntArray,
    *,
    objective: Objective,
    per_route: bool = False,
) -> list[BlockFit]:
    """Fit each embedded block's thresholds under ``objective`` on its own rows."""
    fits = []
    for part in embedded:
        assessed = matcher.assess(part.vectors)
        global_t, per_route_t = fit_thresholds(
            assessed.best_score,
            assessed.best,
            gold[part.rows],
            n_routes=len(matcher.names),
            objective=objective,
            refused=assessed.refused,
            per_route=per_route,
        )
        routes = (
            {}
            if per_route_t is None
            else dict(zip(matcher.names, map(float, per_route_t), strict=True))
        )
        fits.append(BlockFit(part.block.encoder, len(part.rows), global_t, routes))
    return fits


def as_thresholds(
    fits: Sequence[BlockFit],
    blocks: Sequence[Block],
    *,
    fitted_on: str | None = None,
    fitted_at: float | None = None,
    objective: str | None = None,
) -> Thresholds:
    """The thresholds to store: the first block's as the global ones, the others by name."""
    by_name = {fit.encoder: fit for fit in fits}
    first = by_name.get(blocks[0].encoder)
    return Thresholds(
        global_threshold=None if first is None else first.global_threshold,
        per_route={} if first is None else first.per_route,
        fitted_on=fitted_on,
        fitted_at=fitted_at,
        objective=objective,
        blocks={
            block.encoder: BlockThresholds(fit.global_threshold, fit.per_route)
            for block in blocks[1:]
            if (fit := by_name.get(block.encoder)) is not None
        },
    )
