"""AstroCLIP alignment heads compared in one run (issue 14, item 3).

Each ``--run LABEL=CHECKPOINT`` is an AstroCLIP model on the same frozen encoders and the
same recorded split; they differ in the spectrum head (``AstroClipConfig.spectrum_head``:
the paper's one learned query attending over the SpecFormer's tokens, or ``seg<K>``: the
tokens averaged in K wavelength segments, then an MLP) and in the alignment steps. Every
model is scored the way ``benchmarks/astroclip.py`` scores the shipped one: zero-shot k-NN
R^2 (k = 64, standardised, distance-weighted) of the aligned image and spectrum embeddings,
fitted on every training galaxy of the recorded split and scored on every held-out one,
and cross-modal recall@1/10/100 among all held-out pairs. The survey is prepared once.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/astroclip_heads.py --survey data/survey_40k.h5 \\
        --run 'attention, 3,000 steps (shipped)=assets/astroclip/model' \\
        --run 'seg32, 3,000 steps=runs/astroclip_clip_seg32'

Writes ``astroclip_heads.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from scifm.astroclip.config import AstroClipConfig
from scifm.astroclip.embed import embed_arrays, model_fingerprint
from scifm.astroclip.evaluate import cross_modal_recall, knn_r2
from scifm.astroclip.pipeline import DEFAULT_PROPS, prepare, survey_fetcher
from scifm.astroclip.splits import model_split
from scifm.core.checkpoint import load_model
from scifm.core.paths import repo_root
from scifm.core.report import repo_path, run_info, write_report
from scifm.core.resume import CHECKPOINT_DIR

TITLE = "AstroCLIP alignment heads: the same encoders, split and galaxies"
PAPER = {"spectrum": 0.99, "image": 0.79}  # Parker et al. 2024, zero-shot redshift R^2


def _checkpoint(path: Path) -> Path:
    return path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR / "config.json").exists() else path


def _steps(path: Path) -> int | None:
    """Alignment steps of a checkpoint: a packaged asset's manifest, else its trainer state."""
    cfg = path / "config.json"
    extra = json.loads(cfg.read_text()).get("extra", {}) if cfg.exists() else {}
    final = (extra.get("manifest") or {}).get("final", {}).get("align") or {}
    if final.get("step"):
        return int(final["step"])
    trainer = path / "trainer.json"
    return int(json.loads(trainer.read_text())["step"]) if trainer.exists() else None


def score(model: torch.nn.Module, data, tr: np.ndarray, te: np.ndarray) -> dict:
    emb = embed_arrays(model, data.images, data.spectra)
    props = {k: data.props[k] for k in DEFAULT_PROPS if k in data.props}
    out: dict = {}
    for m in ("image", "spectrum"):
        out[f"knn_r2_{m}"] = knn_r2(emb[m][tr], emb[m][te], {k: v[tr] for k, v in props.items()},
                                    {k: v[te] for k, v in props.items()})  # fmt: skip
    out["image_to_spectrum"] = cross_modal_recall(emb["image"][te], emb["spectrum"][te])
    out["spectrum_to_image"] = cross_modal_recall(emb["spectrum"][te], emb["image"][te])
    return out


def render(rows: list[dict], n_train: int, n_test: int) -> str:
    lines = [
        f"{n_train} training / {n_test} held-out galaxies (the split recorded with the models); "
        "zero-shot k-NN R^2 (k = 64, standardised, distance-weighted) and recall among all "
        "held-out pairs (chance recall@10 = 10 / N).",
        "",
        "| model | spectrum head | steps | spectrum z R^2 | spectrum props (mean of 4) | "
        "image z R^2 | recall@10 i→s | recall@10 s→i | recall@1 i→s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, i = r["knn_r2_spectrum"], r["knn_r2_image"]
        props = [v for k, v in s.items() if k != "redshift"]
        lines.append(
            f"| {r['label']} | {r['spectrum_head']} | {r['steps'] or '?'} | {s['redshift']:.3f} | "
            f"{np.mean(props):.3f} | {i['redshift']:.3f} | "
            f"{r['image_to_spectrum']['recall@10']:.3f} | "
            f"{r['spectrum_to_image']['recall@10']:.3f} | "
            f"{r['image_to_spectrum']['recall@1']:.3f} |"
        )
    lines += ["", f"Paper (Parker et al. 2024) zero-shot redshift R^2: spectrum "
              f"{PAPER['spectrum']}, image {PAPER['image']}; issue 14 targets: spectrum >= 0.98, "
              "recall@10 >= 0.5.", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--survey", required=True, help="the survey the models were trained on")
    p.add_argument("--run", action="append", required=True, metavar="LABEL=CHECKPOINT")
    p.add_argument("--name", default="astroclip_heads")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    runs = []
    for item in args.run:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            p.error(f"--run {item!r}: expected LABEL=CHECKPOINT")
        runs.append((label, _checkpoint(Path(path))))
    t0 = time.time()
    models = [(label, path, *load_model(path, "cpu", expect_config=AstroClipConfig))
              for label, path in runs]  # fmt: skip
    encoders = {(c.image.to_json(), c.spectrum.to_json(), model_fingerprint(m.image_encoder),
                 model_fingerprint(m.spectrum_encoder)) for _, _, c, m in models}  # fmt: skip
    if len(encoders) != 1:
        p.error("the models' encoders differ (config or weights); compare heads on the same "
                "frozen encoders")  # fmt: skip
    survey = args.survey  # a file (repo-relative or absolute) or toy:N
    if not survey.startswith("toy:") and not Path(survey).is_absolute():
        survey = str(repo_root() / survey)
    fetch, n = survey_fetcher(survey)
    data = prepare(fetch, n, models[0][2], progress=False)
    splits = [model_split(path, data.targetid, source=str(args.survey))
              for _, path, _, _ in models]  # fmt: skip
    if len({(tuple(tr), tuple(te)) for tr, te, _ in splits}) != 1:
        sizes = [(len(tr), len(te), rec["how"]) for tr, te, rec in splits]
        raise SystemExit(f"the models recorded different splits: {sizes}")
    tr, te, rec = splits[0]
    rows = [{"label": label, "checkpoint": repo_path(path), "spectrum_head": cfg.spectrum_head,
             "steps": _steps(path), **score(model.eval(), data, tr, te)}
            for label, path, cfg, model in models]  # fmt: skip
    n_tr, n_te, how = len(tr), len(te), rec["how"]
    results = {"runs": rows, "n_train": n_tr, "n_test": n_te, "split": how,
               "seconds": round(time.time() - t0, 1)}  # fmt: skip
    info = run_info(data={"survey": args.survey, "split": how}, argv=argv,
                    note=f"{torch.get_num_threads()} torch thread(s); CPU cores shared with "
                         "other jobs")  # fmt: skip
    write_report(args.name, results, render(rows, n_tr, n_te), info=info, title=TITLE,
                 out_dir=args.out_dir)  # fmt: skip
    print(render(rows, n_tr, n_te))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
