"""Simulated DESI x Legacy Surveys galaxy survey for AstroCLIP: parameters, spectra, images."""

from scifm.survey.config import BANDS, SurveyConfig
from scifm.survey.generate import generate_survey
from scifm.survey.io import SurveyData, read_survey, survey_info, write_survey
from scifm.survey.params import PARAM_DOC, sample_galaxy, sample_params
from scifm.survey.simulate import PROP_DOC, simulate_galaxy, simulate_range

__all__ = [
    "BANDS",
    "PARAM_DOC",
    "PROP_DOC",
    "SurveyConfig",
    "SurveyData",
    "generate_survey",
    "read_survey",
    "sample_galaxy",
    "sample_params",
    "simulate_galaxy",
    "simulate_range",
    "survey_info",
    "write_survey",
]
