"""One AViT step on the CPU, this tree against another commit's, in one run.

    .venv/bin/python benchmarks/mpp_cpu_step.py --against e4f20df~1 [--model PATH]

Each tree (this working tree's ``lib``, and ``--against``'s ``lib`` unpacked by ``git archive``
into a temporary folder) is imported in a subprocess of its own, one torch thread, and times
with the same shipped model (``assets/mpp/avit_small_64``) and the same seeded inputs:

- inference at 128^2 (INS, 3 fields, T = 4 frames of context): milliseconds per step at
  batch 1 and per trajectory-step at batch 16 (best of 3 repeats, CPU seconds of the process);
- a training step (forward and backward of the NMSE) at 64^2, batch 8;
- the largest difference of the two trees' predictions on the same inputs (the rewrite of
  the step must not change its numbers).

Writes benchmarks/results/mpp_cpu_step.{json,md}. The ratio is the figure to read: both trees
run on the same machine within minutes of each other; the absolute milliseconds move with
the machine and its other load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODEL = ROOT / "assets" / "mpp" / "avit_small_64"

# run in a subprocess with the tree's lib first on sys.path
CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from scifm.mpp.experiment import load_surrogate
from scifm.mpp.rollout import model_step
from scifm.mpp.metrics import nmse

model, systems = load_surrogate(sys.argv[1])
model.eval()
info = systems["ins"]
g = torch.Generator().manual_seed(0)
x1 = torch.randn(1, model.config.n_frames, 3, 128, 128, generator=g)
x16 = torch.randn(16, model.config.n_frames, 3, 128, 128, generator=g)
step = model_step(model, info["field_index"], info["periodic"])

def best(fn, reps, inner):
    out = []
    for _ in range(reps):
        t = time.process_time()
        for _ in range(inner):
            fn()
        out.append((time.process_time() - t) / inner)
    return min(out)

with torch.inference_mode():
    pred = step(x1)
    step(x16)
    b1 = best(lambda: step(x1), 3, 5)
    b16 = best(lambda: step(x16), 3, 1)
model.train()
torch.manual_seed(1)
xt = torch.randn(8, model.config.n_frames, 3, 64, 64, generator=g)
yt = torch.randn(8, 3, 64, 64, generator=g)

def train_step():
    model.zero_grad(set_to_none=True)
    nmse(model(xt, info["field_index"], info["periodic"]), yt).backward()

train_step()
tr = best(train_step, 3, 1)
torch.save(pred, sys.argv[2])
print(json.dumps({"ms_step_b1": b1 * 1e3, "ms_traj_step_b16": b16 / 16 * 1e3,
                  "ms_train_step_64_b8": tr * 1e3}))
"""


def run_tree(lib: Path, model: Path, pred_out: Path) -> dict:
    env = {"PYTHONPATH": str(lib), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", CHILD, str(model), str(pred_out)],
                         capture_output=True, text=True, env=env, check=False)  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"the tree at {lib} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def unpack(commit: str, dest: Path) -> Path:
    """``lib`` of ``commit`` (git archive) under ``dest``."""
    tar = dest / "lib.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "lib"], stdout=f, check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest / "lib"


def main(argv: list[str] | None = None) -> int:
    import torch

    from scifm.core.report import run_info, write_report

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", required=True, help="the commit to compare with (git rev)")
    p.add_argument("--model", default=str(MODEL))
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as the trees' processes (the run record reads it)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.against],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old_lib = unpack(args.against, tmp)
        old = run_tree(old_lib, Path(args.model), tmp / "old.pt")
        new = run_tree(ROOT / "lib", Path(args.model), tmp / "new.pt")
        a, b = torch.load(tmp / "old.pt"), torch.load(tmp / "new.pt")
        diff = float((a - b).abs().max())
    rows = [{"measure": k, "against": old[k], "this tree": new[k], "speed-up": old[k] / new[k]}
            for k in old]  # fmt: skip
    info = run_info(note="1 torch thread per tree, one tree after the other; CPU seconds")
    report = {"against": rev, "model": str(Path(args.model).relative_to(ROOT)), "rows": rows,
              "max_abs_prediction_difference": diff}  # fmt: skip
    names = {"ms_step_b1": "128^2 inference, batch 1: ms a step",
             "ms_traj_step_b16": "128^2 inference, batch 16: ms a trajectory-step",
             "ms_train_step_64_b8": "64^2 training step, batch 8: ms"}  # fmt: skip
    lines = [
        f"This tree against `{rev}`, same model (`{report['model']}`), same seeded inputs; "
        "best of 3 repeats each. Largest difference of the two trees' 128^2 predictions: "
        f"{diff:.2g} (float32 rounding: the rewrite does not change the step's numbers).",
        "",
        f"| measure | `{rev}` | this tree | speed-up |",
        "|---|---:|---:|---:|",
        *(
            f"| {names[r['measure']]} | {r['against']:.1f} | {r['this tree']:.1f} | "
            f"{r['speed-up']:.2f}x |"
            for r in rows
        ),
    ]
    body = "\n".join(lines) + "\n"
    write_report("mpp_cpu_step", report, body, info=info, title="AViT step on the CPU",
                 out_dir=RESULTS)  # fmt: skip
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
