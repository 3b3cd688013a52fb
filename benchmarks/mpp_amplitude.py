"""How a rollout leaves the solver: the predicted field's spatial spread and mean, step by step.

    python benchmarks/mpp_amplitude.py --system swe \\
        --ckpt p30k-noise5=runs/mpp64_p30k_noise5/checkpoint [--ckpt NAME=PATH ...] [--steps 50]

A diagnostic for issue 13 item 2 (every pretrained model's 50-step SWE rollout leaves
persistence behind after step ~25). Each checkpoint rolls out the held-out long trajectories
of ``--data``/SYSTEM (54 frames: 4 context + 50 steps) from their first frames, as
``mpp_evidence.py rollout`` does, and at steps 1, 10, 20, ... and the last the report gives,
averaged over trajectories and fields: the NRMSE; the spatial standard deviation of the
prediction and of the solver's frame (a rollout that blows up grows it, one that smooths
shrinks it); the spatial mean of both (drift of a conserved or slowly varying quantity);
and the share of the squared error that is the spatial mean's (the rest is the pattern).
Writes ``benchmarks/results/mpp_amplitude.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mpp_evidence import load_fields

from scifm.core.report import repo_path, run_info, write_report
from scifm.mpp.experiment import load_surrogate
from scifm.mpp.metrics import nmse_per_field
from scifm.mpp.rollout import model_step, rollout

ROOT = Path(__file__).resolve().parents[1]


def amplitude_rows(pred: torch.Tensor, truth: torch.Tensor, steps: list[int]) -> list[dict]:
    """Per step k (1-based) of ``pred`` and ``truth`` (N, K, C, H, W): NRMSE (the rollout's
    metric), spatial std and mean of each, and the spatial mean's share of the squared error;
    each averaged over trajectories and fields."""
    if pred.shape != truth.shape or pred.ndim != 5:
        raise ValueError(
            f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)}: expected the same "
            "(N, K, C, H, W)"
        )
    rows = []
    for k in steps:
        if not 1 <= k <= pred.shape[1]:
            raise ValueError(f"step {k}: the rollout has steps 1..{pred.shape[1]}")
        p, t = pred[:, k - 1].double(), truth[:, k - 1].double()  # (N, C, H, W)
        err = (p - t).pow(2).mean(dim=(-2, -1))  # (N, C)
        mean_err = (p.mean(dim=(-2, -1)) - t.mean(dim=(-2, -1))).pow(2)
        rows.append({
            "step": k,
            "nrmse": float(nmse_per_field(p, t).sqrt().mean()),  # rollout()'s own metric
            "std_pred": float(p.std(dim=(-2, -1), unbiased=False).mean()),
            "std_true": float(t.std(dim=(-2, -1), unbiased=False).mean()),
            "mean_pred": float(p.mean()),
            "mean_true": float(t.mean()),
            "mean_share": float((mean_err / err.clamp_min(1e-30)).mean()),
        })  # fmt: skip
    return rows


def _named(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    return (name, path) if sep and name else (Path(text).parent.name or text, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", action="append", required=True, help="NAME=PATH or PATH; repeat")
    ap.add_argument("--system", default="swe")
    ap.add_argument("--data", default=str(ROOT / "data" / "mpp64" / "test_long"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    folder = Path(args.data) / args.system
    fields = load_fields(folder)
    runs = []
    for name, path in map(_named, args.ckpt):
        model, systems = load_surrogate(path)
        model.eval()
        if args.system not in systems:
            raise SystemExit(f"--ckpt {path}: not trained on {args.system!r} ({sorted(systems)})")
        info, T = systems[args.system], model.config.n_frames
        n = min(args.steps, fields.shape[1] - T)
        step = model_step(model, info["field_index"], info["periodic"])
        pred, _ = rollout(step, fields[:, :T], n)
        marks = sorted({1, *range(10, n + 1, 10), n})
        runs.append({"name": name, "ckpt": repo_path(path), "fields": info["fields"],
                     "rows": amplitude_rows(pred, fields[:, T : T + n], marks)})  # fmt: skip
    md = [
        f"System `{args.system}`: {fields.shape[0]} held-out trajectories of `{repo_path(folder)}`"
        f", rolled out from their first {T} frames. std: spatial standard deviation of the "
        "frame; mean: spatial mean; mean share: the part of the squared error that is the "
        "spatial mean's. All averaged over trajectories and fields.",
        "",
        "| model | step | NRMSE | std predicted | std solver | mean predicted | mean solver "
        "| mean share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for row in r["rows"]:
            md.append(
                f"| {r['name']} | {row['step']} | {row['nrmse']:.3f} | {row['std_pred']:.4f} "
                f"| {row['std_true']:.4f} | {row['mean_pred']:.4f} | {row['mean_true']:.4f} "
                f"| {row['mean_share']:.2f} |"
            )
    info = run_info(argv=argv, data={args.system: repo_path(folder)})
    kw = {"out_dir": Path(args.out_dir)} if args.out_dir else {}
    write_report("mpp_amplitude", {"system": args.system, "runs": runs}, "\n".join(md),
                 info=info, title="MPP rollouts: predicted amplitude against the solver's",
                 **kw)  # fmt: skip
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
