"""Evaluation of galaxy embeddings as in AstroCLIP (Parker et al. 2024, section 5).

Zero-shot: standardize embeddings and targets on the training split, k-NN
regression (k = 64, distance-weighted), R^2 on the test split. Few-shot: a small
MLP on the frozen embeddings. Retrieval (no published metric, so defined here):
recall@k of the paired object across modalities, and how well the properties of
the top-k neighbours agree with the query's, against random neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from scifm.astroclip.embed import image_features
from scifm.astroclip.search import EmbeddingIndex
from scifm.core import numpy_rng


def _xy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray):
    xs, ys = StandardScaler().fit(x_train), StandardScaler().fit(y_train[:, None])
    return (xs.transform(x_train), ys.transform(y_train[:, None]).ravel(),
            xs.transform(x_test), ys.transform(y_test[:, None]).ravel())  # fmt: skip


def _finite(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.isfinite(y_train), np.isfinite(y_test)


def knn_r2(
    x_train: np.ndarray,
    x_test: np.ndarray,
    targets_train: Mapping[str, np.ndarray],
    targets_test: Mapping[str, np.ndarray],
    *,
    k: int = 64,
) -> dict[str, float]:
    """Zero-shot R^2 per target: distance-weighted k-NN on standardized embeddings."""
    out = {}
    for name in targets_train:
        mtr, mte = _finite(targets_train[name], targets_test[name])
        a, b, c, d = _xy(x_train[mtr], targets_train[name][mtr], x_test[mte],
                         targets_test[name][mte])  # fmt: skip
        knn = KNeighborsRegressor(n_neighbors=min(k, len(a)), weights="distance").fit(a, b)
        out[name] = float(r2_score(d, knn.predict(c)))
    return out


def image_ssl_knn_r2(
    encoder: torch.nn.Module,
    images: torch.Tensor,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    targets: Mapping[str, np.ndarray],
    *,
    k: int = 64,
) -> dict[str, float]:
    """Zero-shot R^2 of a frozen image encoder's mean-pooled features (``image_features``):
    the k-NN is fitted on the rows ``train_idx`` and scored on the held-out ``test_idx``."""
    x = image_features(encoder, images)
    return knn_r2(x[train_idx], x[test_idx], {n: v[train_idx] for n, v in targets.items()},
                  {n: v[test_idx] for n, v in targets.items()}, k=k)  # fmt: skip


def few_shot_r2(
    x_train: np.ndarray,
    x_test: np.ndarray,
    targets_train: Mapping[str, np.ndarray],
    targets_test: Mapping[str, np.ndarray],
    *,
    hidden: tuple[int, ...] = (64, 64),
    seed: int = 0,
) -> dict[str, float]:
    """Few-shot R^2 per target: a small MLP trained on the frozen, standardized embeddings."""
    out = {}
    for name in targets_train:
        mtr, mte = _finite(targets_train[name], targets_test[name])
        a, b, c, d = _xy(x_train[mtr], targets_train[name][mtr], x_test[mte],
                         targets_test[name][mte])  # fmt: skip
        mlp = MLPRegressor(hidden_layer_sizes=hidden, alpha=1e-3, max_iter=300, early_stopping=True,
                           random_state=seed).fit(a, b)  # fmt: skip
        out[name] = float(r2_score(d, mlp.predict(c)))
    return out


def cross_modal_recall(queries: np.ndarray, targets: np.ndarray, ks=(1, 10, 100)) -> dict:
    """recall@k: fraction of queries i whose pair targets[i] is in their top-k (cosine)."""
    index = EmbeddingIndex.build(targets, "exact")
    _, ids = index.search(queries, max(ks))
    truth = np.arange(len(queries))[:, None]
    return {f"recall@{k}": float((ids[:, :k] == truth).any(1).mean()) for k in ks}


def neighbour_agreement(
    queries: np.ndarray,
    targets: np.ndarray,
    props: Mapping[str, np.ndarray],
    *,
    k: int = 10,
    same_set: bool = False,
) -> dict[str, float]:
    """Median |property(query) - property(neighbour)| over the top-k neighbours.

    ``same_set``: queries and targets are the same galaxies (image->image): the
    query itself is excluded.
    """
    index = EmbeddingIndex.build(targets, "exact")
    _, ids = index.search(queries, k + int(same_set))
    if same_set:
        ids = ids[:, 1:]
    return {name: float(np.nanmedian(np.abs(v[ids] - v[:, None]))) for name, v in props.items()}


def random_agreement(props: Mapping[str, np.ndarray], *, k: int = 10, seed: int = 0) -> dict:
    """The same statistic for random neighbours (the floor an embedding must beat)."""
    rng = numpy_rng(seed)
    out = {}
    for name, v in props.items():
        ids = rng.integers(0, len(v), (len(v), k))
        out[name] = float(np.nanmedian(np.abs(v[ids] - v[:, None])))
    return out
