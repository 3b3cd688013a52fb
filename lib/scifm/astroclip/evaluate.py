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

from scifm.astroclip.embed import image_features, spectrum_features
from scifm.astroclip.model import normalized
from scifm.astroclip.search import EmbeddingIndex
from scifm.astroclip.specformer import chunk_mask
from scifm.core import eval_mode, numpy_rng, torch_generator


def _xy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray):
    xs, ys = StandardScaler().fit(x_train), StandardScaler().fit(y_train[:, None])
    return (xs.transform(x_train), ys.transform(y_train[:, None]).ravel(),
            xs.transform(x_test), ys.transform(y_test[:, None]).ravel())  # fmt: skip


def _finite(name: str, y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a finite target; ValueError when fewer than 2 of the training or the test
    rows have one (the scaler, the regressor and R^2 need at least that many)."""
    mtr, mte = np.isfinite(y_train), np.isfinite(y_test)
    if mtr.sum() < 2 or mte.sum() < 2:
        raise ValueError(
            f"too few training/test galaxies (or no finite {name}): {int(mtr.sum())} training "
            f"and {int(mte.sum())} test galaxies with a finite {name}; need at least 2 of each"
        )
    return mtr, mte


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
        mtr, mte = _finite(name, targets_train[name], targets_test[name])
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
    return _split_knn_r2(x[train_idx], x[test_idx], targets, train_idx, test_idx, k=k)


def _split_knn_r2(
    x_train: np.ndarray,
    x_test: np.ndarray,
    targets: Mapping[str, np.ndarray],
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    k: int = 64,
) -> dict[str, float]:
    """``knn_r2`` of features already split, with the survey-wide ``targets`` split the same way."""
    return knn_r2(x_train, x_test, {n: v[train_idx] for n, v in targets.items()},
                  {n: v[test_idx] for n, v in targets.items()}, k=k)  # fmt: skip


@torch.no_grad()
def masked_val_loss(
    model: torch.nn.Module, spectra: torch.Tensor, *, seed: int = 0, batch_size: int = 256
) -> float:
    """SpecFormer's masked-modelling loss on held-out spectra, with masks fixed by ``seed``
    (the same masks at every evaluation, so the curve moves only with the weights)."""
    dev = next(model.parameters()).device
    gen = torch_generator(seed)
    total = 0.0
    with eval_mode(model):
        for i in range(0, len(spectra), batch_size):
            x = spectra[i : i + batch_size]
            mask = chunk_mask(model.config, len(x), gen)
            total += float(model.masked_loss(x.to(dev), mask.to(dev))) * len(x)
    return total / max(len(spectra), 1)


def specformer_eval(
    model: torch.nn.Module,
    spectra: torch.Tensor,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    targets: Mapping[str, np.ndarray],
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Held-out figures of a SpecFormer: ``val_loss`` (masked modelling on the ``test_idx``
    rows) and ``knn_r2_<target>`` of its frozen mean-pooled embedding (k-NN fitted on
    ``train_idx``, scored on ``test_idx``)."""
    out = {"val_loss": masked_val_loss(model, spectra[torch.from_numpy(test_idx)], seed=seed)}
    x = spectrum_features(model, spectra[torch.from_numpy(np.concatenate([train_idx, test_idx]))])
    n = len(train_idx)
    r2 = _split_knn_r2(x[:n], x[n:], targets, train_idx, test_idx)
    return out | {f"knn_r2_{k}": v for k, v in r2.items()}


def align_recall(
    model: torch.nn.Module,
    images: torch.Tensor,
    spectrum_tokens: torch.Tensor,
    *,
    batch_size: int = 256,
) -> dict[str, float]:
    """Cross-modal recall@1/10/100 of held-out pairs (images[i], spectrum_tokens[i]):
    ``recall@k`` image -> spectrum (the figure ``scifm astroclip evaluate`` reports) and
    ``s2i_recall@k`` spectrum -> image, among all the pairs given."""
    dev = next(model.parameters()).device
    with torch.no_grad(), eval_mode(model):
        a = torch.cat([normalized(model.embed_images(images[i : i + batch_size].to(dev))).cpu()
                       for i in range(0, len(images), batch_size)]).numpy()  # fmt: skip
        b = torch.cat([
            normalized(model.spectrum_head(spectrum_tokens[i : i + batch_size].to(dev).float()))
            .cpu() for i in range(0, len(images), batch_size)
        ]).numpy()  # fmt: skip
    return cross_modal_recall(a, b) | {f"s2i_{k}": v for k, v in cross_modal_recall(b, a).items()}


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
        mtr, mte = _finite(name, targets_train[name], targets_test[name])
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
