"""Torch Datasets over a survey file or an in-memory ``SurveyData``.

Items follow what AstroCLIP's encoders consume (Parker et al. 2024): a
channels-first (3, crop, crop) image in nanomaggies, optionally augmented (two
views for self-supervised pretraining), and the spectrum standardized per
object (std clipped at 0.2) with its mean and std kept. Reading from a path is
lazy (one HDF5 handle per process, opened on first use; an item reads its own
row only), so DataLoader workers and files larger than memory both work; with
``scifm.core.DatasetBatches`` it is a deterministic batch source for the loop.

The released AstroCLIP file (groups "0".."9", ``released.py``) is read the same way,
rows numbered group after group: any float dtype comes out float32, its spectra
(N, 7781, 1) or (N, 7781) come out (7781,), ``ivar`` is ones (the file has none) and
the physical properties it lacks are NaN (listed in ``missing_props``). Its 152 x 152
cutouts have the simulated survey's pixel scale (0.262"), so both map onto the model
input the same way: a centre crop of ``crop`` pixels (AstroCLIP MNRAS: 144).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from scifm.core.devices import torch_generator
from scifm.survey import released
from scifm.survey.io import SurveyData, survey_info
from scifm.survey.simulate import PROP_NAMES
from scifm.survey.transforms import (
    AugmentConfig,
    augment_images,
    center_crop,
    standardize_spectrum,
)


def _check_done(path: Path, start: int, stop: int, chunk_size: int) -> None:
    """Refuse rows of chunks an interrupted generation has not written yet."""
    with h5py.File(path, "r") as f:
        done = f["chunk_done"][:]
    chunks = np.arange(start // chunk_size, -(-stop // chunk_size)) if stop > start else []
    pending = [int(c) * chunk_size for c in chunks if not done[c]]
    if pending:
        raise ValueError(
            f"survey file {path}: rows {start}:{stop} are not all generated (chunks starting at "
            f"rows {pending[:5]} pending); resume the generation or use done rows only"
        )


def _prop_keys(path: Path) -> set[str]:
    with h5py.File(path, "r") as f:
        return set(f["props"]) if "props" in f else set()


class SurveyDataset(Dataset):
    """Rows ``start:stop`` of a survey as dicts of tensors.

    Keys: ``image`` (3, crop, crop), ``image2`` (second view, when ``views == 2``),
    ``spectrum`` (n_wave,) standardized, ``spec_mean``/``spec_std`` (1,),
    ``ivar`` (n_wave,), ``redshift`` (), ``targetid`` (), ``props`` (n_props,)
    in the order of ``prop_names``; a property the source lacks (every one, for the
    released AstroCLIP file) is NaN and named in ``missing_props``.
    """

    def __init__(
        self,
        source: str | Path | SurveyData,
        *,
        start: int = 0,
        stop: int | None = None,
        augment: AugmentConfig | None = None,
        crop: int = 144,
        views: int = 1,
        seed: int = 0,
        prop_names: tuple[str, ...] = ("log_mstar", "log_ssfr", "log_z", "age"),
    ) -> None:
        if views not in (1, 2):
            raise ValueError(f"SurveyDataset: views={views}; expected 1 or 2")
        self.source = source
        info = None if isinstance(source, SurveyData) else survey_info(source)
        n = len(source) if info is None else info["n"]
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise ValueError(f"SurveyDataset: rows {start}:{stop} requested of {n}")
        if info is not None and not info["complete"]:
            _check_done(Path(source), start, stop, info["chunk_size"])
        self.start, self.stop = start, stop
        self.augment, self.crop, self.views = augment, crop, views
        self.seed, self.epoch = seed, 0
        self.prop_names = tuple(prop_names)
        unknown = [k for k in self.prop_names if k not in PROP_NAMES]
        if unknown:
            raise ValueError(f"SurveyDataset: prop_names {unknown} unknown; expected {PROP_NAMES}")
        have = source.props if info is None else _prop_keys(Path(source))
        self.missing_props = tuple(k for k in self.prop_names if k not in have)
        self._h5: tuple[int, h5py.File, tuple | None] | None = None

    def __len__(self) -> int:
        return self.stop - self.start

    def __getstate__(self) -> dict:  # a worker started by spawn opens its own handle
        return {**self.__dict__, "_h5": None}

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (they are a pure function of seed, epoch, index)."""
        self.epoch = int(epoch)

    def _row(self, j: int) -> dict[str, np.ndarray]:
        if isinstance(self.source, SurveyData):
            d = self.source
            return {"image": d.images[j], "spectrum": d.spectra[j], "ivar": d.ivar[j],
                    "redshift": d.redshift[j], "targetid": d.targetid[j],
                    "props": np.array([d.props[k][j] if k in d.props else np.nan
                              for k in self.prop_names])}  # fmt: skip
        if self._h5 is None or self._h5[0] != os.getpid():  # a forked worker opens its own
            f = h5py.File(self.source, "r")
            self._h5 = (os.getpid(), f, released.row_locator(f) if "props" not in f else None)
        _, f, locator = self._h5
        nan = np.full(len(self.prop_names), np.nan)
        if locator is not None:  # the released file: no ivar, no properties
            row = released.read_row(f, locator, j)
            return {**row, "ivar": np.ones_like(row["spectrum"]), "props": nan}
        props = [np.nan if k in self.missing_props else f["props"][k][j] for k in self.prop_names]
        return {"image": f["images"][j], "spectrum": f["spectra"][j], "ivar": f["ivar"][j],
                "redshift": f["redshift"][j], "targetid": f["targetid"][j],
                "props": np.array(props)}  # fmt: skip

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"SurveyDataset: index {i} out of range for {len(self)} rows")
        row = self._row(self.start + i)
        image = torch.from_numpy(np.ascontiguousarray(row["image"])).permute(2, 0, 1)  # (3,H,W)
        spec, mean, std = standardize_spectrum(row["spectrum"])
        item = {
            "spectrum": spec,
            "spec_mean": mean,
            "spec_std": std,
            "ivar": torch.from_numpy(np.asarray(row["ivar"])),
            "redshift": torch.tensor(float(row["redshift"])),
            "targetid": torch.tensor(int(row["targetid"])),
            "props": torch.from_numpy(np.asarray(row["props"], dtype=np.float32)),
        }
        if self.augment is None:
            item["image"] = center_crop(image, self.crop)
        else:
            g = torch_generator(hash((self.seed, self.epoch, self.start + i)) % (2**62))
            for v in range(self.views):
                view = augment_images(image[None], self.augment, generator=g)[0]
                item["image" if v == 0 else "image2"] = view
        return item
