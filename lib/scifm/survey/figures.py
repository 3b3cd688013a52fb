"""Matplotlib figures of a simulated survey: example galaxies and the realism plots.

Used by ``benchmarks/survey.py`` and the ``04_galaxy_survey`` notebook; each
function takes a ``SurveyData`` and returns a ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from scifm.survey.io import SurveyData
from scifm.survey.realism import colours, image_half_light_radius, measured_halpha_ew
from scifm.survey.spectra import EMISSION_LINES
from scifm.survey.transforms import legacy_rgb

POP = {0: ("star-forming", "tab:blue"), 1: ("quiescent", "tab:red")}


def _populations(ax, x: np.ndarray, y: np.ndarray, q: np.ndarray, **kw) -> None:
    for val, (label, colour) in POP.items():
        sel = q == val
        ax.scatter(x[sel], y[sel], s=4, alpha=0.4, c=colour, label=label, lw=0, **kw)
    ax.legend(markerscale=3, fontsize=8)


def plot_examples(d: SurveyData, index: list[int] | None = None) -> Figure:
    """RGB cutouts and spectra (rest-frame emission lines marked) of a few galaxies."""
    index = list(range(min(4, len(d)))) if index is None else index
    fig = Figure(figsize=(11, 2.4 * len(index)))
    for row, i in enumerate(index):
        ax = fig.add_subplot(len(index), 4, 4 * row + 1)
        ax.imshow(legacy_rgb(d.images[i]), origin="lower")
        ax.set_axis_off()
        q = POP[int(d.props["quiescent"][i])][0]
        ax.set_title(f"z={d.redshift[i]:.3f} {q}", fontsize=8)
        ax = fig.add_subplot(len(index), 4, (4 * row + 2, 4 * row + 4))
        good = d.ivar[i] > 0
        ax.plot(d.wavelength[good], d.spectra[i][good], lw=0.4, c="0.3")
        smooth = np.convolve(d.spectra[i], np.ones(15) / 15, mode="same")
        ax.plot(d.wavelength, smooth, lw=0.8, c="k")
        top = np.percentile(smooth, 99.5) * 1.3
        for name, rest in EMISSION_LINES.items():
            obs = rest * (1 + d.redshift[i])
            if d.wavelength[0] < obs < d.wavelength[-1]:
                ax.axvline(obs, c="tab:green", lw=0.6, ls=":")
                ax.text(obs, top * 0.92, name, fontsize=6, rotation=90, va="top")
        ax.set_ylim(min(0, np.percentile(smooth, 1)), top)
        ax.set_ylabel("flux [1e-17 cgs/A]", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.axes[-1].set_xlabel("observed wavelength [A]")
    fig.tight_layout()
    return fig


def plot_colour_redshift(d: SurveyData) -> Figure:
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    _populations(ax, d.redshift, colours(d)["g_r"], d.props["quiescent"])
    ax.set(xlabel="redshift", ylabel="g - r (observed)", title="colour-redshift", ylim=(0, 2.2))
    return fig


def plot_colour_magnitude(d: SurveyData, z_range: tuple[float, float] = (0.1, 0.2)) -> Figure:
    sel = (d.redshift >= z_range[0]) & (d.redshift < z_range[1])
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot(1, 2, 1)
    c = colours(d)["g_r"]
    _populations(ax, d.props["mag_r"][sel], c[sel], d.props["quiescent"][sel])
    ax.set(
        xlabel="r [AB]", ylabel="g - r", title=f"colour-magnitude, {z_range[0]} < z < {z_range[1]}"
    )
    ax = fig.add_subplot(1, 2, 2)
    ax.hist(c[sel], bins=40, color="0.4")
    ax.set(xlabel="g - r", ylabel="galaxies", title="bimodality")
    fig.tight_layout()
    return fig


def plot_size_magnitude(d: SurveyData) -> Figure:
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot(1, 2, 1)
    _populations(ax, d.props["mag_r"], d.props["r_half_arcsec"], d.props["quiescent"])
    ax.set(xlabel="r [AB]", ylabel="half-light radius [arcsec]", yscale="log",
           title="size-magnitude")  # fmt: skip
    ax = fig.add_subplot(1, 2, 2)
    expected = np.sqrt(d.props["r_half_arcsec"] ** 2 + (d.params["psf_fwhm_r"] / 2) ** 2)
    _populations(ax, expected, image_half_light_radius(d), d.props["quiescent"])
    lim = [0.4, float(expected.max()) * 1.1]
    ax.plot(lim, lim, c="k", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="catalogue r_half (+) PSF [arcsec]",
           ylabel="measured on r image [arcsec]", title="sizes on the images")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_ew_ssfr(d: SurveyData) -> Figure:
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot(1, 2, 1)
    ew = np.clip(d.props["ew_halpha"], 0.05, None)
    _populations(ax, d.props["log_ssfr"], ew, d.props["quiescent"])
    ax.set(xlabel="log sSFR [1/yr]", ylabel="EW(H-alpha) rest [A]", yscale="log",
           title="line strength vs sSFR")  # fmt: skip
    ax = fig.add_subplot(1, 2, 2)
    m, ok = measured_halpha_ew(d)
    ok &= ew > 1
    ax.scatter(ew[ok], m[ok], s=4, alpha=0.4, lw=0)
    lim = [1, max(float(ew[ok].max(initial=10)), 10)]
    ax.plot(lim, lim, c="k", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="model EW [A]", ylabel="measured on noisy spectrum",
           title="H-alpha EW recovered")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_photometry(d: SurveyData) -> Figure:
    """Image stamp flux against spectrum-synthesized flux, and the pulls in noise units."""
    fig = Figure(figsize=(10, 3.4))
    for k, b in enumerate("grz"):
        ax = fig.add_subplot(1, 3, k + 1)
        img = d.images[..., k].sum(axis=(1, 2), dtype=np.float64)
        spec = d.props[f"flux_{b}"]
        pull = (img - spec) / (d.params[f"sky_sigma_{b}"] * d.images.shape[1])
        ax.hist(np.clip(pull, -6, 6), bins=40, color="0.4", density=True)
        x = np.linspace(-6, 6, 200)
        ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), c="tab:red", lw=1)
        ax.set(xlabel=f"(image - spectrum) / noise, {b}", title=f"{b}: image vs spectrum flux")
    fig.tight_layout()
    return fig


def realism_figures(d: SurveyData) -> dict[str, Figure]:
    """All realism figures by file stem."""
    return {
        "survey_examples": plot_examples(d),
        "survey_colour_redshift": plot_colour_redshift(d),
        "survey_colour_magnitude": plot_colour_magnitude(d),
        "survey_size_magnitude": plot_size_magnitude(d),
        "survey_ew_ssfr": plot_ew_ssfr(d),
        "survey_photometry": plot_photometry(d),
    }
