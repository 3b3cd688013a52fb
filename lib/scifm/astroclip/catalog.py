"""The galaxy catalog served by the app: embeddings, UMAP, properties and display data.

One HDF5 file holds, per galaxy: ``targetid``, properties, AstroCLIP image and
spectrum embeddings (float16, unit norm), the joint UMAP coordinates of both
modalities (computed offline), a JPEG thumbnail and a uint8 display spectrum.
``source`` maps each row to its display row, so a scaled-up catalog (real
embeddings replicated with noise, for the 1e6 benchmarks) shares the display data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scifm.core import numpy_rng

MODALITIES = ("image", "spectrum")


@dataclass
class Catalog:
    targetid: np.ndarray  # (N,) int64
    props: dict[str, np.ndarray]  # (N,) float each; redshift first
    embeddings: dict[str, np.ndarray]  # modality -> (N, E) unit vectors (float32 in memory)
    umap: dict[str, np.ndarray]  # modality -> (N, 2) joint UMAP coordinates
    source: np.ndarray  # (N,) int: row of thumbnails / spectra for this galaxy
    thumbnails: list[bytes]  # JPEG per display row
    spectra_u8: np.ndarray  # (M, L) uint8 display spectra
    spectra_offset: np.ndarray  # (M,) float32
    spectra_scale: np.ndarray  # (M,) float32
    attrs: dict[str, Any] = field(default_factory=dict)  # bin factor, model, seeds, ...

    def __len__(self) -> int:
        return len(self.targetid)

    def has_embedding(self, modality: str) -> np.ndarray:
        """(N,) bool: the galaxy has a finite ``modality`` embedding (``astroclip embed`` writes
        NaN for a galaxy without an image or a spectrum)."""
        if not hasattr(self, "_valid"):
            self._valid = {m: np.isfinite(e).all(axis=1) for m, e in self.embeddings.items()}
        return self._valid[modality]

    def row_of(self, targetid: int) -> int | None:
        """Row index of a target id (None if absent)."""
        if not hasattr(self, "_rows"):
            self._rows = {int(t): i for i, t in enumerate(self.targetid)}
        return self._rows.get(int(targetid))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        gz = {"compression": "gzip", "compression_opts": 6, "shuffle": True}
        with h5py.File(tmp, "w") as f:
            f.create_dataset("targetid", data=self.targetid, **gz)
            f.create_dataset("source", data=self.source.astype(np.int32), **gz)
            for k, v in self.props.items():
                f.create_dataset(f"props/{k}", data=np.asarray(v, np.float32), **gz)
            for m in MODALITIES:
                f.create_dataset(f"embedding/{m}", data=self.embeddings[m].astype(np.float16), **gz)
                f.create_dataset(f"umap/{m}", data=self.umap[m].astype(np.float32), **gz)
            vlen = h5py.vlen_dtype(np.uint8)
            thumbs = f.create_dataset("thumbnails", (len(self.thumbnails),), dtype=vlen)
            for i, b in enumerate(self.thumbnails):
                thumbs[i] = np.frombuffer(b, np.uint8)
            f.create_dataset("spectra/u8", data=self.spectra_u8, **gz)
            f.create_dataset("spectra/offset", data=self.spectra_offset)
            f.create_dataset("spectra/scale", data=self.spectra_scale)
            for k, v in self.attrs.items():
                f.attrs[k] = v
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"catalog {path}: not found; make it with `python -m scifm.astroclip.assets`"
            )
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise ValueError(f"catalog {path}: not a readable HDF5 file ({err})") from None
        with f:
            need = ["targetid", "props", "source", "thumbnails", "spectra/u8", "spectra/offset",
                    "spectra/scale", *(f"{g}/{m}" for g in ("embedding", "umap")
                                       for m in MODALITIES)]  # fmt: skip
            missing = [k for k in need if k not in f]
            if missing:
                raise ValueError(
                    f"catalog {path}: not a scifm AstroCLIP catalog (missing {missing}); make "
                    "one with `python -m scifm.astroclip.assets`"
                )
            _check_shapes(f, path)
            return cls(
                targetid=f["targetid"][:].astype(np.int64),
                props={k: f["props"][k][:].astype(np.float64) for k in f["props"]},
                embeddings={m: f["embedding"][m][:].astype(np.float32) for m in MODALITIES},
                umap={m: f["umap"][m][:] for m in MODALITIES},
                source=f["source"][:].astype(np.int64),
                thumbnails=[bytes(b) for b in f["thumbnails"][:]],
                spectra_u8=f["spectra/u8"][:],
                spectra_offset=f["spectra/offset"][:],
                spectra_scale=f["spectra/scale"][:],
                attrs=dict(f.attrs),
            )


def _check_shapes(f: h5py.File, path: Path) -> None:
    """Per-galaxy datasets of one length N, embeddings (N, E) of one E, display data indexed by
    ``source`` (metadata only, no array read but ``source``)."""

    def bad(what: str) -> ValueError:
        return ValueError(f"catalog {path}: {what}; not a consistent scifm AstroCLIP catalog")

    n = f["targetid"].shape[0] if f["targetid"].ndim == 1 else -1
    if n < 1:
        raise bad(f"targetid has shape {f['targetid'].shape}; expected (N,) with N >= 1")
    if f["targetid"].dtype.kind not in "iu":  # ids are looked up exactly: 1000.5 is no id
        raise bad(f"targetid has dtype {f['targetid'].dtype}; expected integers")
    ids, counts = np.unique(f["targetid"][:], return_counts=True)
    if ids.size != n:  # a search by id would find one of several galaxies
        dup = ids[counts > 1]
        raise bad(f"targetid repeats {dup[:3].tolist()}{' ...' if dup.size > 3 else ''}")
    per_row = {"source": (n,), **{f"props/{k}": (n,) for k in f["props"]},
               **{f"umap/{m}": (n, 2) for m in MODALITIES}}  # fmt: skip
    dims = {f["embedding"][m].shape[1:] for m in MODALITIES}
    if len(dims) != 1 or any(f["embedding"][m].ndim != 2 for m in MODALITIES):
        shapes = {m: f["embedding"][m].shape for m in MODALITIES}
        raise bad(f"embeddings have shapes {shapes}; expected (N, E) with one E for both")
    e = dims.pop()[0]
    per_row.update({f"embedding/{m}": (n, e) for m in MODALITIES})
    for name, shape in per_row.items():
        if f[name].shape != shape:
            got = f[name].shape
            raise bad(f"dataset {name} has shape {got}; expected {shape} (N = {n} from targetid)")
    m_rows = f["thumbnails"].shape[0]
    for name in ("spectra/u8", "spectra/offset", "spectra/scale"):
        if f[name].shape[0] != m_rows:
            raise bad(f"dataset {name} has {f[name].shape[0]} rows; thumbnails {m_rows}")
    src = f["source"][:]
    if src.size and (src.min() < 0 or src.max() >= m_rows):
        raise bad(f"source holds rows {src.min()}..{src.max()}; display data has {m_rows}")


def joint_umap(embeddings: dict[str, np.ndarray], seed: int = 0, n_neighbors: int = 15):
    """One UMAP of both modalities together (aligned embeddings share a space)."""
    import umap

    x = np.concatenate([embeddings[m] for m in MODALITIES]).astype(np.float32)
    xy = umap.UMAP(n_neighbors=n_neighbors, metric="cosine", random_state=seed,
                   n_jobs=1).fit_transform(x)  # fmt: skip
    n = len(embeddings[MODALITIES[0]])
    return {"image": xy[:n].astype(np.float32), "spectrum": xy[n:].astype(np.float32)}


def replicate(cat: Catalog, n: int, *, noise: float = 0.05, seed: int = 0) -> Catalog:
    """A catalog of ``n`` galaxies: rows of ``cat`` repeated, embeddings and UMAP jittered.

    For scale tests (1e6 galaxies) only; ``source`` keeps pointing at the real rows.
    """
    rng = numpy_rng([seed, n])
    rows = np.arange(n) % len(cat)
    emb = {}
    for m in MODALITIES:
        e = cat.embeddings[m][rows] + noise * rng.standard_normal(
            (n, cat.embeddings[m].shape[1]), dtype=np.float32
        )
        emb[m] = e / np.linalg.norm(e, axis=1, keepdims=True)
    span = {m: np.ptp(cat.umap[m], axis=0) for m in MODALITIES}
    return Catalog(
        targetid=np.arange(n, dtype=np.int64) + 10**9,
        props={k: v[rows] for k, v in cat.props.items()},
        embeddings=emb,
        umap={
            m: cat.umap[m][rows] + 0.01 * span[m] * rng.standard_normal((n, 2)).astype(np.float32)
            for m in MODALITIES
        },
        source=cat.source[rows],
        thumbnails=cat.thumbnails,
        spectra_u8=cat.spectra_u8,
        spectra_offset=cat.spectra_offset,
        spectra_scale=cat.spectra_scale,
        attrs={**cat.attrs, "replicated_from": len(cat), "noise": noise},
    )
