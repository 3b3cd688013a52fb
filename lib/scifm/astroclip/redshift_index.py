"""The k-NN redshift of an uploaded spectrum: catalog spectra as the SpecFormer reads them.

The aligned AstroCLIP spectrum embedding is what the galaxies page searches with, but it
keeps redshift poorly (k-NN R^2 0.906; the contrastive loss pulls it toward what the image
can tell). The SpecFormer's own tokens, averaged in 32 contiguous wavelength segments
(``specformer.pool_tokens``, ``seg32``), keep it (0.979, ``benchmarks/results/
specformer_score.md``); reduced to their first 64 principal components they still give the
upload's estimate (cosine top-16, similarity-weighted: ``knn_redshifts``) agreement with the
template redshift for 94.8 % of 388 held-out galaxies against 41.5 % for the aligned embedding
(``benchmarks/results/redshift.md``, with every training galaxy indexed; the pooling and the 64
components were chosen on the same held-out split). 4,096 numbers a galaxy do not fit the
asset budget; 64 float16 numbers do.

A ``RedshiftIndex`` holds, for its galaxies, those 64 numbers (the principal components
fitted on training galaxies only), the PCA that makes them, their redshifts, and a
fingerprint of the SpecFormer weights it was made with: a query made with other weights is
refused (``check_model``), not silently compared. It holds every galaxy of the catalog that
has a spectrum (the page shows an upload's nearest among them) and, built with
``--training-split`` as the shipped one is, every other training galaxy of the split the
model recorded: 34,344 galaxies, 4.49 MB, where the catalog's 12,000 alone (1.96 MB) left
more uploads between too few neighbours (``benchmarks/results/redshift.md``).

    python -m scifm.astroclip.redshift_index --survey S --model assets/astroclip/model \\
        --catalog assets/astroclip/catalog.h5 --out assets/astroclip/redshift_index.h5 \\
        --training-split
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from scifm.astroclip.data import N_SPECTRUM_BINS, prepare_spectra
from scifm.astroclip.embed import model_fingerprint, spectrum_poolings
from scifm.astroclip.search import cosine_topk

FORMAT = "scifm-redshift-index"
VERSION = 1
POOLING = "seg32"  # specformer_score.md: the best SpecFormer pooling for redshift
N_COMPONENTS = 64  # redshift.md: 90.5 % agreement at 64, 89.9 % at 128, 91.0 % unreduced


@dataclass
class RedshiftIndex:
    """Catalog galaxies in the PCA of their segment-pooled SpecFormer tokens."""

    targetid: np.ndarray  # (N,) int64: the catalog galaxies indexed
    redshift: np.ndarray  # (N,) float64
    vectors: np.ndarray  # (N, d) float32, unit length (cosine search)
    mean: np.ndarray  # (D,) float32: the PCA's centre (D = segments x d_model)
    components: np.ndarray  # (d, D) float32: the PCA's axes
    pooling: str  # how the tokens were pooled (``specformer.pool_tokens``)
    encoder: str  # fingerprint of the SpecFormer weights (``embed.model_fingerprint``)
    n_fit: int  # galaxies the PCA was fitted on (the catalog's training rows)

    def __post_init__(self) -> None:
        n, d = self.vectors.shape
        if self.targetid.shape != (n,) or self.redshift.shape != (n,):
            raise ValueError(f"redshift index: {n} vectors but {self.targetid.shape} target ids "
                             f"and {self.redshift.shape} redshifts")  # fmt: skip
        if self.components.shape != (d, self.mean.shape[0]):
            raise ValueError(f"redshift index: components {self.components.shape}, expected "
                             f"({d}, {self.mean.shape[0]})")  # fmt: skip
        for name in ("vectors", "redshift", "mean", "components"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"redshift index: non-finite values in {name}")

    def __len__(self) -> int:
        return len(self.targetid)

    @classmethod
    def build(
        cls,
        model: torch.nn.Module,
        spectra: np.ndarray | torch.Tensor,
        targetid: np.ndarray,
        redshift: np.ndarray,
        fit: np.ndarray,
        *,
        n_components: int = N_COMPONENTS,
        pooling: str = POOLING,
    ) -> RedshiftIndex:
        """Index the galaxies (spectra (N, 7781) as the survey stores them, or prepared for the
        model) with the AstroCLIP ``model``'s SpecFormer; the PCA is fitted on the rows ``fit``
        (a boolean mask: the training galaxies) only."""
        from sklearn.decomposition import PCA

        fit = np.asarray(fit, bool)
        if fit.shape != (len(targetid),) or len(spectra) != len(targetid):
            raise ValueError(
                f"redshift index: {len(spectra)} spectra, {len(targetid)} target ids and a fit "
                f"mask of shape {fit.shape}; expected one each"
            )
        if n_components < 1:
            raise ValueError(
                f"redshift index: {n_components} principal components asked for "
                f"({int(fit.sum())} training galaxies); need at least one"
            )
        if fit.sum() < n_components:
            raise ValueError(
                f"redshift index: {int(fit.sum())} training galaxies to fit {n_components} "
                "principal components; need at least as many"
            )
        pooled = _pooled(model, spectra, pooling)
        pca = PCA(n_components, random_state=0).fit(pooled[fit])
        return cls(
            targetid=np.asarray(targetid, np.int64),
            redshift=np.asarray(redshift, np.float64),
            vectors=_unit(pca.transform(pooled).astype(np.float32)),
            mean=pca.mean_.astype(np.float32),
            components=pca.components_.astype(np.float32),
            pooling=pooling,
            encoder=model_fingerprint(model.spectrum_encoder),
            n_fit=int(fit.sum()),
        )

    def check_model(self, model: torch.nn.Module) -> None:
        """Refuse a model whose SpecFormer is not the one this index was made with."""
        got = model_fingerprint(model.spectrum_encoder)
        if got != self.encoder:
            raise ValueError(
                f"redshift index made with SpecFormer weights {self.encoder}, but the model's are "
                f"{got}; rebuild it with `python -m scifm.astroclip.redshift_index`"
            )

    def query(self, model: torch.nn.Module, spectra: np.ndarray | torch.Tensor) -> np.ndarray:
        """Unit query vectors (n, d) of raw spectra (n, 7781) made by ``model``."""
        self.check_model(model)
        return self.project(_pooled(model, spectra, self.pooling))

    def project(self, pooled: np.ndarray) -> np.ndarray:
        """Unit vectors (n, d) of SpecFormer tokens already pooled by ``self.pooling`` (n, D):
        the index's PCA, then unit length (what ``query`` does after the encoder's pass)."""
        pooled = np.asarray(pooled, np.float32)
        if pooled.ndim != 2 or pooled.shape[1] != self.mean.shape[0]:
            raise ValueError(f"redshift index: pooled tokens of shape {pooled.shape}; expected "
                             f"(n, {self.mean.shape[0]}) ({self.pooling})")  # fmt: skip
        return _unit((pooled - self.mean) @ self.components.T)

    def search(
        self, query: np.ndarray, k: int = 16, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (cosine scores, index rows) of one unit query vector (d,)."""
        return cosine_topk(query, self.vectors, k, allowed)

    def save(self, path: str | Path) -> Path:
        """Write the index to ``path`` (through a temporary file: a failed write leaves an
        existing index whole)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        gz = {"compression": "gzip", "compression_opts": 6, "shuffle": True}
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs.update(format=FORMAT, version=VERSION, pooling=self.pooling,
                               encoder=self.encoder, n_fit=self.n_fit)  # fmt: skip
                f.create_dataset("targetid", data=self.targetid, **gz)
                f.create_dataset("redshift", data=self.redshift.astype(np.float32), **gz)
                f.create_dataset("vectors", data=self.vectors.astype(np.float16), **gz)
                f.create_dataset("pca/mean", data=self.mean, **gz)
                f.create_dataset("pca/components", data=self.components.astype(np.float16), **gz)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RedshiftIndex:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"redshift index {path}: not found")
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise ValueError(f"redshift index {path}: not a readable HDF5 file ({err})") from None
        with f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"redshift index {path}: attribute format="
                                 f"{f.attrs.get('format')!r}; expected {FORMAT!r}")  # fmt: skip
            missing = [k for k in ("targetid", "redshift", "vectors", "pca/mean",
                                   "pca/components") if k not in f]  # fmt: skip
            if missing:
                raise ValueError(f"redshift index {path}: missing {missing}")
            try:
                return cls(
                    targetid=f["targetid"][:].astype(np.int64),
                    redshift=f["redshift"][:].astype(np.float64),
                    vectors=f["vectors"][:].astype(np.float32),
                    mean=f["pca/mean"][:].astype(np.float32),
                    components=f["pca/components"][:].astype(np.float32),
                    pooling=str(f.attrs["pooling"]),
                    encoder=str(f.attrs["encoder"]),
                    n_fit=int(f.attrs["n_fit"]),
                )
            except (ValueError, KeyError) as err:
                why = str(err).removeprefix("redshift index: ")
                raise ValueError(f"redshift index {path}: {why}") from None


def knn_redshifts(
    index: RedshiftIndex,
    model: torch.nn.Module,
    spectra: np.ndarray,
    *,
    k: int = 16,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """The galaxies page's k-NN redshift of each raw spectrum (n, 7781): the similarity-weighted
    mean redshift (``explore.similarity_weighted_mean``) of its top-``k`` indexed galaxies by
    cosine. ``exclude``: target ids never taken as neighbours (a query galaxy that is itself in
    the catalog must not find itself). NaN for a spectrum that gives no finite vector."""
    if k < 1:
        raise ValueError(f"k = {k}: need at least one neighbour")
    return knn_of_vectors(index, index.query(model, spectra), k=k, exclude=exclude)


def knn_of_vectors(
    index: RedshiftIndex, vectors: np.ndarray, *, k: int = 16, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``knn_redshifts`` of query vectors already made (``RedshiftIndex.query``)."""
    from scifm.astroclip.explore import similarity_weighted_mean

    if k < 1:
        raise ValueError(f"k = {k}: need at least one neighbour")
    allowed = None
    if exclude is not None:
        allowed = ~np.isin(index.targetid, np.asarray(exclude, np.int64))
        if not allowed.any():
            raise ValueError("redshift index: every indexed galaxy is excluded")
    out = np.full(len(vectors), np.nan)
    for i, v in enumerate(vectors):
        if np.isfinite(v).all() and np.linalg.norm(v) > 0:
            scores, ids = index.search(v, k, allowed)
            out[i] = similarity_weighted_mean(scores, index.redshift[ids])
    return out


def load_for_assets(root: str | Path) -> tuple[torch.nn.Module, RedshiftIndex]:
    """The AstroCLIP model (``root/model``) and redshift index (``root/redshift_index.h5``) of
    an asset folder such as ``assets/astroclip``; the index is checked against the model."""
    from scifm.astroclip.config import AstroClipConfig
    from scifm.core import load_model

    root = Path(root)
    if not (root / "model").is_dir():
        raise FileNotFoundError(f"asset folder {root}: no AstroCLIP model folder 'model'")
    index = RedshiftIndex.load(root / "redshift_index.h5")
    model = load_model(root / "model", "cpu", expect_config=AstroClipConfig)[1]
    index.check_model(model)
    return model, index


def _pooled(model: torch.nn.Module, spectra: np.ndarray | torch.Tensor, pooling: str) -> np.ndarray:
    """Pooled SpecFormer tokens of spectra on the DESI grid (N, 7781), or already prepared
    for the model (N, n_bins: ``data.prepare_spectra``, as ``pipeline.Prepared`` holds them)."""
    cfg = model.config.spectrum
    width = spectra.shape[-1]
    if width == N_SPECTRUM_BINS:
        x = prepare_spectra(np.asarray(spectra), cfg)
    elif width == cfg.n_bins and spectra.ndim == 2:
        x = torch.as_tensor(spectra, dtype=torch.float32)
    else:
        raise ValueError(f"spectra of shape {tuple(spectra.shape)}: expected (N, "
                         f"{N_SPECTRUM_BINS}) on the DESI grid or (N, {cfg.n_bins}) prepared "
                         "for the model")  # fmt: skip
    return spectrum_poolings(model.spectrum_encoder, x, [pooling])[pooling]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def build_for_catalog(
    survey: str | Path,
    model: torch.nn.Module,
    catalog_path: str | Path,
    *,
    split_of: str | Path | None = None,
    **kw,
) -> RedshiftIndex:
    """The index of a catalog's galaxies that have a spectrum, read back by target id from the
    survey file it was cut from; the PCA fitted on its training rows (``props/is_test`` 0, or
    every row of a catalog that records no split).

    ``split_of``: a model checkpoint whose recorded split (``splits.model_split``) covers
    ``survey``; every training galaxy of that split is indexed too (the catalog shows a
    subset; more neighbours place an upload's redshift better, ``benchmarks/results/
    redshift.md``), and its test galaxies are kept out of the PCA fit. A test galaxy is indexed
    only if the catalog shows it (the page's search then finds it, as before)."""
    from scifm.astroclip.catalog import Catalog
    from scifm.survey.io import read_spectra

    cat = Catalog.load(catalog_path)
    with h5py.File(survey, "r") as f:
        ids = np.asarray(f["targetid"][:], np.int64)
    keep = cat.has_embedding("spectrum")
    want = np.isin(ids, cat.targetid[keep])
    if int(want.sum()) != int(keep.sum()):
        raise ValueError(
            f"{survey}: holds {int(want.sum())} of the catalog's {int(keep.sum())} galaxies "
            "with spectra; the catalog was cut from another survey"
        )
    test = cat.props.get("is_test")
    test_ids = cat.targetid[np.asarray(test) == 1] if test is not None else ids[:0]
    if split_of is not None:
        from scifm.astroclip.splits import model_split

        train, held, _ = model_split(split_of, ids, source=str(survey))
        want[train] = True
        test_ids = np.union1d(test_ids, ids[held])
    rows = np.flatnonzero(want)  # increasing survey rows
    d = read_spectra(survey, rows)
    tid = np.asarray(d["targetid"], np.int64)
    return RedshiftIndex.build(model, d["spectra"], tid, d["redshift"], ~np.isin(tid, test_ids),
                               **kw)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scifm.astroclip.redshift_index",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--survey", required=True, help="the survey file the catalog was cut from")
    p.add_argument("--model", default="assets/astroclip/model", help="AstroCLIP checkpoint")
    p.add_argument("--catalog", default="assets/astroclip/catalog.h5")
    p.add_argument("--out", default="assets/astroclip/redshift_index.h5")
    p.add_argument("--components", type=int, default=N_COMPONENTS)
    p.add_argument("--pooling", default=POOLING)
    p.add_argument("--training-split", action="store_true",
                   help="also index every training galaxy of the split recorded with --model "
                        "(the shipped index; its test galaxies only where the catalog shows "
                        "them)")  # fmt: skip
    args = p.parse_args(argv)
    from scifm.astroclip.config import AstroClipConfig
    from scifm.core import load_model

    try:
        model = load_model(args.model, "cpu", expect_config=AstroClipConfig)[1]
        beside = Path(args.out).parent / "model"  # the page pairs the index with this model
        if beside.is_dir() and beside.resolve() != Path(args.model).resolve():
            other = load_model(beside, "cpu", expect_config=AstroClipConfig)[1]
            if model_fingerprint(other.spectrum_encoder) != model_fingerprint(
                model.spectrum_encoder
            ):
                raise ValueError(f"--out {args.out}: the model beside it ({beside}) has other "
                                 f"SpecFormer weights than --model {args.model}; the page "
                                 "would refuse this index")  # fmt: skip
        index = build_for_catalog(args.survey, model, args.catalog,
                                  split_of=args.model if args.training_split else None,
                                  n_components=args.components, pooling=args.pooling)  # fmt: skip
        out = index.save(args.out)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = {"out": str(out), "n": len(index), "n_fit": index.n_fit,
              "components": int(index.vectors.shape[1]), "pooling": index.pooling,
              "encoder": index.encoder, "bytes": out.stat().st_size}  # fmt: skip
    _record_in_manifest(out, record, argv)
    print(json.dumps(record))
    return 0


def _record_in_manifest(out: Path, record: dict, argv: list[str] | None) -> None:
    """Note the index in the asset folder's ``MANIFEST.json`` (when it has one): how it was
    made, and the folder's file sizes with it."""
    manifest = out.parent / "MANIFEST.json"
    if not manifest.is_file():
        return
    import time

    m = json.loads(manifest.read_text())
    args = sys.argv[1:] if argv is None else argv
    m["redshift_index"] = {
        "command": " ".join(["python -m scifm.astroclip.redshift_index", *args]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        **{k: v for k, v in record.items() if k != "out"},
    }
    m.setdefault("files", {})[out.name] = record["bytes"]
    m["total_mb"] = round(sum(m["files"].values()) / 2**20, 2)  # MiB, as assets.py writes it
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps(m, indent=2) + "\n")
    tmp.replace(manifest)


if __name__ == "__main__":
    raise SystemExit(main())
