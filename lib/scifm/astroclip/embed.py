"""Batch inference: embed galaxies with a trained AstroCLIP model, in memory or to a file.

``embed_file`` reads a survey file chunk by chunk (the 152 x 152 cutouts of a big
survey do not fit in memory), writes both modalities' embeddings to an HDF5 file
as it goes and records how far it got, so an interrupted run resumes where it
stopped. Embeddings are L2-normalized: cosine similarity is an inner product.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from scifm.astroclip.data import Galaxies, prepare_images, prepare_spectra
from scifm.astroclip.model import AstroClip, normalized
from scifm.astroclip.specformer import pool_tokens
from scifm.core import autocast, eval_mode


@torch.no_grad()
def embed_arrays(
    model: AstroClip,
    images: torch.Tensor | None,
    spectra: torch.Tensor | None,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> dict[str, np.ndarray]:
    """Normalized embeddings (N, E) float32 of prepared images and/or spectra."""
    model.eval().to(device)
    out: dict[str, np.ndarray] = {}
    for name, x, fn in (
        ("image", images, model.embed_images),
        ("spectrum", spectra, model.embed_spectra),
    ):
        if x is None:
            continue
        parts = []
        for i in range(0, len(x), batch_size):
            with autocast(torch.device(device)):
                parts.append(normalized(fn(x[i : i + batch_size].to(device))).cpu())
        out[name] = torch.cat(parts).numpy() if parts else np.zeros((0, model.config.embed_dim))
    return out


@torch.no_grad()
def encoder_features(
    model: AstroClip, images: torch.Tensor, spectra: torch.Tensor, *, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Mean-pooled frozen-encoder features (the 'encoder alone' baselines), float32."""
    model.eval()
    dev = next(model.parameters()).device
    img = [model.image_encoder.embed(images[i : i + batch_size].to(dev)).cpu()
           for i in range(0, len(images), batch_size)]  # fmt: skip
    spec = [model.spectrum_encoder.embed(spectra[i : i + batch_size].to(dev)).cpu()
            for i in range(0, len(spectra), batch_size)]  # fmt: skip
    return {"image": torch.cat(img).numpy(), "spectrum": torch.cat(spec).numpy()}


@torch.no_grad()
def _pooled_features(encoder: torch.nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """``encoder.embed`` (mean-pooled tokens, (N, d_model) float32) in batches, on the
    encoder's device in eval mode; its train/eval mode is kept."""
    dev = next(encoder.parameters()).device
    with eval_mode(encoder):
        parts = [encoder.embed(x[i : i + batch_size].to(dev)).float().cpu()
                 for i in range(0, len(x), batch_size)]  # fmt: skip
    return torch.cat(parts).numpy() if parts else np.zeros((0, encoder.config.d_model), "f4")


def image_features(
    encoder: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 256
) -> np.ndarray:
    """Mean-pooled tokens (N, d_model) float32 of a bare ``ImageEncoder`` (the 'image SSL
    alone' embedding)."""
    return _pooled_features(encoder, images, batch_size)


def spectrum_features(
    encoder: torch.nn.Module, spectra: torch.Tensor, *, batch_size: int = 256, pooling: str = "mean"
) -> np.ndarray:
    """Pooled tokens float32 of a bare ``SpecFormer``; the default mean-pooled (N, d_model) is
    the 'SpecFormer alone' embedding (``specformer.pool_tokens`` for the others)."""
    return spectrum_poolings(encoder, spectra, (pooling,), batch_size=batch_size)[pooling]


@torch.no_grad()
def spectrum_poolings(
    encoder: torch.nn.Module, spectra: torch.Tensor, poolings: Sequence[str], *,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Several poolings of one pass of a bare ``SpecFormer``: {pooling: (N, D) float32}."""
    c = encoder.config  # a bad name fails here, before the pass; its width sizes an empty N
    dims = {p: pool_tokens(torch.zeros(1, c.n_tokens + 1, c.d_model), p).shape[1] for p in poolings}
    dev = next(encoder.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {p: [] for p in poolings}
    with eval_mode(encoder):
        for i in range(0, len(spectra), batch_size):
            tokens = encoder(spectra[i : i + batch_size].to(dev)).float()
            for p in poolings:
                parts[p].append(pool_tokens(tokens, p).cpu())
    return {p: torch.cat(v).numpy() if v else np.zeros((0, dims[p]), "f4")
            for p, v in parts.items()}  # fmt: skip


EMBED_FORMAT = "scifm-astroclip-embeddings"


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (16 hex digits) of a model's parameters and buffers: which weights embedded."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def embed_file(
    model: AstroClip,
    fetch: Callable[[int, int], Galaxies],
    n: int,
    out_path: str | Path,
    *,
    chunk: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = True,
    source: str = "",
) -> Path:
    """Embed galaxies ``fetch(start, stop)`` for 0..n into ``out_path`` (HDF5), resumably.

    The file holds ``image`` and ``spectrum`` (N, E) float32, ``targetid`` (N,), the flags
    ``image_ok`` and ``spectrum_ok`` (N,) bool and the attributes ``format``, ``n``,
    ``n_done``, ``model`` (``model_fingerprint``) and ``source`` (what was embedded, e.g. the
    survey path). A galaxy whose cutout crop or spectrum holds no data (every value the model
    would see NaN, inf or 0: off the imaging footprint, a failed fibre), or values so large
    that the model gives no finite embedding (``embedded_ok``), is flagged False and its
    embedding of that modality is NaN, never a normal-looking vector made of zero-filled
    input. A rerun with the same model, source and ``n`` continues from ``n_done``; any other
    existing file is refused, never written into.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    e, fp = model.config.embed_dim, model_fingerprint(model)
    if out_path.exists():
        _check_resumable(out_path, n, e, fp, source)
    with h5py.File(out_path, "a") as f:
        if "image" not in f:
            for name in ("image", "spectrum"):
                f.create_dataset(name, (n, e), "f4", chunks=(min(chunk, max(n, 1)), e))
            f.create_dataset("targetid", (n,), "i8")
            f.attrs.update(format=EMBED_FORMAT, n=n, n_done=0, model=fp, source=source)
        for name in ("image_ok", "spectrum_ok"):
            if name not in f:  # a file begun before the flags: its done rows were not checked
                f.create_dataset(name, data=np.ones(n, bool))
        start = int(f.attrs["n_done"])
        bar = tqdm(total=n, initial=start, disable=not progress, desc="embed", unit="gal")
        for lo in range(start, n, chunk):
            hi = min(n, lo + chunk)
            g = fetch(lo, hi)
            x = {"image": prepare_images(g.images, model.config.image),
                 "spectrum": prepare_spectra(g.spectra, model.config.spectrum)}  # fmt: skip
            emb = embed_arrays(model, x["image"], x["spectrum"], device=device)
            for name in ("image", "spectrum"):
                ok = embedded_ok(x[name], emb[name])
                emb[name][~ok] = np.nan
                f[name][lo:hi], f[f"{name}_ok"][lo:hi] = emb[name], ok
            f["targetid"][lo:hi] = g.targetid
            f.attrs["n_done"] = hi  # written last: a crash mid-chunk redoes the chunk
            f.flush()
            bar.update(hi - lo)
        bar.close()
    return out_path


def has_data(x: torch.Tensor) -> np.ndarray:
    """(N,) bool: each prepared row (``prepare_images``/``prepare_spectra``: the crop and
    bins the model sees, non-finite values already zeroed) holds a non-zero value and only
    finite values."""
    x = x.flatten(1)
    return (x.ne(0).any(1) & x.isfinite().all(1)).numpy()


def embedded_ok(x: torch.Tensor, emb: np.ndarray) -> np.ndarray:
    """(N,) bool: ``has_data`` of the prepared rows ``x`` and a finite embedding (N, E) of
    each (values near the float32 limit, e.g. 3e38, overflow inside the model to NaN)."""
    return has_data(x) & np.isfinite(emb).all(1)


def embedding_summary(path: str | Path) -> dict[str, int]:
    """Galaxies embedded so far and how many of them had no image or no spectrum."""
    with h5py.File(path, "r") as f:
        done = int(f.attrs["n_done"])
        out = {"n_done": done}
        for name in ("image", "spectrum"):
            if f"{name}_ok" in f:
                out[f"no_{name}"] = int(done - f[f"{name}_ok"][:done].sum())
    return out


def _check_resumable(path: Path, n: int, e: int, fp: str, source: str) -> None:
    """Raise unless ``path`` is an embedding file of this model, source and size."""
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            shape = f["image"].shape if "image" in f else None
    except OSError as err:
        raise ValueError(f"{path}: exists and is not an HDF5 file ({err}); choose another "
                         "output path") from None  # fmt: skip
    if attrs.get("format") != EMBED_FORMAT:
        raise ValueError(f"{path}: exists and is not a scifm embedding file (format="
                         f"{attrs.get('format')!r}); choose another output path")  # fmt: skip
    theirs = {"n": int(attrs.get("n", -1)), "shape": shape, "model": attrs.get("model"),
              "source": attrs.get("source")}  # fmt: skip
    mine = {"n": n, "shape": (n, e), "model": fp, "source": source}
    diff = {k: (theirs[k], mine[k]) for k in mine if theirs[k] != mine[k]}
    if diff:
        raise ValueError(f"{path}: holds embeddings of another run (file vs this call: {diff}); "
                         "delete it or choose another output path")  # fmt: skip


def read_embeddings(path: str | Path) -> dict[str, np.ndarray]:
    """The finished embeddings of ``embed_file`` (raises if the run is incomplete)."""
    with h5py.File(path, "r") as f:
        n, done = int(f.attrs["n"]), int(f.attrs["n_done"])
        if done < n:
            raise ValueError(f"{path}: only {done} of {n} galaxies embedded; rerun to resume")
        keys = ("image", "spectrum", "targetid", "image_ok", "spectrum_ok")
        return {k: f[k][:] for k in keys if k in f}  # files before the flags lack them
