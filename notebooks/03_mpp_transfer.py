# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (scifm)
#     language: python
#     name: scifm
# ---

# %% [markdown]
# # Multiple Physics Pretraining: held-out rollouts, then transfer to a physics it never saw
#
# McCabe et al., *Multiple Physics Pretraining for Physical Surrogate Models*
# (arXiv:2310.02994). The shipped AViT `assets/mpp/avit_small_64` was pretrained at 64²
# (patch 8, 64 tokens a frame) on shallow water, diffusion-reaction and incompressible NS,
# **without** compressible NS: 20,000 steps of batch 8 with the paper's one-step loss, then
# 14,000 with the stability recipe (pushforward, input noise at 5 % of each field's RMS in the
# last 8,000) and 30 more trajectories a system that run past the PDEBench span, so that
# 50-step rollouts stay finite (`SEED=0 scripts/mpp_noise_chain.sh`, about 4.1 CPU-hours in
# all; its model card, with the learning curve, is in `assets/mpp/MANIFEST.json`). We roll it
# out from initial conditions it never saw,
# against the solver and persistence (the last given frame repeated: the bar to beat), show
# its stored 50-step evidence, then fine-tune it on a few compressible-NS trajectories and
# compare with the same model trained from scratch for the same steps. The rollouts play in
# the rollout viewer. The whole notebook took about 5 minutes on the shared 2-core CPU (most
# of it simulating compressible NS at 64² and fine-tuning). With `SCIFM_SMALL=1` (the test
# suite) everything runs at 16² with a handful of steps: a smoke test, not a result.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
RES = 16 if SMALL else 64  # grid side of the runs (the model's own: 64; 16 keeps tests fast)
SEED = 0  # initial condition of the held-out rollouts (checked against the training seeds)
ROLL = 4 if SMALL else 20  # rollout steps from new initial conditions
N_FINETUNE = 1 if SMALL else 4  # compressible-NS trajectories for fine-tuning
FRAMES = 8 if SMALL else 21  # frames per CNS trajectory (21: the pretraining data's spacing)
FT_STEPS = 6 if SMALL else 150  # fine-tuning steps, the same for both models
FT_LR = 5e-4  # the evidence study's fine-tuning rate (benchmarks/results/mpp_evidence.md)

# %%
import matplotlib.pyplot as plt
import panel as pn
import torch
from IPython.display import Markdown, display

from scifm.core import TrainConfig, pick_device
from scifm.core.paths import assets_dir, results_dir
from scifm.dashboards import LiveLoss, Rollout, RolloutViewer
from scifm.dashboards.mpp_results import load_results, results_views
from scifm.dashboards.physics_models import evidence_choice
from scifm.mpp import AViT, model_step, persistence_step, rollout
from scifm.mpp.demo import compare
from scifm.mpp.evaluate import one_step_nrmse
from scifm.mpp.experiment import DataConfig, finetune, load_surrogate, make_fields, windows
from scifm.mpp.heldout import dataconfig_training_seeds, heldout_line

pn.extension(inline=True)  # Panel and Bokeh JS from the installed packages (works offline)
device = pick_device()  # CUDA when present, else CPU
print("device:", device)
torch.manual_seed(0)  # the scratch model's initial weights

# %% [markdown]
# ## The pretrained model, as its card describes it

# %%
choice = evidence_choice(assets_dir() / "mpp" / "avit_small_64")
display(Markdown(choice.about))
pretrained, systems = load_surrogate(choice.path, device)
print(f"{pretrained.n_params():,} parameters; systems: {sorted(systems)}; runs at {RES}²")

# %% [markdown]
# ## Rollouts from initial conditions it never saw
# Each system is simulated from seed `SEED` and the model rolls out from the first frames.
# The training files were drawn from other seeds (`scifm.mpp.heldout` lists them); the
# line above each plot says so.

# %%
runs = {}
fig, axes = plt.subplots(1, len(systems), figsize=(4 * len(systems), 3), squeeze=False)
for ax, name in zip(axes[0], sorted(systems), strict=True):
    print(heldout_line(choice.seeds, name, SEED)[1])
    runs[name] = compare(pretrained, name, seed=SEED, steps=ROLL, res=RES,
                         frames_per_unit=choice.frames_per_span,
                         field_index=systems[name]["field_index"])  # fmt: skip
    steps = range(1, ROLL + 1)
    ax.plot(steps, runs[name].nrmse, label="AViT")
    ax.plot(steps, runs[name].persistence, "--", color="grey", label="persistence")
    ax.set(xlabel="rollout step", ylabel="NRMSE", title=name)
    ax.legend()
fig.tight_layout()

# %% [markdown]
# ## The stored evidence: 50-step rollouts on held-out long trajectories
# `benchmarks/mpp_evidence.py rollout` on 10 long held-out trajectories per system (the
# caption is written from the numbers in the file). This model learns every field (the
# report's "One field at a time" table, or `scifm mpp evaluate`'s `fields`: INS's velocities
# at 0.22x persistence in one step) and stays below persistence at step 20 on all three
# systems; shallow water's error then grows past persistence's by step 50 (its waves grow
# where the solver's die out: `benchmarks/results/mpp_amplitude.md`). Its INS rollout is the
# best of three training seeds: the other two fall behind persistence on INS by step 20 or
# 50 (README, MPP evidence).

# %%
evidence = results_dir() / "mpp_evidence.json"
pn.Column(*results_views(load_results(str(evidence)), evidence))

# %% [markdown]
# ## Fine-tune on compressible NS (M = 0.1): pretrained vs scratch
# A physics left out of pretraining: its four fields get the embedding slots the model
# reserved for them. Both models take the same steps on the same trajectories. One seed and
# one test trajectory here; the evidence study (`benchmarks/results/mpp_evidence.md`, 2-3
# seeds per N) found the pretrained start not reliably better than scratch at this scale, so
# expect the two numbers to be close.

# %%
cns = DataConfig(systems=("cns_m0.1",), res=RES, n_traj=N_FINETUNE, n_test=1, sim_frames=FRAMES)
train_f = make_fields(cns, "train")["cns_m0.1"]
test_f = make_fields(cns, "test")["cns_m0.1"]
T = pretrained.config.n_frames
test_ws = windows({"cns_m0.1": test_f}, T)[0]
models = {"pretrained": pretrained, "scratch": AViT(pretrained.config)}
schedule = TrainConfig(steps=FT_STEPS, lr=FT_LR, warmup_steps=max(1, FT_STEPS // 10),
                       log_every=max(1, FT_STEPS // 20))  # fmt: skip
live = LiveLoss("fine-tuning loss (NMSE) on compressible NS")
display(live)
for name, m in models.items():
    _, _, cns_systems = finetune(m, "cns_m0.1", train_f, schedule, batch_size=4, device=device,
                                 callback=live.series(name))  # fmt: skip
    step = model_step(m.eval(), test_ws.field_index, test_ws.periodic)
    print(f"{name:>11}: next-step NRMSE {one_step_nrmse(step, test_ws, device=device):.4f}")
live.flush()
print(f"persistence: next-step NRMSE {one_step_nrmse(persistence_step, test_ws):.4f}")

# %% [markdown]
# ## Compressible-NS rollouts against the solver

# %%
steps = min(ROLL, test_f.shape[1] - T)
ctx, truth = test_f[:1, :T].to(device), test_f[:1, T : T + steps].to(device)
fig, ax = plt.subplots(figsize=(5, 3))
preds = {}
for name, m in models.items():
    preds[name], err = rollout(model_step(m, test_ws.field_index, True), ctx, steps, truth=truth)
    ax.plot(range(1, steps + 1), err, marker="o", label=name)
_, base = rollout(persistence_step, ctx, steps, truth=truth)
ax.plot(range(1, steps + 1), base, "--", color="grey", label="persistence")
ax.set(xlabel="rollout step", ylabel="NRMSE", title="Compressible NS rollout (held-out)")
ax.legend()

# %% [markdown]
# ## The rollouts, frame by frame
# The held-out runs above and the compressible-NS rollout of both models, with errors. The
# run controls roll the fine-tuned model out on new initial conditions; a run says whether
# its seed was one the training data was drawn from. `RolloutViewer.from_checkpoint(path)`
# does the same for a run written by `scifm mpp pretrain/finetune`.

# %%
held_out = Rollout.from_tensors("cns_m0.1 held-out", cns_systems["cns_m0.1"]["fields"], truth,
                                preds)  # fmt: skip
held_out.persistence = base.cpu().numpy()
played = {held_out.label: held_out}
played.update({f"{n} {RES}², seed {SEED}": Rollout.from_comparison(r) for n, r in runs.items()})
RolloutViewer(models["pretrained"], systems={**systems, **cns_systems}, res=RES,
              frames_per_span=choice.frames_per_span,
              seeds={**choice.seeds, **dataconfig_training_seeds(cns.to_dict())},
              about=choice.about + " Fine-tuned here on compressible NS M=0.1.",
              steps=min(ROLL, 8), rollouts=played)  # fmt: skip
