"""Readers of real survey files (DESI coadds, SDSS spec files, Legacy Surveys cutouts)."""

from scifm.survey.readers.desi import merge_arms, read_desi_coadd, read_redrock
from scifm.survey.readers.files import read_spectrum_file, spectrum_file_kind
from scifm.survey.readers.grid import (
    DESI_WAVE,
    SpectrumRecord,
    resample_flux_conserving,
)
from scifm.survey.readers.legacy import fit_cutout, read_legacy_cutout
from scifm.survey.readers.sdss import read_sdss_spec

__all__ = [
    "DESI_WAVE",
    "SpectrumRecord",
    "fit_cutout",
    "merge_arms",
    "read_desi_coadd",
    "read_legacy_cutout",
    "read_redrock",
    "read_sdss_spec",
    "read_spectrum_file",
    "resample_flux_conserving",
    "spectrum_file_kind",
]
