"""MPP parameter regression at 64² (issue 13 item 5): INS viscosity from frozen features.

    python benchmarks/mpp_regression.py [--ckpt assets/mpp/avit_small_64] [--n 90]
                                        [--reg-steps 400] [--res 64]

Regresses log10(nu) of incompressible NS (nu ~ logU(1e-3, 3e-2), 21 frames over the PDEBench
span, held-out initial conditions, seed 777) from 4-frame windows, three ways, on the same
split by trajectory (2/3 train, 1/3 test): ridge on the frozen pretrained model's pooled
features, ridge on a frozen randomly initialised AViT of the same shape, and the AViT trained
from scratch on the regression (``--reg-steps`` steps of batch 8). The pretrained model saw
INS only at nu = 0.01, so the regression asks whether its features carry the viscosity.
``benchmarks/mpp.py`` (32², the demo model) writes the same figures into ``mpp.json``; they are
quoted beside these. Writes ``benchmarks/results/mpp_regression.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpp as bench_mpp  # benchmarks/mpp.py: the regression itself

from scifm.core.checkpoint import read_record
from scifm.core.report import repo_path, run_info, write_report
from scifm.mpp.experiment import DataConfig, load_surrogate

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default=str(ROOT / "assets/mpp/avit_small_64"))
    ap.add_argument("--n", type=int, default=90, help="INS trajectories (2/3 train)")
    ap.add_argument("--reg-steps", type=int, default=400, help="steps of the scratch model")
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, _ = load_surrogate(args.ckpt)
    model.eval()
    preset = "small" if model.config.d_model >= 96 else "tiny"
    s = {
        "data": DataConfig.preset("small", res=args.res, sim_frames=21),
        "n_reg": args.n,
        "reg_steps": args.reg_steps,
        "model": preset,
        "batch": 8,
    }
    out = bench_mpp.regression(s, model, cache="")
    card = read_record(args.ckpt).get("extra", {}).get("card") or {}
    out.update(model=repo_path(args.ckpt), model_step=card.get("steps"), res=args.res,
               tokens_per_frame=(args.res // model.config.patch_size) ** 2,
               scratch_preset=preset, scratch_steps=args.reg_steps, scratch_batch=8)  # fmt: skip
    old = ROOT / "benchmarks/results/mpp.json"
    ref = json.loads(old.read_text()).get("regression") if old.exists() else None
    rows = [
        ("frozen pretrained model + ridge", "frozen_pretrained_ridge_r2"),
        ("frozen random-init AViT + ridge", "frozen_random_init_ridge_r2"),
        (f"AViT trained from scratch ({args.reg_steps} steps × 8)", "scratch_trained_r2"),
    ]
    md = [
        f"Target: {out['target']}; {out['n_traj']} trajectories at {args.res}² "
        f"({out['tokens_per_frame']} tokens a frame), {out['windows_train']} train / "
        f"{out['windows_test']} test windows, split by trajectory. Model: `{out['model']}`"
        + (f" at step {out['model_step']} (its model card)." if out["model_step"] else "."),
        "",
        f"| features | test R² at {args.res}² | test R² at 32² (benchmarks/mpp.py, demo model) |",
        "|---|---|---|",
    ]
    for label, key in rows:
        was = f"{ref[key]:.3f}" if ref and key in ref else "-"
        md.append(f"| {label} | {out[key]:.3f} | {was} |")
    info = run_info(argv=argv, data={"ins": f"simulated, seed 777, {args.n} trajectories"})
    kw = {"out_dir": Path(args.out_dir)} if args.out_dir else {}
    write_report("mpp_regression", out, "\n".join(md) + "\n", info=info,
                 title="MPP parameter regression (INS viscosity)", **kw)  # fmt: skip
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
