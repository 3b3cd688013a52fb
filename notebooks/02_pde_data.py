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
# # 02 · PDE data for Multiple Physics Pretraining
#
# MPP (McCabe et al., arXiv:2310.02994) pretrains one surrogate on several PDEBench
# systems. PDEBench cannot be downloaded here, so `scifm.pde` simulates the four
# 2D systems itself (torch, batched, CPU or CUDA), checks each solver against a known
# solution, and reads/writes PDEBench and The Well files. This notebook plays each
# system's frames in the rollout viewer, then shows the verifications, the file formats
# and the training windows.

# %% tags=["parameters"]
import os
import tempfile

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
RES = 32 if SMALL else 64  # cells per side
N_TRAJ = 2  # trajectories per system
SOD_CELLS = 200 if SMALL else 400  # Sod tube length in cells
VORTEX_RES = [16, 32] if SMALL else [16, 32, 64]  # isentropic-vortex convergence grids
SEED = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import panel as pn
import torch

from scifm.core import pick_device
from scifm.dashboards import RolloutViewer
from scifm.pde import simulate
from scifm.pde.filewindows import FileWindows
from scifm.pde.pdebench import read_pdebench, write_pdebench
from scifm.pde.verification import (
    convergence_orders,
    cosine_decay_error,
    isentropic_vortex_error,
    sod_shock_tube,
    taylor_green_error,
)
from scifm.pde.well import read_well, write_well, write_well_stats
from scifm.pde.windows import TrajectoryWindows, system_batches

device = pick_device()
# Small grids are dominated by per-operation overhead: one thread avoids oversubscribing
# a busy CPU (a GPU, or large grids on a free CPU, want the default).
torch.set_num_threads(1 if SMALL else torch.get_num_threads())
pn.extension(inline=True)  # Panel and Bokeh JS from the installed packages (works offline)
print("device:", device)

# %% [markdown]
# ## The four systems
# PDEBench defaults (domain, frames, time span) with shorter spans when `SMALL`.

# %%
spans = {
    "swe": (11, 1.0),
    "diffreact": (11, 5.0),
    "ins": (11, 2.0),
    "cns": (6, 0.1 if SMALL else 0.5),
}
runs = {}
for name, (n_frames, t_end) in spans.items():
    runs[name] = simulate(
        name, N_TRAJ, res=RES, n_frames=n_frames, t_end=t_end, seed=SEED, device=device
    ).to("cpu")
    print(f"{name:>9}: fields {runs[name].field_names}, shape {tuple(runs[name].fields.shape)}")

# %% [markdown]
# The rollout viewer plays the first trajectory of each system: pick the rollout (the
# system) and the field, then press play. With a model it also runs the surrogate
# against the solver (notebook 03, and the app's Physics page).

# %%
RolloutViewer.from_trajectories(runs, index=0)

# %% [markdown]
# ## Verification against known solutions
# Sod's shock tube along x and along y vs the exact Riemann solution (Gamma = 5/3).

# %%
sod = {axis: sod_shock_tube(SOD_CELLS, axis) for axis in ("x", "y")}
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for ax, key in zip(axes, ("rho", "u", "p")):
    ax.plot(sod["x"].x, sod["x"].exact[key], "k-", lw=1, label="exact")
    ax.plot(sod["x"].x, sod["x"].numeric[key], ".", ms=2, label="along x")
    ax.plot(sod["y"].x, sod["y"].numeric[key], "+", ms=2, alpha=0.5, label="along y")
    ax.set_title(f"{key}: rel. L1 {sod['x'].l1[key]:.2%}")
axes[0].legend()
plt.show()
print({axis: r.l1 for axis, r in sod.items()})

# %% [markdown]
# Isentropic vortex: the order of convergence of the compressible solver.

# %%
errors = [isentropic_vortex_error(n) for n in VORTEX_RES]
print("density L1 errors", errors, "observed orders", convergence_orders(VORTEX_RES, errors))
plt.loglog(VORTEX_RES, errors, "o-", label="MUSCL-HLLC")
plt.loglog(
    VORTEX_RES,
    errors[0] * (np.array(VORTEX_RES) / VORTEX_RES[0]) ** -2.0,
    "k--",
    label="second order",
)
plt.xlabel("cells per side"), plt.ylabel("density L1 error"), plt.legend()
plt.show()

# %%
print("Taylor-Green vortex, max relative error:", taylor_green_error())
print("no-flux cosine mode decay, max relative error:", cosine_decay_error())

# %% [markdown]
# ## Files: PDEBench and The Well

# %%
out = tempfile.mkdtemp()
path = write_pdebench(runs["cns"], out)
back = read_pdebench(path)
print(
    path.name,
    "round trip exact:",
    torch.equal(back.fields, runs["cns"].fields.float()),
)
well_file = write_well(runs["ins"], out)
stats = write_well_stats(well_file.parent.parent.parent)
print(
    well_file.relative_to(out),
    "->",
    stats.name,
    "round trip exact:",
    torch.equal(read_well(well_file).fields, runs["ins"].fields.float()),
)

# %% [markdown]
# ## Training windows with one system per micro-batch
# Windows come from memory (`TrajectoryWindows`) or lazily from a file (`FileWindows` reads
# only the frames of one window). Each micro-batch holds one system, drawn uniformly; each
# system's windows are visited without replacement, one shuffled epoch after another.

# %%
windows = {k: TrajectoryWindows.from_trajectories(v, n_ctx=4) for k, v in runs.items()}
windows["ins"] = FileWindows(well_file, n_ctx=4)  # the Well file written above
batches = system_batches(windows, batch_size=2, seed=SEED)
for step in range(4):
    b = batches.get(step, 0, 0, 1)
    print(step, b["system"], tuple(b["x"].shape), b["field_index"].tolist(), bool(b["periodic"]))
