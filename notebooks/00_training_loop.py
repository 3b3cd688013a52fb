# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python (scifm)
#     language: python
#     name: scifm
# ---

# %% [markdown]
# # The shared training loop
#
# All three parts of scifm (xVal, MPP, AstroCLIP) train on one loop,
# `scifm.core.train`: AdamW with warmup + cosine decay, gradient clipping and
# accumulation, bf16 autocast on CUDA, optional `torch.compile`, a metrics log,
# atomic checkpoints and exact resume. This notebook trains a tiny regression
# model with it, interrupts the run, resumes it, and reloads the checkpoint.

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
STEPS = 40 if SMALL else 400
OUT = Path(os.environ.get("SCIFM_NB_OUT") or tempfile.mkdtemp()) / "tiny_run"

# %%
import json

import matplotlib.pyplot as plt
import panel as pn
from IPython.display import display

from scifm.core import DatasetBatches, TrainConfig, load_model, pick_device, train
from scifm.core.testing import TinyConfig, TinyMLP, mse_loss, regression_data
from scifm.dashboards import LiveLoss

pn.extension(inline=True)  # Panel and Bokeh JS from the installed packages (works offline)
device = pick_device()  # CUDA when present, else MPS, else CPU
print("device:", device)

# %% [markdown]
# The data position is the step: a `DatasetBatches` source gives the same batch for the
# same step every time, which is what lets a resumed run continue exactly. The loop calls
# `callback(record)` at every logged step: `LiveLoss` draws the loss while it trains, and
# `progress=True` shows a progress bar.

# %%
cfg = TinyConfig()
data = DatasetBatches(regression_data(cfg, 512, seed=0), batch_size=32, seed=1)
tc = TrainConfig(steps=STEPS, lr=3e-3, warmup_steps=STEPS // 10, log_every=5, progress=True)
live = LiveLoss("one run, interrupted and resumed")
display(live)

# First half, as if the kernel died there (stop_at cuts the run on its own LR schedule; a
# resume must keep that schedule, so `steps` stays the whole run's):
half = train(TinyMLP(cfg), mse_loss, data, tc.replace(stop_at=STEPS // 2), device=device,
             out_dir=OUT, model_config=cfg, callback=live.series("first half"))  # fmt: skip
# Resume to the end: a fresh model object, the state comes from OUT/checkpoint.
full = train(TinyMLP(cfg), mse_loss, data, tc, device=device, out_dir=OUT, model_config=cfg,
             callback=live.series("resumed"))  # fmt: skip
live.flush()
print("resumed from step", full.resumed_from, "-> finished at", full.step)

# %%
log = [json.loads(line) for line in (OUT / "metrics.jsonl").read_text().splitlines()]
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy([r["step"] for r in log], [r["loss"] for r in log])
ax.axvline(STEPS // 2, ls=":", c="gray", label="resumed here")
ax.set(xlabel="step", ylabel="MSE", title="one run, interrupted and resumed")
ax.legend()

# %% [markdown]
# A checkpoint is a directory of safetensors weights and a JSON config; one call
# rebuilds `(config, model)` from it.

# %%
cfg2, model = load_model(OUT / "checkpoint", device)
print(cfg2)
print(sorted(p.name for p in (OUT / "checkpoint").iterdir()))
