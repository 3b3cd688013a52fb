"""SpecFormer checkpoints scored at the benchmark's scale (issue 14, items 2 and 3).

A pretrain-spectrum run evaluates itself on a sample (k-NN fitted on 4x ``--eval-rows``
training galaxies, scored on ``--eval-rows`` held-out ones), so its in-run R^2 reads lower
than ``astroclip.md``'s. This scores the SpecFormer-alone embedding (mean-pooled tokens,
``embed.spectrum_features``) of each given checkpoint the way ``benchmarks/astroclip.py``
does: zero-shot k-NN (k = 64, standardised, distance-weighted) fitted on every training
galaxy of the split recorded with the checkpoint and scored on every held-out one, plus the
masked validation loss on the held-out spectra. Writes ``specformer_score.{json,md}``.

``--poolings`` scores other poolings of the same tokens (``specformer.pool_tokens``: mean, std,
mean_std, first, seg<K>) from the same pass, and ``--input-bins K ...`` the no-learning floor:
the SpecFormer's standardized input itself averaged into K wavelength segments
(``specformer.binned_input``), with the same k-NN::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/specformer_score.py \\
        --survey data/survey_40k.h5 --run continued=runs/astroclip_spec_cont \\
        --poolings mean mean_std seg4 seg8 seg16 seg32 --input-bins 32 64 128 256

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/specformer_score.py \\
        --survey data/survey_40k.h5 --run plateau=benchmarks/checkpoints/astroclip_spec_evidence \\
        --run continued=runs/astroclip_spec_cont
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from scifm.astroclip.config import SpecFormerConfig
from scifm.astroclip.data import prepare_spectra
from scifm.astroclip.embed import spectrum_poolings
from scifm.astroclip.evaluate import knn_r2, masked_val_loss
from scifm.astroclip.pipeline import DEFAULT_PROPS
from scifm.astroclip.specformer import binned_input
from scifm.astroclip.splits import model_split
from scifm.core.checkpoint import TRAINER_JSON, load_model
from scifm.core.paths import repo_root
from scifm.core.report import repo_path, run_info, write_report
from scifm.core.resume import CHECKPOINT_DIR
from scifm.survey.io import read_spectra

PAPER = 0.99  # Parker et al. 2024: spectrum embedding, zero-shot redshift R^2


def score(
    folder: Path,
    survey: Path,
    poolings: list[str] | None = None,
    input_bins: list[int] | None = None,
) -> dict:
    """One run folder's checkpoint: its step, held-out masked loss and k-NN R^2s (mean pooling
    at the top level; each of ``poolings`` and ``input_bins`` under its own key)."""
    poolings = list(dict.fromkeys(["mean", *(poolings or [])]))
    ckpt = folder / CHECKPOINT_DIR if (folder / CHECKPOINT_DIR).exists() else folder
    _, model = load_model(ckpt, "cpu", expect_config=SpecFormerConfig)
    step = int(json.loads((ckpt / TRAINER_JSON).read_text())["step"])
    with h5py.File(survey, "r") as f:
        targetid = np.asarray(f["targetid"][:], np.int64)
        props = {k: np.asarray(f["redshift"] if k == "redshift" else f["props"][k], np.float64)
                 for k in DEFAULT_PROPS}  # fmt: skip
    tr, te, split = model_split(ckpt, targetid, source=str(survey))
    t0 = time.perf_counter()
    rows = np.sort(np.concatenate([tr, te]))
    spectra = torch.zeros((len(targetid), model.config.n_bins), dtype=torch.float32)
    spectra[torch.from_numpy(rows)] = prepare_spectra(read_spectra(survey, rows)["spectra"],
                                                      model.config)  # fmt: skip
    val_loss = masked_val_loss(model, spectra[torch.from_numpy(te)], seed=0)
    both = torch.from_numpy(np.concatenate([tr, te]))
    feats = spectrum_poolings(model, spectra[both], poolings)
    for k in input_bins or []:
        feats[f"input{k}"] = binned_input(spectra[both], model.config.std_floor, k).numpy()
    n = len(tr)
    y_tr, y_te = {k: v[tr] for k, v in props.items()}, {k: v[te] for k, v in props.items()}
    r2 = {}
    for name, x in feats.items():
        r2[name] = {"dim": int(x.shape[1]), **knn_r2(x[:n], x[n:], y_tr, y_te)}
        print(name, r2[name], flush=True)
    return {
        "folder": repo_path(folder), "step": step,
        "n_fit": len(tr), "n_eval": len(te), "split": split["how"], "val_loss": float(val_loss),
        **{f"knn_r2_{k}": float(v) for k, v in r2["mean"].items() if k != "dim"},
        "variants": r2, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def render(rows: list[dict]) -> str:
    keys = [f"knn_r2_{k}" for k in DEFAULT_PROPS]
    lines = [
        "SpecFormer-alone embedding (mean-pooled tokens) of each checkpoint, zero-shot k-NN "
        "(k = 64, standardised, distance-weighted) fitted on every training galaxy of the "
        "checkpoint's recorded split and scored on every held-out one (as `astroclip.md`'s "
        f"'SpecFormer alone' row); held-out masked loss beside it. Paper: {PAPER} (redshift).",
        "",
        "| run | step | val_loss | "
        + " | ".join(k.removeprefix("knn_r2_") for k in keys)
        + " | n_fit / n_eval |",
        "|---|---|---|" + "---|" * len(keys) + "---|",
    ]
    for r in rows:
        lines.append(f"| {r['run']} (`{r['folder']}`) | {r['step']} | {r['val_loss']:.4f} | "
                     + " | ".join(f"{r[k]:.3f}" for k in keys)
                     + f" | {r['n_fit']} / {r['n_eval']} |")  # fmt: skip
    if any(len(r.get("variants", {})) > 1 for r in rows):
        lines += [
            "",
            "### Poolings of the same tokens, and the input without learning",
            "",
            "The same k-NN on other vectors per spectrum (`specformer.pool_tokens`): `mean` is "
            "the row above; `std` the tokens' spread, `mean_std` both, `first` the token that "
            "carries the spectrum's mean and std, `seg<K>` the window tokens cut into K "
            "contiguous wavelength segments, each averaged, concatenated. `input<K>`: no "
            "model at all, the SpecFormer's standardized input spectrum averaged into K "
            "wavelength segments (`specformer.binned_input`), the floor a learned embedding "
            "should clear.",
            "",
            "| run | vector | dim | " + " | ".join(k.removeprefix("knn_r2_") for k in keys) + " |",
            "|---|---|---:|" + "---:|" * len(keys),
        ]
        for r in rows:
            for name, v in r.get("variants", {}).items():
                lines.append(f"| {r['run']} | {name} | {v['dim']} | "
                             + " | ".join(f"{v[k.removeprefix('knn_r2_')]:.3f}" for k in keys)
                             + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--survey", default="data/survey_40k.h5", help="survey HDF5 (repo-relative)")
    p.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="LABEL=FOLDER",
        help="a SpecFormer run folder (or checkpoint) and its label; repeat",
    )
    p.add_argument(
        "--poolings",
        nargs="+",
        default=[],
        metavar="POOLING",
        help="also score these poolings of the tokens (mean, std, mean_std, first, seg<K>)",
    )
    p.add_argument(
        "--input-bins",
        nargs="+",
        type=int,
        default=[],
        metavar="K",
        help="also score the standardized input spectrum averaged into K segments",
    )
    p.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)  # fmt: skip
    survey = Path(args.survey)
    survey = survey if survey.is_absolute() else repo_root() / survey
    rows = []
    for item in args.run:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            p.error(f"--run {item!r}: expected LABEL=FOLDER")
        path = Path(folder) if Path(folder).is_absolute() else repo_root() / folder
        rows.append({"run": label, **score(path, survey, args.poolings, args.input_bins)})
        print(rows[-1], flush=True)
    info = run_info(data={"survey": args.survey, "runs": dict(r.partition("=")[::2]
                                                             for r in args.run)},
                    argv=argv, note="1 thread; 2 CPU cores shared with a training run")  # fmt: skip
    write_report("specformer_score", {"runs": rows}, render(rows), info=info,
                 title="SpecFormer checkpoints at the benchmark's scale",
                 out_dir=args.out_dir)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
