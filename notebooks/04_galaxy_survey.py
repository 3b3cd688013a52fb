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
# # A simulated DESI x Legacy Surveys galaxy survey
#
# AstroCLIP (Parker et al. 2024) learns one embedding for a galaxy's image and its
# spectrum, trained on ~200k DESI spectra paired with Legacy Surveys g, r, z cutouts.
# Without downloads we simulate such pairs: one set of physical parameters per galaxy
# (redshift, stellar mass, star-formation history, metallicity, dust, morphology)
# drives a bagpipes spectrum on the DESI grid **and** a GalSim bulge + disk image whose
# band fluxes come from that very spectrum. This notebook draws a few galaxies, writes a
# small survey file in the AstroCLIP layout, explores it through the shipped AstroCLIP
# model in the galaxy explorer, checks that it looks like the real survey, and reads a
# real DESI coadd onto the same grid.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
N_GALAXIES = 24 if SMALL else 600  # galaxies in the survey file
WORKERS = 1 if SMALL else 2  # worker processes for the generation
SEED = 0  # survey seed: galaxy i depends only on (SEED, i)

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import panel as pn
import specutils
from IPython.display import display

from scifm.core import pick_device
from scifm.core.paths import assets_dir
from scifm.dashboards import GalaxyExplorer
from scifm.survey import (
    PARAM_DOC,
    SurveyConfig,
    generate_survey,
    read_survey,
    sample_params,
    survey_info,
)
from scifm.survey.datasets import SurveyDataset
from scifm.survey.figures import plot_examples, realism_figures
from scifm.survey.readers import DESI_WAVE, read_spectrum_file
from scifm.survey.realism import realism_report
from scifm.survey.transforms import AugmentConfig, legacy_rgb

pn.extension("tabulator", "filedropper", inline=True)  # JS from the installed packages (offline)
device = pick_device()  # the simulation is CPU code; the Dataset's tensors go anywhere
print("device for tensors:", device)

# %% [markdown]
# ## 1. Physical parameters
# Each galaxy's parameters are a pure function of `(seed, object id)`. Quiescent
# galaxies are more massive, older (large age / tau), bulgier and nearly dust free.

# %%
cfg = SurveyConfig()
params = pd.DataFrame(sample_params(cfg, 8, seed=SEED))
display(params[["redshift", "quiescent", "log_mass_formed", "age", "tau", "metallicity", "av",
                "bulge_frac", "r_disk_arcsec", "q_disk"]].round(3))  # fmt: skip
print({k: PARAM_DOC[k] for k in ("tau", "bulge_frac", "sky_sigma_r")})

# %% [markdown]
# ## 2. Generate a survey file
# Workers simulate chunks of galaxies; the parent writes each chunk and marks it done,
# so running the same call on an interrupted file resumes it (`scifm survey generate`
# is the command-line form).

# %%
tmp = Path(tempfile.mkdtemp())
path = generate_survey(tmp / "survey.h5", N_GALAXIES, seed=SEED, workers=WORKERS,
                       config=SurveyConfig(chunk_size=8), progress=False)  # fmt: skip
print(survey_info(path)["n_done"], "galaxies in", path, f"({path.stat().st_size / 1e6:.1f} MB)")
data = read_survey(path)
print("images", data.images.shape, "spectra", data.spectra.shape, "props", list(data.props)[:6])

# %% [markdown]
# ## 3. Images and spectra
# Images use the Legacy Surveys RGB transform (z, r, g as red, green, blue); the
# spectra are noisy DESI-like coadds with the redshifted emission lines marked.


# %%
def galaxy_figure(i=0):
    fig = plot_examples(data, index=[i])
    plt.close(fig)  # the pane draws it; no second copy in the cell's output
    return fig


# A Panel slider like every dashboard here (an ipywidgets `interact` can deadlock a
# headless notebook run: jupyter/nbclient#312)
galaxy = pn.widgets.IntSlider(name="galaxy", start=0, end=len(data.images) - 1, value=0)
pn.Column(galaxy, pn.pane.Matplotlib(pn.bind(galaxy_figure, galaxy), tight=True))

# %% [markdown]
# ## 4. The survey in the galaxy explorer
# The shipped AstroCLIP model (`assets/astroclip/model`) embeds every image and spectrum
# of the file just written; one UMAP of both goes on the map. Click it, or pick a random
# galaxy, to see its neighbours in the four search modes.

# %%
GalaxyExplorer.from_survey(path, assets_dir() / "astroclip" / "model")

# %% [markdown]
# ## 5. Does it look like the real survey?
# The realism report measures the colour-redshift relation, the red sequence / blue
# cloud bimodality, size against magnitude, H-alpha strength against sSFR (also
# re-measured on the noisy spectra), and the agreement of image and spectrum
# photometry in units of the image noise. `benchmarks/survey.py` runs the same on
# 1024 galaxies and stores the numbers.

# %%
report = realism_report(data)
print(pd.DataFrame(report["photometry_image_vs_spectrum"]).round(3))
print("colour-redshift:", report["colour_redshift"]["median_g_r_quiescent"],
      report["colour_redshift"]["median_g_r_star_forming"])  # fmt: skip
print("H-alpha:", {k: v for k, v in report["emission_lines"].items() if v is not None})
for name, fig in realism_figures(data).items():
    if name != "survey_examples":
        display(fig)

# %% [markdown]
# ## 6. What a model sees
# `SurveyDataset` gives channels-first crops and standardized spectra; with an
# `AugmentConfig` it draws self-supervised views (flips, rotations, extra noise, blur).

# %%
ds = SurveyDataset(path, augment=AugmentConfig(), views=2)
item = ds[0]
batch = {k: v.to(device) for k, v in item.items()}
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, img, title in zip(axes, [data.images[0], item["image"], item["image2"]],
                          ["original 152 px", "view 1 (144 px)", "view 2"]):  # fmt: skip
    arr = img if isinstance(img, np.ndarray) else img.permute(1, 2, 0).numpy()
    ax.imshow(legacy_rgb(arr), origin="lower")
    ax.set_title(title)
    ax.set_axis_off()
plt.show()
print("standardized spectrum mean/std:", float(batch["spectrum"].mean()),
      float(batch["spectrum"].std()))  # fmt: skip

# %% [markdown]
# ## 7. A real DESI spectrum on the same grid
# specutils ships real DESI coadd files for its tests. The reader merges the B, R and Z
# arms by inverse variance onto the 7781-pixel grid, skips sky fibres and non-targets,
# and keeps the FIBERMAP information.

# %%
coadd = (Path(specutils.__file__).parent
         / "io/default_loaders/tests/desi_test_data/coadd-sv3-dark-26065.fits")  # fmt: skip
records = read_spectrum_file(coadd)
for r in records:
    print(r.targetid, r.meta.get("OBJTYPE"), f"coverage {r.coverage:.1%}", r.wave_range)
rec = records[0]
good = rec.ivar > 0
fig, ax = plt.subplots(figsize=(10, 3))
ax.plot(DESI_WAVE[good], np.convolve(rec.flux, np.ones(9) / 9, "same")[good], lw=0.6)
ax.set(xlabel="wavelength [A]", ylabel="flux [1e-17 cgs/A]", title=f"DESI {rec.targetid}")
plt.show()
