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
# # AstroCLIP: one embedding space for galaxy images and spectra
#
# Parker et al. (2024) pretrain an image encoder (self-supervised) and a spectrum
# transformer (masked modelling), freeze both, and train small cross-attention heads
# with a symmetric InfoNCE loss so that a galaxy's image and spectrum land close
# together. This notebook runs the three stages small (the losses drawn live), explores
# the catalog it built in the galaxy explorer, measures zero-shot k-NN regression and
# does a cross-modal retrieval.

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
# the full run reads a survey file, the shipped model's:
# `scifm survey generate --n 40000 --seed 2 --out data/survey_40k.h5`
SURVEY = "toy:256" if SMALL else os.environ.get("SCIFM_SURVEY", "../data/survey_40k.h5")
N = 256 if SMALL else 4000  # galaxies used
PRESET = "tiny" if SMALL else "small"
STEPS = 20 if SMALL else 300  # per stage
WORK = Path(os.environ.get("SCIFM_NB_OUT") or tempfile.mkdtemp()) / "astroclip"

# %%
import matplotlib.pyplot as plt
import numpy as np
import panel as pn
import torch
from IPython.display import display

from scifm.astroclip import AstroClipConfig
from scifm.astroclip.evaluate import cross_modal_recall, knn_r2
from scifm.astroclip.explore import Explorer
from scifm.astroclip.pipeline import (
    StagePlan,
    default_split,
    make_catalog,
    prepare,
    run_pipeline,
    survey_fetcher,
)
from scifm.core import pick_device
from scifm.dashboards import GalaxyExplorer, LiveLoss

pn.extension("tabulator", "filedropper", inline=True)  # JS from the installed packages (offline)
torch.set_num_threads(1 if SMALL else torch.get_num_threads())
device = pick_device()  # CUDA when present, else CPU
print("device:", device)

# %% [markdown]
# ## Data: crops and binned spectra
# Images are centre-cropped and pooled, spectra binned (the CPU presets); thumbnails
# and display spectra are kept for plotting.

# %%
cfg = AstroClipConfig.preset(PRESET)
fetch, n_all = survey_fetcher(SURVEY)
data = prepare(fetch, min(N, n_all), cfg, progress=False)
train_idx, test_idx = default_split(len(data))
print(
    len(data),
    "galaxies;",
    tuple(data.images.shape[1:]),
    "images;",
    tuple(data.spectra.shape[1:]),
    "spectrum bins",
)

# %% [markdown]
# ## The three stages on the shared training loop
# One curve per stage, drawn while it trains (the dashed level of the alignment loss is
# ln B, a collapsed model's).

# %%
batch = 32 if SMALL else 128
plan = StagePlan(
    image_steps=STEPS,
    image_batch=batch,
    spectrum_steps=STEPS,
    spectrum_batch=min(batch, 64),
    align_steps=2 * STEPS,
    align_batch=batch,
)
live = LiveLoss("image (MoCo), spectrum (masked), align (InfoNCE) losses", logy=False)
display(live)
model, history = run_pipeline(
    data, cfg, plan, WORK, train_idx=train_idx, device=device, progress=True, callback=live
)
live.flush()
print("collapsed alignment would sit at ln B =", round(float(np.log(plan.align_batch)), 3))

# %% [markdown]
# ## The catalog in the galaxy explorer
# Every galaxy embedded twice (image, spectrum), one UMAP of both: colour the map by a
# property, click it or pick a random galaxy, and compare the four search modes. The
# app's Galaxies page is the same component on the shipped catalog
# (`GalaxyExplorer.from_assets()`).

# %%
model = model.cpu()
catalog = make_catalog(model, data, test_idx=test_idx)
GalaxyExplorer(catalog, model=model)

# %% [markdown]
# ## Zero-shot k-NN regression (k = 64, standardized, distance-weighted)

# %%
targets = [t for t in ("redshift", "log_mstar", "log_ssfr", "log_z", "age") if t in catalog.props]
y = {t: catalog.props[t] for t in targets}
for m in ("image", "spectrum"):
    e = catalog.embeddings[m]
    r2 = knn_r2(
        e[train_idx],
        e[test_idx],
        {t: v[train_idx] for t, v in y.items()},
        {t: v[test_idx] for t, v in y.items()},
    )
    print(f"{m:9s}", "  ".join(f"{t}={v:.2f}" for t, v in r2.items()))
print(
    "image→spectrum",
    cross_modal_recall(
        catalog.embeddings["image"][test_idx], catalog.embeddings["spectrum"][test_idx]
    ),
)

# %% [markdown]
# ## Retrieval: the spectra most similar to one galaxy's image

# %%
from io import BytesIO

from PIL import Image

explorer = Explorer(catalog)
query = int(test_idx[0])
res = explorer.neighbours(query, "image → spectrum", k=7)
rows = [query, *res.table["row"]]
fig, axes = plt.subplots(1, len(rows), figsize=(2 * len(rows), 2.4))
for ax, r, label in zip(axes, rows, ["query", *[f"{s:.2f}" for s in res.table["score"]]]):
    ax.imshow(Image.open(BytesIO(explorer.thumbnail(r))))
    ax.set(title=f"{label}\nz={catalog.props['redshift'][r]:.2f}", xticks=[], yticks=[])
res.table.head()

# %% [markdown]
# ## The shipped model and catalog (the app's Galaxies page)
# The model above trained for minutes on a few thousand galaxies. The one the app serves,
# `assets/astroclip`, is the evidence run of this project: 64 px images (ResNet +
# MoCo-v2, 4,000 steps), spectra binned by 2 (SpecFormer until its masked loss
# plateaued), 3,000 alignment steps, on the 32,000 training galaxies of the
# 40,000-galaxy survey (`benchmarks/checkpoints/README.md` tells its story). Its
# `MANIFEST.json` records how it was made; its catalog keeps a seeded subset of the
# galaxies with their held-out flag (`is_test`), so the same zero-shot k-NN regression
# runs on it: training rows as the neighbours, held-out rows as the queries
# (`benchmarks/results/astroclip.md` has the full evaluation on all 8,000).

# %%
import json

from scifm.astroclip.catalog import Catalog
from scifm.dashboards.galaxies import default_assets

assets = Path(default_assets())
manifest = json.loads((assets / "MANIFEST.json").read_text())
print({k: manifest.get(k) for k in ("preset", "n_galaxies", "from_model", "date_utc")})
shipped = Catalog.load(assets / "catalog.h5")
held_out = shipped.props["is_test"] > 0.5
ys = {t: shipped.props[t] for t in targets if t in shipped.props}
for m in ("image", "spectrum"):
    e = shipped.embeddings[m].astype(np.float32)
    r2 = knn_r2(
        e[~held_out],
        e[held_out],
        {t: v[~held_out] for t, v in ys.items()},
        {t: v[held_out] for t, v in ys.items()},
    )
    print(f"shipped {m:9s}", "  ".join(f"{t}={v:.2f}" for t, v in r2.items()))

# %% [markdown]
# ## The uploads' redshift index
# The aligned spectrum embedding keeps redshift less well than the SpecFormer under it
# (R² above): the contrastive loss pulls it toward what the image can tell. So when you
# upload a real spectrum on the page, its k-NN redshift comes from `redshift_index.h5`:
# the SpecFormer's tokens averaged in 32 wavelength segments, reduced to 64 principal
# components fitted on the training galaxies only (`scifm.astroclip.redshift_index`).
# The index holds the catalog's galaxies and every other training galaxy of the split (a
# neighbour for an upload need not be shown to count). Both answer the same question for the
# catalog's held-out galaxies here, with the page's estimator (cosine top-16, similarity-weighted
# mean) over training galaxies only (the catalog's for the aligned embedding, all it has; every
# indexed one for the index, as the upload searches): how often is the k-NN redshift within
# 0.01 (1 + z) of the true one?

# %%
from scifm.astroclip.explore import similarity_weighted_mean
from scifm.astroclip.redshift_index import RedshiftIndex
from scifm.astroclip.search import cosine_topk

zindex = RedshiftIndex.load(assets / "redshift_index.h5")
shipped_explorer = Explorer(shipped)
in_catalog = shipped_explorer.indexed_in_catalog(zindex)  # indexed galaxies the page shows
rows = shipped_explorer.rows_of(zindex.targetid[in_catalog])  # their catalog rows
queries = np.zeros(len(zindex), bool)  # the catalog's held-out galaxies, as index rows
queries[np.flatnonzero(in_catalog)[held_out[rows]]] = True
zq = zindex.redshift[queries]
print(f"index: {len(zindex):,} galaxies, {in_catalog.sum():,} of them in the catalog")


def page_estimates(vectors, z, is_query):
    """The page's k-NN redshift of every query row, from the other (training) rows only."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    est = []
    for q in np.flatnonzero(is_query):
        scores, ids = cosine_topk(v[q], v, 16, allowed=~is_query)
        est.append(similarity_weighted_mean(scores, z[ids]))
    return np.array(est)


aligned = shipped.embeddings["spectrum"][rows].astype(np.float32)
for name, est in [
    (
        "aligned embedding",
        page_estimates(aligned, zindex.redshift[in_catalog], queries[in_catalog]),
    ),
    ("redshift index", page_estimates(zindex.vectors, zindex.redshift, queries)),
]:
    dz = np.abs(est - zq) / (1 + zq)
    print(
        f"{name:18s} within 0.01(1+z): {np.mean(dz <= 0.01):.1%}   median |dz|/(1+z) "
        f"{np.median(dz):.4f}   ({queries.sum()} held-out galaxies)"
    )

# %%
GalaxyExplorer.from_assets()
