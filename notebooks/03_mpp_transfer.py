# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (scifm)
#     language: python
#     name: scifm
# ---

# %% [markdown]
# # Multiple Physics Pretraining: pretrain on two systems, fine-tune on a third
#
# McCabe et al., *Multiple Physics Pretraining for Physical Surrogate Models*
# (arXiv:2310.02994). One AViT learns shallow water and incompressible flow together;
# we then fine-tune it on compressible Navier-Stokes (fields it never saw) and compare
# with the same model trained from scratch on the same few trajectories. The losses are
# drawn while they train; the rollouts play in the rollout viewer, which also runs the
# fine-tuned model on new initial conditions.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
MODEL = "tiny" if SMALL else "small"  # AViTConfig preset
RES = 16 if SMALL else 32  # grid side
N_TRAJ = 2 if SMALL else 8  # pretraining trajectories per system
N_FINETUNE = 2 if SMALL else 4  # compressible-NS trajectories for fine-tuning
FRAMES = 8 if SMALL else 25  # frames per trajectory
PRE_STEPS = 15 if SMALL else 400
FT_STEPS = 8 if SMALL else 150
ROLL = 4 if SMALL else 16  # rollout steps to plot

# %%
import matplotlib.pyplot as plt
import panel as pn
import torch
from IPython.display import display

from scifm.core import TrainConfig, pick_device
from scifm.dashboards import LiveLoss, Rollout, RolloutViewer
from scifm.mpp import AViT, AViTConfig, model_step, rollout
from scifm.mpp.evaluate import one_step_nrmse
from scifm.mpp.experiment import (
    DataConfig,
    finetune,
    make_fields,
    pretrain,
    system_info,
    windows,
)

pn.extension(inline=True)  # Panel and Bokeh JS from the installed packages (works offline)
device = pick_device()  # CUDA when present, else CPU
print("device:", device)
torch.manual_seed(0)


def schedule(steps):
    log = max(1, steps // 20)
    return TrainConfig(steps=steps, lr=2e-3, warmup_steps=max(1, steps // 10), log_every=log)


# %% [markdown]
# ## Pretrain on shallow water + incompressible NS

# %%
pre_data = DataConfig(systems=("swe", "ins"), res=RES, n_traj=N_TRAJ, sim_frames=FRAMES)
model_cfg = AViTConfig.preset(MODEL)
live = LiveLoss("pretraining loss (NMSE)")
display(live)
pretrained, result = pretrain(model_cfg, pre_data, schedule(PRE_STEPS), batch_size=4,
                              device=device, callback=live)  # fmt: skip
live.flush()
print(
    f"{pretrained.n_params():,} parameters; last training NRMSE {result.history[-1]['nrmse']:.4f}"
)

# %% [markdown]
# ## Fine-tune on compressible NS (M = 0.1) vs training from scratch

# %%
cns = DataConfig(systems=("cns_m0.1",), res=RES, n_traj=N_FINETUNE, n_test=1, sim_frames=FRAMES)
train_f = make_fields(cns, "train")["cns_m0.1"]
test_f = make_fields(cns, "test")["cns_m0.1"]
test_ws = windows({"cns_m0.1": test_f}, model_cfg.n_frames)[0]
models = {"pretrained": pretrained, "scratch": AViT(model_cfg)}
live = LiveLoss("fine-tuning loss (NMSE) on compressible NS")
display(live)
for name, m in models.items():
    _, _, systems = finetune(m, "cns_m0.1", train_f, schedule(FT_STEPS), batch_size=4,
                             device=device, callback=live.series(name))  # fmt: skip
    step = model_step(m.eval(), test_ws.field_index, test_ws.periodic)
    print(f"{name:>10}: next-step NRMSE {one_step_nrmse(step, test_ws, device=device):.4f}")
live.flush()

# %% [markdown]
# ## Rollouts against the solver

# %%
T = model_cfg.n_frames
steps = min(ROLL, test_f.shape[1] - T)
ctx, truth = test_f[:1, :T].to(device), test_f[:1, T : T + steps].to(device)
fig, ax = plt.subplots(figsize=(5, 3))
preds = {}
for name, m in models.items():
    preds[name], err = rollout(model_step(m, test_ws.field_index, True), ctx, steps, truth=truth)
    ax.plot(range(1, steps + 1), err, marker="o", label=name)
ax.set(xlabel="rollout step", ylabel="NRMSE", title="Compressible NS rollout")
ax.legend()

# %% [markdown]
# ## The rollouts, frame by frame
# Solver, both models and their errors on the held-out trajectory. The run controls
# roll the fine-tuned model out on new initial conditions (a seed, or a Mach number) of
# the systems it knows; `RolloutViewer.from_checkpoint(path)` does the same for a run
# written by `scifm mpp pretrain/finetune`.

# %%
known = {**{s: system_info(s) for s in pre_data.systems}, **systems}
held_out = Rollout.from_tensors("cns_m0.1 held-out", system_info("cns_m0.1")["fields"],
                                truth, preds)  # fmt: skip
RolloutViewer(models["pretrained"], systems=known, res=RES, steps=min(ROLL, 8),
              rollouts={held_out.label: held_out})  # fmt: skip
