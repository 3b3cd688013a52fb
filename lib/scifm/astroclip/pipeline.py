"""The whole AstroCLIP pipeline on a survey: prepare, pretrain both encoders, align, catalog.

``prepare`` reads a survey chunk by chunk into what the models see (cropped, pooled
images; binned spectra), what the app shows (JPEG thumbnails, uint8 spectra) and the
photometry the baselines get (measured on the full cutouts, ``baselines.measured_photometry``),
cached as one compressed npz. ``run_pipeline`` trains the three stages on the
training split (each stage resumable in its own folder) and ``make_catalog`` embeds
every galaxy and adds the joint UMAP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from scifm.astroclip.baselines import measured_photometry
from scifm.astroclip.catalog import Catalog, joint_umap
from scifm.astroclip.config import AstroClipConfig
from scifm.astroclip.data import (
    Galaxies,
    load_galaxies,
    prepare_images,
    prepare_spectra,
    split_indices,
    toy_survey,
)
from scifm.astroclip.display import jpeg_thumbnails, quantize_spectra
from scifm.astroclip.embed import embed_arrays
from scifm.astroclip.model import AstroClip
from scifm.astroclip.train import align, pretrain_image, pretrain_spectrum
from scifm.core import TrainConfig
from scifm.core.train import StepCallback

DISPLAY_BIN = 16  # display spectra: 16 x 0.8 A = 12.8 A bins
DEFAULT_PROPS = ("redshift", "log_mstar", "log_ssfr", "log_z", "age")


@dataclass
class Prepared:
    images: torch.Tensor  # (N, 3, s, s) float32 nanomaggies, cropped + pooled
    spectra: torch.Tensor  # (N, n_bins) float32
    targetid: np.ndarray  # (N,) int64
    props: dict[str, np.ndarray]  # (N,) each
    thumbnails: list[bytes]  # JPEG per galaxy
    spectra_u8: np.ndarray  # (N, L) uint8 display spectra
    spectra_offset: np.ndarray  # (N,)
    spectra_scale: np.ndarray  # (N,)
    # (N, 6) g, r, z aperture asinh magnitudes then their errors, measured on the cutouts;
    # None in a cache written before it existed (prepare the survey again)
    photometry: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.targetid)

    def take(self, rows: np.ndarray) -> Prepared:
        """The galaxies at ``rows`` (in that order), every per-galaxy field with them."""
        rows = np.asarray(rows, np.int64)
        if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= len(self))):
            raise ValueError(f"rows: expected 1-D indices in [0, {len(self)}), got {rows.shape}")
        t = torch.from_numpy(rows)
        return Prepared(
            images=self.images[t], spectra=self.spectra[t], targetid=self.targetid[rows],
            props={k: v[rows] for k, v in self.props.items()},
            thumbnails=[self.thumbnails[i] for i in rows], spectra_u8=self.spectra_u8[rows],
            spectra_offset=self.spectra_offset[rows], spectra_scale=self.spectra_scale[rows],
            photometry=None if self.photometry is None else self.photometry[rows],
        )  # fmt: skip

    def save(self, path: Path) -> None:
        sizes = np.array([len(b) for b in self.thumbnails], np.int64)
        np.savez_compressed(
            path, images=self.images.numpy(), spectra=self.spectra.numpy(),
            targetid=self.targetid, thumb_bytes=np.frombuffer(b"".join(self.thumbnails), np.uint8),
            thumb_sizes=sizes, spectra_u8=self.spectra_u8, spectra_offset=self.spectra_offset,
            spectra_scale=self.spectra_scale, **{f"prop_{k}": v for k, v in self.props.items()},
            **({} if self.photometry is None else {"photometry": self.photometry}),
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> Prepared:
        with np.load(path) as z:
            ends = np.cumsum(z["thumb_sizes"])
            raw = z["thumb_bytes"].tobytes()
            thumbs = [raw[e - s : e] for s, e in zip(z["thumb_sizes"], ends)]
            return cls(
                images=torch.from_numpy(z["images"]), spectra=torch.from_numpy(z["spectra"]),
                targetid=z["targetid"], thumbnails=thumbs, spectra_u8=z["spectra_u8"],
                spectra_offset=z["spectra_offset"], spectra_scale=z["spectra_scale"],
                props={k[5:]: z[k] for k in z.files if k.startswith("prop_")},
                photometry=z["photometry"] if "photometry" in z.files else None,
            )  # fmt: skip


MAX_TOY = 20_000  # toy galaxies: about 0.3 MB of arrays each, 6 GB at this size


def survey_fetcher(source: str | Path) -> tuple[Callable[[int, int], Galaxies], int]:
    """``(fetch(start, stop), n)`` for a survey file, or ``toy:N`` for the toy survey."""
    s = str(source)
    if s.startswith("toy:"):
        n = int(s[4:]) if s[4:].isdigit() else 0
        if not 1 <= n <= MAX_TOY:
            raise ValueError(f"--survey {s!r}: expected toy:N with 1 <= N <= {MAX_TOY}")
        return (lambda a, b: _toy_slice(n, a, b)), n
    from scifm.survey.io import survey_info

    # A generated survey or the released AstroCLIP file (groups "0".."9"); errors name the file.
    n = survey_info(s)["n"]
    return (lambda a, b: load_galaxies(s, a, b)), n


def _toy_slice(n: int, a: int, b: int) -> Galaxies:
    g = toy_survey(n, seed=0)
    return Galaxies(g.images[a:b], g.spectra[a:b], g.redshift[a:b], g.targetid[a:b],
                    {k: v[a:b] for k, v in g.props.items()})  # fmt: skip


def prepare(
    fetch: Callable[[int, int], Galaxies],
    n: int,
    cfg: AstroClipConfig,
    *,
    chunk: int = 512,
    progress: bool = True,
) -> Prepared:
    """Read galaxies 0..n in chunks into model inputs and display data."""
    parts: dict[str, list] = {k: [] for k in ("im", "sp", "tid", "th", "u8", "off", "sc", "ph")}
    props: dict[str, list] = {}
    for lo in tqdm(range(0, n, chunk), disable=not progress, desc="prepare"):
        g = fetch(lo, min(n, lo + chunk))
        parts["im"].append(prepare_images(g.images, cfg.image))
        parts["sp"].append(prepare_spectra(g.spectra, cfg.spectrum))
        parts["tid"].append(g.targetid)
        parts["ph"].append(np.concatenate(measured_photometry(g.images), 1))
        parts["th"].extend(jpeg_thumbnails(g.images))
        u8, off, sc = quantize_spectra(g.spectra, DISPLAY_BIN)
        parts["u8"].append(u8), parts["off"].append(off), parts["sc"].append(sc)
        for k, v in g.properties().items():
            props.setdefault(k, []).append(np.asarray(v, np.float64))
    return Prepared(
        images=torch.cat(parts["im"]), spectra=torch.cat(parts["sp"]),
        targetid=np.concatenate(parts["tid"]),
        props={k: np.concatenate(v) for k, v in props.items()},
        thumbnails=parts["th"], spectra_u8=np.concatenate(parts["u8"]),
        spectra_offset=np.concatenate(parts["off"]), spectra_scale=np.concatenate(parts["sc"]),
        photometry=np.concatenate(parts["ph"]) if parts["ph"] else np.zeros((0, 6)),
    )  # fmt: skip


@dataclass(frozen=True)
class StagePlan:
    """Steps and batch sizes of the three stages (a CPU plan by default)."""

    image_steps: int = 400  # MoCo optimizer steps
    image_batch: int = 128
    spectrum_steps: int = 300  # masked-modelling steps
    spectrum_batch: int = 64
    align_steps: int = 500  # InfoNCE steps
    align_batch: int = 128
    lr: float = 1e-3  # peak lr of the pretraining stages
    align_lr: float = 5e-4  # peak lr of the heads

    def train_config(self, stage: str, progress: bool = True) -> TrainConfig:
        steps = getattr(self, f"{stage}_steps")
        lr = self.align_lr if stage == "align" else self.lr
        return TrainConfig(steps=steps, lr=lr, warmup_steps=max(1, steps // 20),
                           weight_decay=0.05, log_every=max(1, steps // 20),
                           ckpt_every=max(1, steps // 4), progress=progress)  # fmt: skip


STAGE_DIRS = {"image": "image_ssl", "spectrum": "specformer", "align": "astroclip"}  # in work_dir


def run_pipeline(
    data: Prepared,
    cfg: AstroClipConfig,
    plan: StagePlan,
    work_dir: str | Path,
    *,
    train_idx: np.ndarray,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = True,
    callback: StepCallback | None = None,
) -> tuple[AstroClip, dict[str, list]]:
    """Train the three stages on ``train_idx``; checkpoints in ``work_dir/<stage>``;
    ``callback(record)`` after each logged step, the record's ``stage`` naming the stage."""
    work = Path(work_dir)

    def tagged(stage: str) -> StepCallback | None:
        return None if callback is None else lambda r: callback({**r, "stage": stage})

    t = torch.from_numpy(np.asarray(train_idx))
    images, spectra = data.images[t], data.spectra[t]
    ssl, r1 = pretrain_image(images, cfg.image, plan.train_config("image", progress),
                             batch_size=plan.image_batch, device=device,
                             out_dir=work / STAGE_DIRS["image"], seed=seed,
                             callback=tagged("image"))  # fmt: skip
    spec, r2 = pretrain_spectrum(spectra, cfg.spectrum, plan.train_config("spectrum", progress),
                                 batch_size=plan.spectrum_batch, device=device,
                                 out_dir=work / STAGE_DIRS["spectrum"], seed=seed,
                                 callback=tagged("spectrum"))  # fmt: skip
    model, r3 = align(images, spectra, cfg, ssl.cpu(), spec.cpu(),
                      plan.train_config("align", progress), batch_size=plan.align_batch,
                      device=device, out_dir=work / STAGE_DIRS["align"], seed=seed,
                      callback=tagged("align"))  # fmt: skip
    return model, {"image": r1.history, "spectrum": r2.history, "align": r3.history}


def make_catalog(
    model: AstroClip,
    data: Prepared,
    *,
    test_idx: np.ndarray,
    device: torch.device | str = "cpu",
    seed: int = 0,
    attrs: dict[str, Any] | None = None,
) -> Catalog:
    """Embed every prepared galaxy, project both modalities with one UMAP, pack a Catalog."""
    emb = embed_arrays(model, data.images, data.spectra, device=device)
    is_test = np.zeros(len(data), np.float32)
    is_test[test_idx] = 1
    return Catalog(
        targetid=data.targetid, props={**data.props, "is_test": is_test}, embeddings=emb,
        umap=joint_umap(emb, seed=seed), source=np.arange(len(data)),
        thumbnails=data.thumbnails, spectra_u8=data.spectra_u8,
        spectra_offset=data.spectra_offset, spectra_scale=data.spectra_scale,
        attrs={"display_bin": DISPLAY_BIN, **(attrs or {})},
    )  # fmt: skip


def default_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 80/20 train/test split every AstroCLIP experiment here uses."""
    return split_indices(n, 0.2, seed)


def source_split(source: str | Path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The split of the first ``n`` galaxies of ``source``: the file's own when it has one
    (the released AstroCLIP file: 80/20 inside each group), else ``default_split``."""
    if not str(source).startswith("toy:"):
        from scifm.survey.io import survey_split

        own = survey_split(source)
        if own is not None:
            return own[0][own[0] < n], own[1][own[1] < n]
    return default_split(n, seed)


def split_how(source: str | Path, seed: int = 0) -> str:
    """How ``source_split`` splits ``source`` (recorded with a model trained on it)."""
    if not str(source).startswith("toy:"):
        from scifm.survey.io import survey_split

        if survey_split(source) is not None:
            return "the file's own split (released AstroCLIP: first 80 % of each group train)"
    return f"pipeline.default_split (random 80/20, seed {seed})"
