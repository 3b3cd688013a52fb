"""faiss search against brute force, HNSW recall, k-NN R^2 and retrieval metrics."""

from __future__ import annotations

import numpy as np
import pytest

from scifm.astroclip.evaluate import (
    cross_modal_recall,
    knn_r2,
    neighbour_agreement,
    random_agreement,
)
from scifm.astroclip.search import EmbeddingIndex, cosine_topk, recall_at_k


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_index_matches_numpy(rng):
    x, q = _unit(rng.normal(size=(500, 16))), _unit(rng.normal(size=(5, 16)))
    scores, ids = EmbeddingIndex.build(x, "exact").search(q, 10)
    ref = np.argsort(-(q @ x.T), axis=1)[:, :10]
    np.testing.assert_array_equal(ids, ref)
    s2, i2 = cosine_topk(q[0], x, 10)
    np.testing.assert_array_equal(i2, ref[0])
    np.testing.assert_allclose(s2, scores[0], rtol=1e-5)


def test_hnsw_recall_against_exact(rng):
    x, q = _unit(rng.normal(size=(3000, 32))), _unit(rng.normal(size=(50, 32)))
    _, exact = EmbeddingIndex.build(x, "exact").search(q, 10)
    _, approx = EmbeddingIndex.build(x, "hnsw", ef_search=128).search(q, 10)
    assert recall_at_k(approx, exact) >= 0.9
    assert recall_at_k(exact, exact) == 1.0
    with pytest.raises(ValueError, match="kind"):
        EmbeddingIndex.build(x, "annoy")


def test_masked_topk_respects_the_mask(rng):
    x = _unit(rng.normal(size=(100, 8)))
    allowed = np.zeros(100, bool)
    allowed[:5] = True
    _, ids = cosine_topk(x[50], x, 10, allowed)
    assert sorted(ids) == [0, 1, 2, 3, 4]


def test_knn_r2_finds_signal_and_not_noise(rng):
    y = rng.normal(size=600)
    informative = np.c_[y + 0.1 * rng.normal(size=600), rng.normal(size=(600, 3))]
    noise = rng.normal(size=(600, 4))
    t = {"y": y[:500]}, {"y": y[500:]}
    assert knn_r2(informative[:500], informative[500:], *t)["y"] > 0.8
    assert knn_r2(noise[:500], noise[500:], *t)["y"] < 0.2


def test_recall_and_agreement(rng):
    z = rng.uniform(0, 1, 300)
    a = _unit(np.c_[np.cos(2 * z), np.sin(2 * z), rng.normal(size=(300, 2)) * 0.01])
    assert cross_modal_recall(a, a, ks=(1,))["recall@1"] == 1.0
    near = neighbour_agreement(a, a, {"z": z}, same_set=True)["z"]
    assert near < 0.5 * random_agreement({"z": z})["z"]
