"""The hybrid encoder: all-MiniLM-L6-v2 for English, a multilingual encoder for the rest.

Why (measured with ``scripts/bench_accuracy.py --encoders``, figures in the README): the
multilingual encoders route other languages far better than MiniLM (USE-M picks the right
route for ~100 % of our non-English requests, MiniLM for ~39 %), but on English CLINC150
USE-M alone loses 0.6 points of in-scope accuracy. Keeping MiniLM for English keeps every
English figure where it was; USE-M handles the rest at ~1/4 of MiniLM's cost.

One vector space, so the index, FAISS, the embedding cache and the response cache are
unchanged. A vector is two blocks, ``[MiniLM (384) | multilingual (d)]``
(:attr:`HybridEncoder.blocks`):

* a **query** fills one block, chosen by its language (:mod:`~intent_router.embedding.langid`):
  ``[m, 0]`` for English, ``[0, u]`` otherwise, so it is L2-normalised and its inner product
  with an utterance is the cosine *within the chosen encoder*;
* an **utterance** fills both blocks (each L2-normalised, so its norm is sqrt 2):
  ``[m, u]``, whatever its language: short English utterances are often misread ("solve
  3x + 7 = 22 for x" reads as Danish), and an utterance must answer English queries.

Each block decides as its encoder would alone: the route scorer fits **one head per
block** on that block of the utterance vectors (MiniLM's head on exactly the rows
``--encoder minilm`` fits it on) and a query is scored by the head of the block it fills;
``fit`` fits **one threshold per block** (MiniLM's on the English rows, USE-M's on every
row, each embedded by that encoder alone) and a query is held to its block's threshold;
with nothing fitted each block has its encoder's default (0.33 and 0.35). So an English
query gets the decision ``--encoder minilm`` gives it (the same cosines, the same head,
the same threshold when fitted on English rows), and a non-English one the decision
``--encoder use-m`` gives it. An earlier version fitted one head with one bias on both
blocks' rows and held both to one threshold; it cost English CLINC150 out-of-scope recall
(53 % against MiniLM's 60 % at the threshold fitted on val).

The response cache keys on the same query vector: an English question and its translation
fill different blocks (cosine 0) and never share an answer; the request's language is
also part of the cache scope (see :class:`~intent_router.routing.matcher.Decision`'s
``lang``), so two other languages do not share one either.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from intent_router.embedding.encoder import Block, Encoder, Vectors
from intent_router.embedding.langid import ENGLISH, LanguageDetector
from intent_router.embedding.words import WordVectors

log = logging.getLogger(__name__)

ENGLISH_ONLY = frozenset({ENGLISH})


class HybridEncoder(Encoder):
    """English → ``english`` encoder, other languages → ``other``; see the module docstring."""

    name = "hybrid"
    default_threshold = 0.33

    def __init__(self, english: Encoder, other: Encoder, detector: LanguageDetector) -> None:
        self.english = english
        self.other = other
        self.detector = detector
        self.model_name = f"{english.name}+{other.name}"
        self.path = other.path
        self.id = f"hybrid[{english.id}|{other.id}|{detector.id}]"
        self.backend_name = f"{english.backend_name}+{other.backend_name}"
        self.dimension = english.dimension + other.dimension
        self.max_seq_length = min(english.max_seq_length, other.max_seq_length)
        self.split = english.dimension
        log.info("encoder loaded: hybrid of %s and %s (id %s)", english.name, other.name, self.id)

    @property
    def has_word_vectors(self) -> bool:
        return self.english.has_word_vectors

    def word_vectors(self, texts: Sequence[str]) -> list[WordVectors]:
        """The English encoder's word vectors: the cache's pair model was fitted on them."""
        return self.english.word_vectors(texts)

    def languages(self, texts: Sequence[str]) -> list[str | None]:
        """The language each text is taken to be written in."""
        return list(self.detector.detect_all(list(texts)))

    def encoder_for(self, lang: str | None) -> str:
        """The name of the encoder that embeds (and so decides for) a text in ``lang``."""
        return self.english.name if lang == ENGLISH else self.other.name

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False
    ) -> Vectors:
        """Query vectors: one block filled, by language; unit norm."""
        return self._queries(list(texts), self.languages(texts), batch_size, progress)

    def encode_queries(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> tuple[Vectors, list[str | None]]:
        langs = self.languages(texts)
        return self._queries(list(texts), langs, batch_size, False), list(langs)

    def _queries(
        self, items: list[str], langs: list[str | None], batch_size: int, progress: bool
    ) -> Vectors:
        english = np.array([lang == ENGLISH for lang in langs], dtype=bool)
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        self._fill(out, items, english, batch_size, progress, both=False)
        return out

    def encode_utterances(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False
    ) -> Vectors:
        """Utterance vectors: both blocks, each L2-normalised."""
        items = list(texts)
        english = np.ones(len(items), dtype=bool)
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        self._fill(out, items, english, batch_size, progress, both=True)
        return out

    @property
    def blocks(self) -> tuple[Block, ...]:
        """MiniLM's block (its threshold fitted on English rows), then the other encoder's."""
        return (
            Block(self.english.name, 0, self.split, self.english.default_threshold, ENGLISH_ONLY),
            Block(self.other.name, self.split, self.dimension, self.other.default_threshold),
        )

    def encode_block(self, texts: Sequence[str], block: int) -> Vectors:
        """Query vectors filling ``blocks[block]`` only, whatever the texts' language."""
        items = list(texts)
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        first = np.full(len(items), block == 0, dtype=bool)
        self._fill(out, items, first, 64, False, both=False)
        return out

    def _fill(
        self,
        out: Vectors,
        items: list[str],
        english: np.ndarray,
        batch_size: int,
        progress: bool,
        *,
        both: bool,
    ) -> None:
        first = np.flatnonzero(english)
        second = np.arange(len(items)) if both else np.flatnonzero(~english)
        if len(first):
            out[first, : self.split] = self.english.encode(
                [items[i] for i in first], batch_size=batch_size, progress=progress
            )
        if len(second):
            out[second, self.split :] = self.other.encode(
                [items[i] for i in second], batch_size=batch_size, progress=progress
            )
