"""Nearest-neighbour search over galaxy embeddings with faiss.

Cosine similarity of L2-normalized embeddings is an inner product, so the exact
search is ``IndexFlatIP`` (fine up to ~1e5 galaxies) and the approximate one is
HNSW, IVF or IVF-PQ on the inner product (Stein et al. 2021 serve 42M galaxies with
faiss). IVF-PQ compresses each vector to ``pq_m`` bytes and can stay on disk
(``ivfpq_on_disk``), the path to 1e8 galaxies. ``recall_at_k`` measures the
approximate index against the exact one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("exact", "hnsw", "ivf", "ivfpq")


@dataclass
class EmbeddingIndex:
    """A faiss index over (N, E) unit vectors; ``search`` returns (scores, ids) (Q, k)."""

    kind: str
    index: object  # faiss.Index
    build_seconds: float

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: str = "exact",
        *,
        m: int = 32,
        ef_search: int = 64,
        ef_construction: int = 80,
        nlist: int | None = None,
        nprobe: int = 16,
        pq_m: int = 32,
    ) -> EmbeddingIndex:
        """``m``/``ef_search``/``ef_construction``: HNSW graph degree and search/build beams;
        ``nlist``/``nprobe``: IVF cells (default ~sqrt(N), trained on 40 per cell) and cells
        scanned per query; ``pq_m``: bytes per IVF-PQ code (8-bit sub-quantizers)."""
        import faiss

        if kind not in KINDS:
            raise ValueError(f"index kind {kind!r}: expected one of {KINDS}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"vectors have shape {x.shape}; expected a non-empty (N, E) array")
        t0 = time.perf_counter()
        if kind == "exact":
            index = faiss.IndexFlatIP(x.shape[1])
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
        else:
            cells = nlist or max(1, min(len(x) // 39, int(np.sqrt(len(x)))))
            if kind == "ivfpq" and x.shape[1] % pq_m:
                raise ValueError(f"pq_m={pq_m} must divide the embedding dimension {x.shape[1]}")
            codes = "Flat" if kind == "ivf" else f"PQ{pq_m}"
            index = faiss.index_factory(
                x.shape[1], f"IVF{cells},{codes}", faiss.METRIC_INNER_PRODUCT
            )
            if kind == "ivfpq":  # the factory turns it on; it costs minutes and is unused here
                index.do_polysemous_training = False
            sample = x[np.random.default_rng(0).permutation(len(x))[: max(40 * cells, 256 * 39)]]
            index.train(sample)
            faiss.extract_index_ivf(index).nprobe = nprobe
        index.add(x)
        return cls(kind=kind, index=index, build_seconds=time.perf_counter() - t0)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)  # type: ignore[attr-defined]

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, self.ntotal)
        return self.index.search(q, k)  # type: ignore[attr-defined]


def serialized_bytes(index: object) -> int:
    """Size of a faiss index as written to a file (its memory, for flat, IVF and PQ codes)."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def ivfpq_on_disk(index: object, path: str | Path) -> object:
    """Write an IVF index to ``path`` and read it back memory-mapped (lists stay on disk)."""
    import faiss

    faiss.write_index(index, str(path))
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP)


def refined_search(
    index: object, vectors: np.ndarray, queries: np.ndarray, k: int = 10, candidates: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` by exact inner product among the index's top-``candidates`` (re-ranking).

    ``vectors`` (N, E) may be a memory-mapped array on disk (float16 or float32): only the
    candidates' rows are read, so compressed codes in RAM and full vectors on disk together
    recover the recall that PQ codes alone lose.
    """
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    _, cand = index.search(q, candidates)  # type: ignore[attr-defined]
    scores = np.full(cand.shape, -np.inf, np.float32)
    for i, row in enumerate(cand):
        ok = row >= 0
        scores[i, ok] = (
            np.asarray(vectors[np.sort(row[ok])], np.float32)[np.argsort(np.argsort(row[ok]))]
            @ q[i]
        )
    order = np.argsort(-scores, axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean fraction of the exact top-k found in the approximate top-k (rows are queries)."""
    if approx_ids.shape != exact_ids.shape:
        raise ValueError(f"id arrays differ in shape: {approx_ids.shape} vs {exact_ids.shape}")
    hits = [len(np.intersect1d(a, e)) for a, e in zip(approx_ids, exact_ids)]
    return float(np.mean(hits) / exact_ids.shape[1])


def cosine_topk(
    query: np.ndarray, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k by cosine (unit vectors), optionally within a boolean mask."""
    scores = vectors @ np.asarray(query, np.float32).ravel()
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    return scores[top].astype(np.float32), top.astype(np.int64)
