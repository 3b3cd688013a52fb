"""Measurements that say whether a simulated survey looks like DESI x Legacy Surveys.

Each function takes a ``SurveyData`` and returns plain numbers (JSON-ready):
the colour-redshift relation of both populations, the red-sequence / blue-cloud
bimodality in colour, size against magnitude, H-alpha strength against specific
star formation (also re-measured on the noisy spectra), image photometry against
the photometry synthesized from the spectrum, in units of the image noise, the
sky noise measured in the images' pixels against the stated one, the sample's
redshift / magnitude / S/N distributions (DESI BGS: r < 19.5, median z ~ 0.2;
Hahn et al. 2023), and the fibre: the share of the light in the 1.5" fibre and the
nearby galaxies that overflow their cutout.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from scifm.survey.config import BANDS
from scifm.survey.io import SurveyData

Z_BINS = (0.002, 0.1, 0.2, 0.3, 0.4, 0.6)


def _median_in_bins(x: np.ndarray, y: np.ndarray, bins: tuple[float, ...]) -> list[float | None]:
    out = []
    for lo, hi in itertools.pairwise(bins):
        sel = (x >= lo) & (x < hi)
        out.append(float(np.median(y[sel])) if sel.sum() >= 5 else None)
    return out


def colours(d: SurveyData) -> dict[str, np.ndarray]:
    """Observed g-r and r-z from the spectrum-synthesized fluxes."""
    return {"g_r": d.props["mag_g"] - d.props["mag_r"], "r_z": d.props["mag_r"] - d.props["mag_z"]}


def colour_redshift(d: SurveyData) -> dict:
    """Median g-r per redshift bin for quiescent and star-forming galaxies."""
    c, q = colours(d)["g_r"], d.props["quiescent"] == 1
    red = _median_in_bins(d.redshift[q], c[q], Z_BINS)
    blue = _median_in_bins(d.redshift[~q], c[~q], Z_BINS)
    pairs = [(r, b) for r, b in zip(red, blue) if r is not None and b is not None]
    finite_red = [r for r in red if r is not None]
    return {
        "z_bins": list(Z_BINS),
        "median_g_r_quiescent": red,
        "median_g_r_star_forming": blue,
        "red_minus_blue_min": float(min(r - b for r, b in pairs)) if pairs else None,
        "red_sequence_reddens_with_z": bool(np.all(np.diff(finite_red) > 0)),
    }


def bimodality(d: SurveyData, z_range: tuple[float, float] = (0.1, 0.2)) -> dict:
    """Two-Gaussian fit to g-r in a redshift slice; Ashman's D > 2 means two clear peaks."""
    from sklearn.mixture import GaussianMixture

    sel = (d.redshift >= z_range[0]) & (d.redshift < z_range[1])
    x = colours(d)["g_r"][sel][:, None]
    if len(x) < 20:
        return {"z_range": list(z_range), "n": len(x), "note": "fewer than 20 galaxies"}
    gm = GaussianMixture(2, random_state=0).fit(x)
    mu, sd = gm.means_.ravel(), np.sqrt(gm.covariances_.ravel())
    order = np.argsort(mu)
    mu, sd, w = mu[order], sd[order], gm.weights_[order]
    d_ashman = float(np.sqrt(2) * abs(mu[1] - mu[0]) / np.sqrt(sd[0] ** 2 + sd[1] ** 2))
    bic1 = GaussianMixture(1, random_state=0).fit(x).bic(x)
    mag = d.props["mag_r"][sel]
    bright = mag < np.median(mag)
    is_red = gm.predict(x) == order[1]
    return {
        "z_range": list(z_range),
        "n": int(sel.sum()),
        "blue_mean": float(mu[0]), "red_mean": float(mu[1]),
        "blue_sigma": float(sd[0]), "red_sigma": float(sd[1]),
        "red_fraction": float(w[1]),
        "ashman_d": d_ashman,
        "delta_bic_two_vs_one": float(bic1 - gm.bic(x)),
        "red_fraction_bright_half": float(is_red[bright].mean()),
        "red_fraction_faint_half": float(is_red[~bright].mean()),
    }  # fmt: skip


def image_half_light_radius(d: SurveyData, band: int = 1, r_max: float = 30.0) -> np.ndarray:
    """Half-light radius (arcsec) measured on the noisy images by a curve of growth.

    Pixels within ``r_max`` pixels of the galaxy centre are sorted by radius; the
    radius enclosing half of their summed flux is returned (PSF included).
    """
    size = d.images.shape[1]
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    out = np.empty(len(d))
    for i in range(len(d)):
        r = np.hypot(xx - d.params["dx"][i], yy - d.params["dy"][i]).ravel()
        inside = r < r_max
        order = np.argsort(r[inside])
        growth = np.cumsum(d.images[i, ..., band].ravel()[inside][order])
        out[i] = r[inside][order][np.searchsorted(growth, 0.5 * growth[-1])]
    return out * d.config.pixel_scale


def size_magnitude(d: SurveyData) -> dict:
    """Brighter galaxies are larger, and the images show the catalogue sizes.

    The half-light radius measured on the r images is compared with the catalogue
    value broadened by the PSF, sqrt(r_half^2 + (FWHM / 2)^2) (exact for Gaussians).
    """
    mag, size = d.props["mag_r"], d.props["r_half_arcsec"]
    rho = stats.spearmanr(mag, np.log10(size)).statistic
    slope = np.polyfit(mag, np.log10(size), 1)[0]
    measured = image_half_light_radius(d)
    expected = np.sqrt(size**2 + (d.params["psf_fwhm_r"] / 2) ** 2)
    return {
        "spearman_log_rhalf_vs_mag_r": float(rho),
        "slope_dex_per_mag": float(slope),
        "median_rhalf_arcsec": float(np.median(size)),
        "spearman_image_rhalf_vs_catalogue": float(stats.spearmanr(measured, size).statistic),
        "median_image_over_psf_broadened": float(np.median(measured / expected)),
    }


def measured_halpha_ew(d: SurveyData) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame H-alpha EW re-measured on the noisy spectra; (ew, valid) per galaxy.

    Continuum: median of 6480-6520 and 6610-6650 A (rest); line: continuum-subtracted
    flux within 8 A of 6562.8 A. Valid when the whole window is on the DESI grid.
    """
    ew, valid = np.full(len(d), np.nan), np.zeros(len(d), bool)
    for i in range(len(d)):
        rest = d.wavelength / (1.0 + d.redshift[i])
        if rest[-1] < 6660 or rest[0] > 6470:
            continue
        f = d.spectra[i]
        side = ((rest > 6480) & (rest < 6520)) | ((rest > 6610) & (rest < 6650))
        line = np.abs(rest - 6562.8) < 8.0
        cont = np.median(f[side])
        if cont <= 0:
            continue
        ew[i] = np.sum(f[line] - cont) * (d.wavelength[1] - d.wavelength[0]) / cont
        ew[i] /= 1.0 + d.redshift[i]
        valid[i] = True
    return ew, valid


def emission_lines(d: SurveyData) -> dict:
    """H-alpha EW against sSFR (model values) and the EW the noisy spectra show."""
    ew, ssfr = d.props["ew_halpha"], d.props["log_ssfr"]
    q = d.props["quiescent"] == 1
    m_ew, ok = measured_halpha_ew(d)
    ok &= ew > 1.0
    rho = stats.spearmanr(ssfr, np.log10(np.clip(ew, 0.01, None))).statistic
    return {
        "spearman_log_ew_vs_log_ssfr": float(rho),
        "median_ew_star_forming": float(np.median(ew[~q])),
        "median_ew_quiescent": float(np.median(ew[q])),
        "n_measured": int(ok.sum()),
        "median_measured_over_model": float(np.median(m_ew[ok] / ew[ok])) if ok.any() else None,
        "spearman_measured_vs_model": float(stats.spearmanr(m_ew[ok], ew[ok]).statistic)
        if ok.sum() > 5 else None,
    }  # fmt: skip


def photometry_consistency(d: SurveyData) -> dict:
    """Stamp-summed image flux vs spectrum-synthesized flux, in units of the image noise.

    The noise of a sum over the whole stamp is sky_sigma * stamp side, plus the source's
    photon noise (flux / gain, ``SurveyConfig.electrons_per_nmgy``). Against the
    spectrum's flux the pull (image - spectrum) / noise has median ~0, with a tail of
    bright, extended galaxies whose Sersic wings leave the stamp; against the
    noiseless in-stamp flux (``stamp_flux_*``, when stored) it should be N(0, 1).
    """
    side = d.images.shape[1]
    gain = dict(zip(BANDS, d.config.electrons_per_nmgy))
    out = {}
    for k, b in enumerate(BANDS):
        img = d.images[..., k].sum(axis=(1, 2), dtype=np.float64)
        spec = d.props[f"flux_{b}"]
        in_stamp = d.props.get(f"stamp_flux_{b}", spec)
        shot = np.clip(in_stamp, 0.0, None) / gain[b]
        sigma = np.sqrt((d.params[f"sky_sigma_{b}"] * side) ** 2 + shot)
        pull = (img - spec) / sigma
        row = {
            "median_pull": float(np.median(pull)),
            "robust_std_pull": float(1.4826 * np.median(np.abs(pull - np.median(pull)))),
            "frac_within_3sigma": float(np.mean(np.abs(pull) < 3)),
            "median_rel_diff": float(np.median((img - spec) / spec)),
            "p95_light_outside_stamp": None,
            "median_noise_nmgy": float(np.median(sigma)),
        }
        if f"stamp_flux_{b}" in d.props:
            stamp = d.props[f"stamp_flux_{b}"]
            noise_pull = (img - stamp) / sigma
            row["noise_pull_mean"] = float(np.mean(noise_pull))
            row["noise_pull_std"] = float(np.std(noise_pull))
            row["p95_light_outside_stamp"] = float(np.percentile(1 - stamp / spec, 95))
        out[b] = row
    return out


NOISE_BORDER = 16  # outer pixels of the stamp in which the sky noise is measured


def _border_square_diffs(images: np.ndarray, border: int) -> tuple[np.ndarray, int]:
    """Per image, the sum of squared horizontal neighbour differences in the stamp's border.

    ``images`` (N, H, W) -> ((N,) float64 sums, number of differences per image).
    """
    strips = (
        images[:, :border, :], images[:, -border:, :],  # top, bottom: (N, B, W)
        images[:, border:-border, :border], images[:, border:-border, -border:],  # sides
    )  # fmt: skip
    total, n = np.zeros(len(images)), 0
    for strip in strips:
        diff = np.diff(strip.astype(np.float64), axis=2)
        total += np.einsum("nhw,nhw->n", diff, diff)
        n += diff.shape[1] * diff.shape[2]
    return total, n


def image_noise(d: SurveyData, border: int = NOISE_BORDER, chunk: int = 256) -> dict:
    """Per band: the sky noise measured in the images over the stated ``sky_sigma``.

    Differences of horizontally adjacent pixels cancel a smooth galaxy and have std
    sqrt(2) sigma for white noise; they are taken in the stamp's outer ``border`` pixels,
    where the sky dominates. Per galaxy, ``ratio`` = rms(difference) / (sqrt(2) sigma) is
    1 with sampling spread sqrt(3 / (4 n)) for n differences (adjacent differences share
    a pixel: correlation -1/2). The median over galaxies resists the few nearby ones
    whose light reaches the border (their photon noise adds to the sky's).
    """
    side = d.images.shape[1]
    if not 1 < border < side // 2:
        raise ValueError(f"image_noise: border={border}; expected 1 < border < {side // 2}")
    out = {}
    for k, b in enumerate(BANDS):
        sums = []
        for i in range(0, len(d), chunk):  # chunks: a float64 copy of all images is large
            s, n = _border_square_diffs(d.images[i : i + chunk, :, :, k], border)
            sums.append(s)
        ratio = np.sqrt(np.concatenate(sums) / n / 2.0) / d.params[f"sky_sigma_{b}"]
        out[b] = {
            "median_ratio": float(np.median(ratio)),
            "ratio_p5_p95": [float(v) for v in np.percentile(ratio, [5, 95])],
            "n_differences_per_galaxy": n,
            "expected_spread_per_galaxy": float(np.sqrt(3.0 / (4.0 * n))),
        }
    return out


def sample_summary(d: SurveyData) -> dict:
    """Redshift, magnitude, mass and S/N distributions (percentiles 5, 50, 95)."""

    def pct(x: np.ndarray) -> list[float]:
        return [float(v) for v in np.nanpercentile(x, [5, 50, 95])]

    return {
        "n": len(d),
        "redshift": pct(d.redshift),
        "mag_r": pct(d.props["mag_r"]),
        "frac_r_below_19p5": float(np.mean(d.props["mag_r"] < 19.5)),
        "log_mstar": pct(d.props["log_mstar"]),
        "log_ssfr": pct(d.props["log_ssfr"]),
        "quiescent_fraction": float(np.mean(d.props["quiescent"] == 1)),
        "spec_snr_per_pixel": pct(d.props["spec_snr"]),
        "r_half_arcsec": pct(d.props["r_half_arcsec"]),
    }


def fiber_and_overflow(d: SurveyData) -> dict:
    """The fibre's share of the light against size, and the nearby galaxies larger than the stamp.

    DESI BGS fibre magnitudes are ~1.5-2 mag fainter than total ones at r ~ 19
    (fibre fraction ~0.15-0.25); the share falls with the galaxy's angular size.
    """
    z = d.redshift
    out: dict = {
        "z_min": float(z.min()), "z_max": float(z.max()),
        "frac_z_below_0p02": float(np.mean(z < 0.02)),
        "frac_z_below_0p05": float(np.mean(z < 0.05)),
    }  # fmt: skip
    if "fiber_frac_r" not in d.props:
        return {**out, "note": "no fibre fractions stored (a survey made before fibre spectra)"}
    fib, size = d.props["fiber_frac_r"], d.props["r_half_arcsec"]
    lost = 1.0 - d.props["stamp_flux_r"] / d.props["flux_r"]
    out.update({
        "fiber_frac_r": [float(v) for v in np.percentile(fib, [5, 50, 95])],
        "fiber_minus_total_mag_r_median": float(np.median(-2.5 * np.log10(fib))),
        "spearman_fiber_frac_vs_size": float(stats.spearmanr(fib, size).statistic),
        "median_fiber_frac_z_below_0p05": float(np.median(fib[z < 0.05])) if (z < 0.05).any()
        else None,
        "frac_overflowing_stamp_10pc": float(np.mean(lost > 0.1)),
        "max_light_outside_stamp": float(lost.max()),
    })  # fmt: skip
    return out


def realism_report(d: SurveyData) -> dict:
    """All realism measurements of a survey sample."""
    return {
        "sample": sample_summary(d),
        "colour_redshift": colour_redshift(d),
        "bimodality": bimodality(d),
        "size_magnitude": size_magnitude(d),
        "emission_lines": emission_lines(d),
        "photometry_image_vs_spectrum": photometry_consistency(d),
        "image_noise": image_noise(d),
        "fiber_and_overflow": fiber_and_overflow(d),
    }
