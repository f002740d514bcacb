"""The vector tier: exact nearest neighbours, removal, and the two-step path at scale."""

from __future__ import annotations

import numpy as np

from intent_router.cache import VectorIndex


def unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_add_replace_remove() -> None:
    rng = np.random.default_rng(0)
    vecs = unit(rng, 100)
    index = VectorIndex(384)
    for i, v in enumerate(vecs):
        index.add(f"k{i}", v)
    assert len(index) == 100
    key, score = index.search(vecs[42], k=1)[0]
    assert (key, round(score, 4)) == ("k42", 1.0)
    assert index.remove("k42") and not index.remove("k42")
    assert "k42" not in index and len(index) == 99
    assert all(key != "k42" for key, _ in index.search(vecs[42], k=5))
    index.add("k7", vecs[8])  # replace: same key, new vector
    assert len(index) == 99
    assert {key for key, _ in index.search(vecs[8], k=2)} == {"k7", "k8"}
    assert index.search(vecs[3], k=3, min_score=0.99) == [("k3", index.search(vecs[3])[0][1])]


def test_memory_follows_removals() -> None:
    rng = np.random.default_rng(1)
    index = VectorIndex(384)
    vecs = unit(rng, 5000)
    for i, v in enumerate(vecs):
        index.add(str(i), v)
    for i in range(4900):
        index.remove(str(i))
    assert len(index) == 100
    assert index._vectors.shape[0] <= 1024  # capacity shrank with the live rows
    assert index.search(vecs[4950])[0][0] == "4950"


def test_two_step_search_finds_close_neighbours() -> None:
    rng = np.random.default_rng(2)
    base = unit(rng, 3000)
    exact = VectorIndex(384, exact_below=10**9)
    hamming = VectorIndex(384, exact_below=0, shortlist=32)
    for i, v in enumerate(base):
        exact.add(str(i), v)
        hamming.add(str(i), v)
    queries = base[:200] + 0.3 * unit(rng, 200) / np.sqrt(1.0)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for q in queries:
        best = exact.search(q, k=1)[0]
        assert best[1] > 0.9
        assert hamming.search(q, k=1)[0] == best
