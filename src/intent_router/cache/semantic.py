"""The vector tier: nearest cached questions by cosine, with O(1) removal.

Vectors are L2-normalised, so cosine is an inner product. A flat float32 scan of 100k x 384
reads 150 MB per query (10-40 ms on two cores), so above ``exact_below`` rows the search
runs in two steps: a Hamming scan over 32-byte sign codes of the first 256 dimensions
(``faiss.knn_hamming``, 3.2 MB at 100k) picks a ``shortlist``, then exact inner products
rank it. Neighbours a cache cares about sit above cosine ~0.85, i.e. within ~18% of the sign
bits, where the shortlist does not lose them (measured on PAWS vectors: recall 1.0 of the
true nearest at cosine >= 0.85 with 128 bits and a shortlist of 256, and with the default
256 bits and a shortlist of 128). At 100k random vectors, one thread, on a loaded 2-core
machine: 48-byte codes p50 1.3 ms, 32-byte codes p50 0.5 ms.

Rows live in growable numpy arrays; removal moves the last row into the hole
(swap-remove), so memory follows the live entry count and removal never rebuilds anything.
One index holds one scope (see ``memory.py``), so typical lookups scan a few rows.
"""

from __future__ import annotations

import faiss
import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

EXACT_BELOW = 8192
"""Up to this many rows a plain matrix-vector product is faster than two steps."""
SHORTLIST = 128
CODE_BYTES = 32
"""Sign bits of the first 256 dimensions (faiss has a specialised 32-byte Hamming kernel)."""


def single_threaded_faiss() -> None:
    """One FAISS thread: a single-query search gains nothing from OpenMP on two cores, and
    OpenMP spinning under load turned a 1 ms Hamming scan into 60 ms (measured). This is
    process-wide; the route index's single-query searches are served as well by it."""
    if faiss.omp_get_max_threads() != 1:
        faiss.omp_set_num_threads(1)


def sign_code(vectors: Vector, nbytes: int = CODE_BYTES) -> npt.NDArray[np.uint8]:
    """Pack the sign bits of the first ``8 * nbytes`` dimensions of each row."""
    return np.packbits(vectors[..., : 8 * nbytes] > 0, axis=-1)


class VectorIndex:
    """Inner-product search over string-keyed vectors; add, replace and remove by key."""

    def __init__(
        self,
        dim: int,
        *,
        exact_below: int = EXACT_BELOW,
        shortlist: int = SHORTLIST,
        capacity: int = 64,
    ) -> None:
        if dim % 8:
            raise ValueError(f"dimension {dim} is not a multiple of 8")
        self._nbytes = min(CODE_BYTES, dim // 8)
        single_threaded_faiss()
        self.dim = dim
        self.exact_below = exact_below
        self.shortlist = shortlist
        self._vectors = np.zeros((capacity, dim), dtype=np.float32)
        self._codes = np.zeros((capacity, self._nbytes), dtype=np.uint8)
        self._keys: list[str] = []
        self._rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def _grow(self) -> None:
        capacity = max(64, 2 * len(self._vectors))
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        codes = np.zeros((capacity, self._nbytes), dtype=np.uint8)
        n = len(self._keys)
        vectors[:n] = self._vectors[:n]
        codes[:n] = self._codes[:n]
        self._vectors, self._codes = vectors, codes

    def add(self, key: str, vector: Vector) -> None:
        """Store ``vector`` under ``key``, replacing an earlier vector of that key."""
        vec = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        row = self._rows.get(key)
        if row is None:
            if len(self._keys) == len(self._vectors):
                self._grow()
            row = len(self._keys)
            self._keys.append(key)
            self._rows[key] = row
        self._vectors[row] = vec
        self._codes[row] = sign_code(vec, self._nbytes)

    def remove(self, key: str) -> bool:
        """Forget ``key``; False if it was not there."""
        row = self._rows.pop(key, None)
        if row is None:
            return False
        last = len(self._keys) - 1
        if row != last:
            moved = self._keys[last]
            self._vectors[row] = self._vectors[last]
            self._codes[row] = self._codes[last]
            self._keys[row] = moved
            self._rows[moved] = row
        self._keys.pop()
        self._shrink()
        return True

    def _shrink(self) -> None:
        n, capacity = len(self._keys), len(self._vectors)
        if capacity > 256 and n < capacity // 4:
            self._vectors = self._vectors[: capacity // 2].copy()
            self._codes = self._codes[: capacity // 2].copy()

    def search(
        self, vector: Vector, k: int = 1, min_score: float = -1.0
    ) -> list[tuple[str, float]]:
        """The ``k`` best keys by inner product, best first, scoring at least ``min_score``."""
        n = len(self._keys)
        if n == 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        if n <= self.exact_below:
            rows = np.arange(n)
        else:
            _, found = faiss.knn_hamming(
                sign_code(query, self._nbytes)[None, :], self._codes[:n], self.shortlist
            )
            rows = found[0][found[0] >= 0]
        scores = self._vectors[rows] @ query
        if len(rows) > k:
            top = np.argpartition(-scores, k)[:k]
            rows, scores = rows[top], scores[top]
        order = np.argsort(-scores)
        return [
            (self._keys[int(rows[i])], float(scores[i])) for i in order if scores[i] >= min_score
        ]
