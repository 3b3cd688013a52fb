"""IVF-PQ search and its memory-mapped on-disk form (the path to 1e8 galaxies)."""

from __future__ import annotations

import numpy as np
import pytest

from scifm.astroclip.search import EmbeddingIndex, ivfpq_on_disk, recall_at_k, serialized_bytes


def _clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivfpq_compresses_finds_neighbours_and_maps_from_disk(tmp_path):
    x, q = _clustered(3000), _clustered(40, seed=1)
    exact = EmbeddingIndex.build(x, "exact")
    truth = exact.search(q, 10)[1]
    pq = EmbeddingIndex.build(x, "ivfpq", nlist=16, nprobe=16, pq_m=8)
    assert serialized_bytes(pq.index) < serialized_bytes(exact.index) / 4  # 8 + 8 vs 128 B
    assert recall_at_k(pq.search(q, 10)[1], truth) > 0.4  # lossy codes, all cells probed
    mapped = ivfpq_on_disk(pq.index, tmp_path / "ivfpq.index")
    np.testing.assert_array_equal(mapped.search(q, 10)[1], pq.search(q, 10)[1])
    with pytest.raises(ValueError, match="pq_m=5"):
        EmbeddingIndex.build(x, "ivfpq", pq_m=5)


def test_refined_search_recovers_recall_from_vectors_on_disk(tmp_path):
    from scifm.astroclip.search import refined_search

    x, q = _clustered(2000, seed=2), _clustered(30, seed=3)
    truth = EmbeddingIndex.build(x, "exact").search(q, 10)[1]
    pq = EmbeddingIndex.build(x, "ivfpq", nlist=8, nprobe=8, pq_m=4)
    np.save(tmp_path / "x.npy", x.astype(np.float16))
    on_disk = np.load(tmp_path / "x.npy", mmap_mode="r")
    scores, ids = refined_search(pq.index, on_disk, q, k=10, candidates=200)
    assert recall_at_k(ids, truth) > max(0.9, recall_at_k(pq.search(q, 10)[1], truth))
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
