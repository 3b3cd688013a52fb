"""Realism measurements on the tiny survey: image noise pulls, line EWs, report shape."""

from __future__ import annotations

import json

import numpy as np

from scifm.survey import read_survey
from scifm.survey.realism import (
    measured_halpha_ew,
    photometry_consistency,
    realism_report,
)


def test_image_noise_pulls_are_unit_normal_ish(tiny_survey):
    phot = photometry_consistency(read_survey(tiny_survey))
    for band in "grz":
        assert abs(phot[band]["noise_pull_mean"]) < 1.5
        assert 0.4 < phot[band]["noise_pull_std"] < 1.8
        assert abs(phot[band]["median_rel_diff"]) < 0.05


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
