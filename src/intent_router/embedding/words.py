"""Word vectors: the encoder's contextual token states, pooled per word.

The sentence vector pools every token of a text; a verifier comparing two texts word by
word needs the states one level down. The tokenizer splits a word into word pieces
("tributary" -> "tri", "##but", "##ary"); a word's vector is the mean of its pieces' last
hidden states, L2-normalised, so the inner product of two word vectors is their cosine. The
sentence vector comes out of the same forward pass (mean over every token, like the pooled
embedding of ``Encoder.encode`` with mean pooling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class WordVectors:
    """One text's words (surface forms, as written) and their contextual vectors."""

    words: tuple[str, ...]
    vectors: Vectors
    """``(len(words), dim)``, L2-normalised rows."""
    sentence: Vectors
    """``(dim,)``, L2-normalised mean of every token state."""


def _unit(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    unit: Vectors = (rows / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
    return unit


def pool_words(texts: list[str], features: Any, hidden: Vectors) -> list[WordVectors]:
    """Group token states by word (``features``: a fast tokenizer's batch output, with
    ``offset_mapping``; ``hidden``: ``(batch, tokens, dim)`` last hidden states)."""
    mask = np.asarray(features["attention_mask"], dtype=bool)
    offsets = np.asarray(features["offset_mapping"])
    out = []
    for k, text in enumerate(texts):
        pieces: dict[int, list[int]] = {}
        for position, word in enumerate(features.word_ids(k)):
            if word is not None:
                pieces.setdefault(word, []).append(position)
        words = tuple(
            text[int(offsets[k][ps[0]][0]) : int(offsets[k][ps[-1]][1])] for ps in pieces.values()
        )
        states = hidden[k]
        vectors = (
            _unit(np.stack([states[ps].mean(axis=0) for ps in pieces.values()]))
            if pieces
            else np.zeros((0, hidden.shape[-1]), dtype=np.float32)
        )
        sentence = _unit(states[mask[k]].mean(axis=0))
        out.append(WordVectors(words, vectors, sentence))
    return out
