"""Make the shipped AstroCLIP demo: ``python -m scifm.astroclip.assets``.

Prepares the survey (simulated, or the released AstroCLIP file), trains the three stages
on its training split (the file's own where it has one, else ``default_split``)
-- or, with ``--from-model``, packages a model trained elsewhere (e.g. the evidence run of
``scripts/astroclip_evidence.sh``) on the split that model recorded --, embeds every
galaxy, computes the joint UMAP, and writes to ``--out``:
``model/`` (the AstroCLIP checkpoint, both frozen encoders included),
``catalog.h5`` (see ``catalog.py``), ``redshift_index.h5`` (the uploads' k-NN redshift,
``redshift_index.py``) and ``MANIFEST.json`` (command, presets, seeds, steps, final losses,
file sizes). The checkpoint records the split's test target
ids (``splits.py``), which the benchmark and its baselines read back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from scifm.astroclip.config import AstroClipConfig
from scifm.astroclip.model import AstroClip
from scifm.astroclip.pipeline import (
    STAGE_DIRS,
    Prepared,
    StagePlan,
    make_catalog,
    prepare,
    run_pipeline,
    source_split,
    split_how,
    survey_fetcher,
)
from scifm.astroclip.redshift_index import N_COMPONENTS, RedshiftIndex
from scifm.astroclip.splits import model_split, split_record
from scifm.core import load_model, pick_device, save_checkpoint
from scifm.core.checkpoint import read_record
from scifm.core.resume import METRICS_FILE, read_step_records


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scifm.astroclip.assets", description=__doc__)
    p.add_argument("--survey", required=True,
                   help="survey HDF5 file (generated or released layout), or toy:N")  # fmt: skip
    p.add_argument("--out", default="assets/astroclip", help="output folder")
    p.add_argument("--work", default="runs/astroclip", help="checkpoints and caches (resumable)")
    p.add_argument("--preset", default="small", help="AstroClipConfig preset")
    p.add_argument("--from-model", default=None, metavar="CKPT",
                   help="package this trained AstroCLIP checkpoint (its config and "
                        "recorded split) instead of training; --preset and the step plan "
                        "are ignored")  # fmt: skip
    p.add_argument("--n", type=int, default=None, help="use the first N galaxies only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--catalog-rows", type=int, default=None,
                   help="the served catalog keeps this many galaxies (a seeded random "
                        "subset), to fit the assets' size budget")  # fmt: skip
    for f in ("image_steps", "spectrum_steps", "align_steps", "image_batch", "spectrum_batch",
              "align_batch"):  # fmt: skip
        p.add_argument("--" + f.replace("_", "-"), type=int, default=getattr(StagePlan, f))
    return p


def last_logged(stage_dir: Path) -> dict | None:
    """The last record of a stage's training log (``core.train``'s metrics file), if any."""
    path = stage_dir / METRICS_FILE
    records = read_step_records(path) if path.exists() else []
    return records[-1] if records else None


def catalog_rows(n: int, keep: int | None, seed: int = 0) -> np.ndarray:
    """The rows the served catalog keeps, sorted: all ``n`` when ``keep`` is None, else
    ``keep`` drawn at random (``seed``), so train and test galaxies keep their shares."""
    if keep is None or keep >= n:
        return np.arange(n)
    if keep <= 0:
        raise ValueError(f"--catalog-rows {keep}: expected a positive number of galaxies")
    return np.sort(np.random.default_rng([seed, keep]).choice(n, keep, replace=False))


def packaged(path: str | Path) -> tuple[AstroClipConfig, AstroClip, dict]:
    """(config, model, record) of a trained AstroCLIP checkpoint to ship as it is; the record
    names it, its weights' hash, and the last training record of the run folder it sits in."""
    path = Path(path)
    cfg, model = load_model(path, expect_config=AstroClipConfig)
    rec = read_record(path)
    final = last_logged(path.parent) if path.name == "checkpoint" else None
    return (
        cfg,
        model,
        {
            "from_model": str(path),
            "from_model_sha256": rec.get("sha256", {}).get("model.safetensors"),
            "final": {"align": final},
        },
    )


def save_redshift_index(
    model: AstroClip, data: Prepared, rows: np.ndarray, catalog, train_idx: np.ndarray, out: Path
) -> dict:
    """The redshift index for the page's uploads (``redshift_index.py``): the catalog's
    galaxies with a spectrum (``data`` rows ``rows``) and every training galaxy of the split
    (``train_idx``), the PCA fitted on the training galaxies only; as
    ``python -m scifm.astroclip.redshift_index --training-split`` builds it."""
    keep = catalog.has_embedding("spectrum")
    idx = np.union1d(np.asarray(rows)[keep], train_idx)
    fit = np.isin(idx, train_idx)
    index = RedshiftIndex.build(
        model, data.spectra[torch.from_numpy(idx)], data.targetid[idx],
        np.asarray(data.props["redshift"])[idx], fit,
        n_components=min(N_COMPONENTS, int(fit.sum())),
    )  # fmt: skip
    path = index.save(out / "redshift_index.h5")
    return {
        "n": len(index), "n_fit": index.n_fit, "components": int(index.vectors.shape[1]),
        "pooling": index.pooling, "encoder": index.encoder, "bytes": path.stat().st_size,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.from_model:
        cfg, model, source = packaged(args.from_model)
        preset = next(
            (
                name
                for name in AstroClipConfig.PRESETS
                if AstroClipConfig.preset(name).to_json() == cfg.to_json()
            ),
            "custom",
        )
    else:
        cfg, source, preset = AstroClipConfig.preset(args.preset), None, args.preset
    plan = StagePlan(**{f: getattr(args, f) for f in (
        "image_steps", "spectrum_steps", "align_steps", "image_batch", "spectrum_batch",
        "align_batch")})  # fmt: skip
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    fetch, n = survey_fetcher(args.survey)
    n = min(n, args.n or n)
    key = hashlib.sha256(cfg.to_json().encode()).hexdigest()[:10]
    cache = work / f"prepared_{n}_{key}.npz"  # the config decides what is prepared
    if cache.exists():
        data = Prepared.load(cache)
    else:
        data = prepare(fetch, n, cfg)
        data.save(cache)
    device = pick_device(args.device)
    if source is not None:  # the split the model was trained on, read back from it
        train_idx, test_idx, split = model_split(args.from_model, data.targetid,
                                                 source=str(args.survey))  # fmt: skip
        made = {"device": str(device), **source}
    else:
        train_idx, test_idx = source_split(args.survey, len(data), args.seed)
        split = split_record(data.targetid, train_idx, test_idx, source=str(args.survey),
                             how=split_how(args.survey, args.seed))  # fmt: skip
        model, history = run_pipeline(data, cfg, plan, work, train_idx=train_idx,
                                      device=device, seed=args.seed)  # fmt: skip
        made = {
            "plan": asdict(plan), "device": str(device),
            "final": {k: v[-1] if v else last_logged(work / STAGE_DIRS[k])
                      for k, v in history.items()},  # a finished stage rerun logs nothing new
        }  # fmt: skip
    record = {
        "command": "python -m scifm.astroclip.assets " + " ".join(argv or sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "survey": str(args.survey), "n_galaxies": n, "preset": preset, "seed": args.seed,
        "split": {k: v for k, v in split.items() if k != "test_targetids"}, **made,
    }  # fmt: skip
    model = model.cpu()
    save_checkpoint(out / "model", model, cfg, extra={"manifest": record, "split": split})
    rows = catalog_rows(len(data), args.catalog_rows, seed=args.seed)
    shown = data.take(rows)
    catalog = make_catalog(model, shown, test_idx=np.flatnonzero(np.isin(rows, test_idx)),
                           seed=args.seed, attrs={"survey": str(args.survey),
                                                  "preset": preset,
                                                  "rows_of_survey": len(rows)})  # fmt: skip
    catalog.save(out / "catalog.h5")
    record["redshift_index"] = save_redshift_index(model, data, rows, catalog, train_idx, out)
    np.save(work / "test_idx.npy", test_idx)
    record["seconds"] = round(time.time() - t0, 1)
    record["files"] = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    record["total_mb"] = round(sum(record["files"].values()) / 2**20, 2)
    (out / "MANIFEST.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"out": str(out), "total_mb": record["total_mb"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
