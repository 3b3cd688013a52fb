"""Similarity search over a galaxy catalog, as the app uses it (no GUI code here).

``Explorer`` answers what the "galaxies" page asks: the galaxy nearest a clicked
UMAP position, a galaxy by target id, and the top-k neighbours of a galaxy in one of
four modes (image->image, spectrum->spectrum, image->spectrum, spectrum->image;
cosine similarity as in Parker et al. 2024) restricted by property filters. Search
is exact (faiss flat inner product) up to ``exact_limit`` galaxies and IVF (or
HNSW) above;
filtered queries fall back to a masked brute-force scan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from scifm.astroclip.catalog import MODALITIES, Catalog
from scifm.astroclip.search import EmbeddingIndex, cosine_topk

MODES = {  # mode -> (query modality, searched modality)
    "image → image": ("image", "image"),
    "spectrum → spectrum": ("spectrum", "spectrum"),
    "image → spectrum": ("image", "spectrum"),
    "spectrum → image": ("spectrum", "image"),
}


@dataclass
class Neighbours:
    table: pd.DataFrame  # rank, targetid, score, row, properties
    seconds: float  # server time of the search


class Explorer:
    """Search and lookups over a ``Catalog`` (indexes built once, on first use)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        exact_limit: int = 200_000,
        approx: str = "ivf",
        nprobe: int = 64,
    ) -> None:
        self.catalog = catalog
        self.nprobe = nprobe
        self.exact_limit = exact_limit
        self.approx = approx
        self._index: dict[str, EmbeddingIndex] = {}
        self._trees: dict[str, cKDTree] = {}
        self._order: np.ndarray | None = None  # catalog rows by target id (rows_of)
        self._in_catalog: tuple[np.ndarray, np.ndarray] | None = None  # (index ids, mask)

    def index(self, modality: str) -> EmbeddingIndex:
        if modality not in self._index:
            kind = "exact" if len(self.catalog) <= self.exact_limit else self.approx
            ok = self.catalog.has_embedding(modality)  # no-data rows: zero, never returned
            vectors = np.where(ok[:, None], self.catalog.embeddings[modality], 0.0)
            self._index[modality] = EmbeddingIndex.build(
                vectors, kind, ef_search=128, nprobe=self.nprobe
            )
        return self._index[modality]

    def set_index(self, modality: str, index: EmbeddingIndex) -> None:
        """Use an index built elsewhere (e.g. loaded or shared) for ``modality``."""
        if index.ntotal != len(self.catalog):
            raise ValueError(f"index holds {index.ntotal} vectors, catalog {len(self.catalog)}")
        self._index[modality] = index

    def nearest_row(self, x: float, y: float, modality: str = "image") -> int:
        """Row of the galaxy whose UMAP point (of ``modality``) is nearest (x, y)."""
        if modality not in MODALITIES:
            raise ValueError(f"modality {modality!r}: expected one of {MODALITIES}")
        if modality not in self._trees:
            self._trees[modality] = cKDTree(self.catalog.umap[modality])
        return int(self._trees[modality].query([x, y])[1])

    def row_of(self, targetid: int | str) -> int:
        """Row of a target id; ValueError with a clear message when it is not a known id."""
        try:
            tid = int(str(targetid).strip())
        except ValueError:
            raise ValueError(f"target id {targetid!r} is not an integer") from None
        row = self.catalog.row_of(tid)
        if row is None:
            raise ValueError(f"target id {tid} is not in this catalog of {len(self.catalog)}")
        return row

    def random_row(self, rng: np.random.Generator) -> int:
        return int(rng.integers(len(self.catalog)))

    def filter_mask(self, ranges: dict[str, tuple[float, float]] | None) -> np.ndarray | None:
        """Boolean mask of galaxies inside every (lo, hi) property range (None: all)."""
        if not ranges:
            return None
        mask = np.ones(len(self.catalog), bool)
        for name, (lo, hi) in ranges.items():
            if name not in self.catalog.props:
                raise ValueError(f"filter on {name!r}: no such property; "
                                 f"have {sorted(self.catalog.props)}")  # fmt: skip
            v = self.catalog.props[name]
            mask &= (v >= lo) & (v <= hi)
        return mask

    def neighbours(
        self,
        row: int,
        mode: str = "image → image",
        k: int = 16,
        ranges: dict[str, tuple[float, float]] | None = None,
    ) -> Neighbours:
        """Top-k galaxies most similar to galaxy ``row`` (itself excluded)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {list(MODES)}")
        t0 = time.perf_counter()
        q_mod, t_mod = MODES[mode]
        if not self.catalog.has_embedding(q_mod)[row]:
            raise ValueError(
                f"target id {self.catalog.targetid[row]}: no {q_mod} embedding in this catalog "
                f"(its {q_mod} had no data); search from its other modality"
            )
        query = self.catalog.embeddings[q_mod][row]
        mask = self.filter_mask(ranges)
        if mask is None:
            scores, ids = self._indexed(t_mod, query, k, skip=row)
        else:
            mask = mask & self.catalog.has_embedding(t_mod)
            mask[row] = False
            scores, ids = cosine_topk(query, self.catalog.embeddings[t_mod], k, mask)
        return self._table(scores, ids, t0)

    def search_embedding(self, embedding: np.ndarray, modality: str, k: int = 16) -> Neighbours:
        """Top-k galaxies of ``modality`` nearest an external unit embedding (E,)."""
        t0 = time.perf_counter()
        embedding = np.asarray(embedding, np.float32).ravel()
        dim = self.catalog.embeddings[modality].shape[1]
        if embedding.shape != (dim,) or not np.isfinite(embedding).all():
            raise ValueError(f"query embedding of shape {embedding.shape}: expected {dim} finite "
                             "values")  # fmt: skip
        return self._table(*self._indexed(modality, embedding, k), t0)

    def search_redshift_index(self, index, query: np.ndarray, k: int = 16) -> Neighbours:
        """Top-k catalog galaxies nearest a query vector of a ``RedshiftIndex`` (the upload's
        k-NN redshift: the SpecFormer's segment-pooled tokens, ``astroclip/redshift_index.py``).
        An index may hold more galaxies than the catalog (every training galaxy of the split);
        only the catalog's are returned, as only they can be shown."""
        t0 = time.perf_counter()
        query = np.asarray(query, np.float32).ravel()
        if query.shape != (index.vectors.shape[1],) or not np.isfinite(query).all():
            raise ValueError(f"redshift index query: expected {index.vectors.shape[1]} finite "
                             f"numbers, got shape {query.shape}")  # fmt: skip
        shown = self.indexed_in_catalog(index)
        scores, ids = index.search(query, k, None if shown.all() else shown)
        return self._table(scores, self.rows_of(index.targetid[ids]), t0)

    def indexed_in_catalog(self, index) -> np.ndarray:
        """Boolean mask over a ``RedshiftIndex``'s galaxies: those this catalog holds. Refuses
        an index that lacks a catalog galaxy with a spectrum (it was made for another catalog)."""
        if self._in_catalog is not None and self._in_catalog[0] is index.targetid:
            return self._in_catalog[1]
        mask = np.isin(index.targetid, self.catalog.targetid)
        has = self.catalog.targetid[self.catalog.has_embedding("spectrum")]
        missing = np.setdiff1d(has, index.targetid)
        if len(missing):
            raise ValueError(
                f"the redshift index lacks {len(missing)} of this catalog's {len(has)} galaxies "
                f"with a spectrum (target ids {missing[:5].tolist()}...): it was made for "
                "another catalog"
            )
        self._in_catalog = (index.targetid, mask)
        return mask

    def rows_of(self, targetids: np.ndarray) -> np.ndarray:
        """Catalog rows of ``targetids`` (every one must be in the catalog)."""
        if self._order is None:
            self._order = np.argsort(self.catalog.targetid, kind="stable")
        ids = np.asarray(targetids, np.int64)
        sorted_ids = self.catalog.targetid[self._order]
        pos = np.searchsorted(sorted_ids, ids).clip(0, max(len(sorted_ids) - 1, 0))
        found = sorted_ids[pos] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
        if not found.all():
            raise ValueError(f"target ids {ids[~found][:5].tolist()} are not in this catalog")
        return self._order[pos]

    def _indexed(
        self, modality: str, query: np.ndarray, k: int, skip: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) from the index of ``modality``, never row ``skip`` nor a galaxy
        without an embedding (zero vectors in the index: asked for k plus as many more)."""
        ok = self.catalog.has_embedding(modality)
        extra = int((~ok).sum()) + (skip is not None)
        scores, ids = self.index(modality).search(query, k + extra)
        scores, ids = scores[0], ids[0]
        keep = (ids >= 0) & (ids != (-1 if skip is None else skip))
        keep[keep] = ok[ids[keep]]
        return scores[keep][:k], ids[keep][:k]

    def _table(self, scores: np.ndarray, ids: np.ndarray, t0: float) -> Neighbours:
        table = self.describe(ids)
        table.insert(0, "score", np.round(scores.astype(float), 4))
        table.insert(0, "rank", np.arange(1, len(ids) + 1))
        return Neighbours(table=table, seconds=time.perf_counter() - t0)

    def describe(self, rows: np.ndarray) -> pd.DataFrame:
        """Target ids and properties of catalog rows."""
        rows = np.asarray(rows, np.int64)
        cols = {"targetid": self.catalog.targetid[rows], "row": rows}
        for k, v in self.catalog.props.items():
            cols[k] = np.round(v[rows], 4)
        return pd.DataFrame(cols)

    def spectrum(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(wavelength, flux) of the galaxy's display spectrum."""
        from scifm.astroclip.display import dequantize, display_wavelength

        src = self.catalog.source[row]
        flux = dequantize(
            self.catalog.spectra_u8[src], self.catalog.spectra_offset[src],
            self.catalog.spectra_scale[src],
        )  # fmt: skip
        return display_wavelength(int(self.catalog.attrs.get("display_bin", 16))), flux

    def thumbnail(self, row: int) -> bytes:
        return self.catalog.thumbnails[self.catalog.source[row]]


def knn_redshift(neigh: Neighbours, redshift_col: str = "redshift") -> float:
    """Similarity-weighted mean redshift of the neighbours (the k-NN redshift estimate)."""
    return similarity_weighted_mean(
        neigh.table["score"].to_numpy(float), neigh.table[redshift_col].to_numpy(float)
    )


def similarity_weighted_mean(scores: np.ndarray, values: np.ndarray) -> float:
    """Mean of ``values`` weighted by the neighbours' cosine ``scores`` (floored at 1e-6)."""
    w = np.clip(np.asarray(scores, float), 1e-6, None)
    return float(np.sum(w * np.asarray(values, float)) / w.sum())
