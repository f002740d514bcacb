"""A persistent text → vector cache, keyed by encoder id, so rebuilds re-embed only what changed."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from intent_router.embedding.encoder import Vectors

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Vectors of texts already embedded by one encoder, stored in one ``.npz`` file."""

    def __init__(self, folder: Path, encoder_id: str, dimension: int) -> None:
        key = hashlib.sha256(encoder_id.encode()).hexdigest()[:16]
        self.path = folder / f"{key}.npz"
        self.dimension = dimension
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    texts, vectors = data["texts"], data["vectors"]
                if vectors.shape[1:] == (dimension,):
                    self._vectors = {str(t): v for t, v in zip(texts, vectors, strict=True)}
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable embedding cache %s: %s", self.path, exc)

    def __len__(self) -> int:
        return len(self._vectors)

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts of ``texts`` that have no cached vector, in first-seen order."""
        return [t for t in dict.fromkeys(texts) if t not in self._vectors]

    def add(self, texts: Sequence[str], vectors: Vectors) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            self._vectors[text] = vector
        self._dirty = self._dirty or bool(texts)

    def lookup(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def save(self, keep: Sequence[str] | None = None) -> None:
        """Write atomically; with ``keep``, drop texts no route uses any more."""
        if keep is not None:
            wanted = set(keep)
            stale = [t for t in self._vectors if t not in wanted]
            for text in stale:
                del self._vectors[text]
            self._dirty = self._dirty or bool(stale)
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self._vectors)
        vectors = self.lookup(texts)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, texts=np.array(texts, dtype=str), vectors=vectors)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dirty = False
