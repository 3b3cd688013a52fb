"""Realism measurements on the tiny survey: image noise pulls, line EWs, report shape."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from scifm.core import numpy_rng
from scifm.survey import read_survey
from scifm.survey.config import BANDS
from scifm.survey.io import SurveyData
from scifm.survey.realism import (
    image_noise,
    measured_halpha_ew,
    photometry_consistency,
    realism_report,
)

# Two-sided false-alarm probability of each noise check: a correct simulator fails it for
# about 1 seed in 1000. The bounds below follow from it and the sample size, not by hand.
P_FALSE = 1e-3
Z = float(stats.norm.ppf(1 - P_FALSE / 2))  # 3.29
MEDIAN_EFFICIENCY = np.sqrt(np.pi / 2)  # sd(median of n normals) ~ 1.2533 sd / sqrt(n)


def check_stamp_pulls(d: SurveyData) -> None:
    """Stamp sums: (image - noiseless stamp) / noise is N(0, 1) per galaxy and band.

    With 10 galaxies this catches gross errors only: the sum of 30 squared pulls is
    chi2(30), and a noise 1.5x too large still passes its 99.9 % bound 2 times in 5.
    """
    phot, n = photometry_consistency(d), len(d)
    for b in BANDS:
        mean = phot[b]["noise_pull_mean"]
        assert abs(mean) < Z / np.sqrt(n), f"stamp-sum noise pulls in {b}: mean {mean:.2f}"
        assert abs(phot[b]["median_rel_diff"]) < 0.05
    # np.std is about each band's mean: the second moment about 0 is std^2 + mean^2.
    ss = n * sum(phot[b]["noise_pull_std"] ** 2 + phot[b]["noise_pull_mean"] ** 2 for b in BANDS)
    lo, hi = stats.chi2.ppf([P_FALSE / 2, 1 - P_FALSE / 2], 3 * n)
    assert lo < ss < hi, (
        f"stamp-sum noise pulls: sum of squares {ss:.1f} outside [{lo:.1f}, {hi:.1f}]"
    )


def check_pixel_noise(d: SurveyData) -> None:
    """Pixels: the sky noise measured in the stamp borders is the stated one.

    ~8400 pixel differences per galaxy and band give each galaxy's ratio to +-0.9 %;
    the median of 10 galaxies is bounded to +-1.2 % (a 1.5x error is ~130 sd away).
    """
    noise, n = image_noise(d), len(d)
    for b in BANDS:
        sd = MEDIAN_EFFICIENCY * noise[b]["expected_spread_per_galaxy"] / np.sqrt(n)
        ratio = noise[b]["median_ratio"]
        assert abs(ratio - 1) < Z * sd, (
            f"pixel noise in {b}: {ratio:.4f} x the stated sky_sigma, expected 1 +- {Z * sd:.4f}"
        )


def test_image_noise_is_the_stated_sky_noise(tiny_survey):
    d = read_survey(tiny_survey)
    check_stamp_pulls(d)
    check_pixel_noise(d)


def test_noise_checks_fail_when_the_noise_is_off_by_1p5(tiny_survey):
    d = read_survey(tiny_survey)
    sigma = np.stack([d.params[f"sky_sigma_{b}"] for b in BANDS], -1)[:, None, None, :]
    extra = numpy_rng(0).standard_normal(d.images.shape) * sigma * np.sqrt(1.5**2 - 1)
    louder = replace(d, images=(d.images + extra).astype(np.float32))  # noise std x 1.5
    for b in BANDS:
        assert image_noise(louder)[b]["median_ratio"] == pytest.approx(1.5, rel=0.02)
    with pytest.raises(AssertionError, match="pixel noise"):
        check_pixel_noise(louder)
    stated = {f"sky_sigma_{b}": 1.5 * d.params[f"sky_sigma_{b}"] for b in BANDS}
    overstated = replace(d, params={**d.params, **stated})  # claims 1.5x the real noise
    with pytest.raises(AssertionError, match="pixel noise"):
        check_pixel_noise(overstated)


def test_pixel_noise_spread_matches_its_formula():
    # Pure white noise of a known sigma: the per-galaxy ratios scatter as documented.
    n, side, sigma = 400, 64, 0.01
    images = numpy_rng(3).standard_normal((n, side, side, 3)).astype(np.float32) * sigma
    d = SurveyData(
        images=images, spectra=np.zeros((n, 1), np.float32), ivar=np.ones((n, 1), np.float32),
        redshift=np.zeros(n, np.float32), targetid=np.arange(n), props={},
        params={f"sky_sigma_{b}": np.full(n, sigma) for b in BANDS}, wavelength=np.ones(1),
    )  # fmt: skip
    for row in image_noise(d).values():
        spread = row["expected_spread_per_galaxy"]
        assert row["n_differences_per_galaxy"] == 2 * 16 * 63 + 2 * 32 * 15
        assert abs(row["median_ratio"] - 1) < Z * MEDIAN_EFFICIENCY * spread / np.sqrt(n)
        p5, p95 = row["ratio_p5_p95"]
        assert (p95 - p5) / (2 * stats.norm.ppf(0.95)) == pytest.approx(spread, rel=0.15)
    with pytest.raises(ValueError, match="border=40"):
        image_noise(d, border=40)


def test_halpha_ew_measured_on_noisy_spectra_tracks_the_model(tiny_survey):
    d = read_survey(tiny_survey)
    ew, ok = measured_halpha_ew(d)
    strong = ok & (d.props["ew_halpha"] > 10)
    assert strong.sum() >= 3
    ratio = ew[strong] / d.props["ew_halpha"][strong]
    assert np.all((ratio > 0.5) & (ratio < 1.5))


def test_image_sizes_follow_the_catalogue(tiny_survey):
    rep = realism_report(read_survey(tiny_survey))["size_magnitude"]
    assert rep["spearman_image_rhalf_vs_catalogue"] > 0.6
    assert 0.6 < rep["median_image_over_psf_broadened"] < 1.5


def test_report_is_json_ready(tiny_survey):
    rep = realism_report(read_survey(tiny_survey))
    assert rep["sample"]["n"] == 10 and rep["bimodality"]["n"] < 20
    json.dumps(rep)
