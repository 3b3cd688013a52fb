"""Bad input to the survey readers and the redshift command: one clear error naming the file
and what is wrong in it, or (absurd flux) a flag that says so, never a confident "ok"."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from astropy.io import fits

from scifm.cli import main
from scifm.survey.io import read_spectra, survey_info
from scifm.survey.readers import read_spectrum_file
from scifm.survey.readers.grid import DESI_WAVE
from scifm.survey.readers.synthetic import specutils_desi_coadds, write_sdss_spec
from scifm.survey.redshift import (
    BAD_VALUES,
    catalog_redshift_range,
    fit_redshifts,
    survey_input,
)
from scifm.survey.released import write_released
from scifm.survey.templates import read_templates

COADD = specutils_desi_coadds("coadd-sv3-dark-26065.fits")[0]
LOGLAM = np.arange(3.5563, 4.0172, 1e-4)  # the SDSS grid over the DESI range


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """The one line ``scifm`` prints for a user error (asserting that it is one line)."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("scifm: error: ") and err.count("\n") == 1, err
    return err


def _released(path, n: int = 6, z_shape: tuple = (), tid=None) -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(0.01, 0.5, (n, *z_shape))
    tid = 1000 + np.arange(n) if tid is None else tid
    spectra = rng.normal(1.0, 0.1, (n, 7781, 1)).astype(np.float32)
    write_released(str(path), np.zeros((n, 8, 8, 3), np.float32), spectra, z, tid, n_groups=2)


def test_absurd_flux_is_flagged_bad_values_not_ok(tmp_path, capsys):
    t_wave, t_flux, _ = read_templates()
    flux = np.interp(DESI_WAVE / 1.1, t_wave, t_flux.sum(axis=0))
    flux = np.stack([flux / flux.max(), np.full(7781, 3e38)])  # a float32 fill value
    fits_ = fit_redshifts(flux, np.full((2, 7781), 1e4), z_range=(0.05, 0.15))
    assert fits_[0].flag != BAD_VALUES and abs(fits_[0].z - 0.1) < 1e-3
    assert fits_[1].flag == BAD_VALUES and not fits_[1].ok and np.isnan(fits_[1].z)
    huge = tmp_path / "huge_sdss.fits"
    write_sdss_spec(huge, LOGLAM, np.full_like(LOGLAM, 3e38), np.ones_like(LOGLAM), 0.1)
    assert main(["survey", "redshift", str(huge)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.endswith(BAD_VALUES) and " ok" not in line


def test_fibermap_that_is_an_image_or_lacks_targetid_is_named(tmp_path, capsys):
    image = tmp_path / "fmimage_coadd.fits"
    with fits.open(COADD) as h:
        h["FIBERMAP"] = fits.ImageHDU(np.zeros(5), name="FIBERMAP")
        h.writeto(image)
    err = _cli_error(["survey", "read-spectrum", str(image)], capsys)
    assert "fmimage_coadd.fits: HDU FIBERMAP is ImageHDU, not a table" in err
    notid = tmp_path / "notid_coadd.fits"
    with fits.open(COADD) as h:
        cols = [c for c in h["FIBERMAP"].columns if c.name != "TARGETID"]
        h["FIBERMAP"] = fits.BinTableHDU.from_columns(cols, name="FIBERMAP")
        h.writeto(notid)
    with pytest.raises(ValueError, match="notid_coadd.fits: HDU FIBERMAP has no TARGETID"):
        read_spectrum_file(notid)


def test_empty_or_nan_arm_wavelengths_are_named(tmp_path):
    empty = tmp_path / "emptywave_coadd.fits"
    with fits.open(COADD) as h:
        n = len(h["FIBERMAP"].data)
        h["B_WAVELENGTH"].data = np.zeros(0)
        for k in ("FLUX", "IVAR", "MASK"):
            h[f"B_{k}"].data = np.zeros((n, 0), np.float32 if k != "MASK" else np.int32)
        h.writeto(empty)
    with pytest.raises(ValueError, match=r"emptywave_coadd.fits: B_WAVELENGTH has shape \(0,\)"):
        read_spectrum_file(empty)
    nan = tmp_path / "nanwave_coadd.fits"
    with fits.open(COADD) as h:
        h["R_WAVELENGTH"].data[5] = np.nan
        h.writeto(nan)
    with pytest.raises(ValueError, match="nanwave_coadd.fits: R_WAVELENGTH has NaN/inf"):
        read_spectrum_file(nan)


@pytest.mark.parametrize(
    ("name", "column", "expected"),
    [
        ("str_sdss.fits", fits.Column(name="flux", format="5A", array=["abc"] * len(LOGLAM)),
         r"str_sdss.fits: COADD column flux has dtype <U5"),
        ("vec_sdss.fits", fits.Column(name="flux", format="3E", array=np.ones((len(LOGLAM), 3))),
         r"vec_sdss.fits: COADD column flux .* shape \(\d+, 3\)"),
    ],
)  # fmt: skip
def test_sdss_flux_column_that_is_no_number_per_pixel_is_named(tmp_path, name, column, expected):
    path = tmp_path / name
    table = fits.BinTableHDU.from_columns([
        column, fits.Column(name="loglam", format="E", array=LOGLAM.astype(np.float32)),
        fits.Column(name="ivar", format="E", array=np.ones(len(LOGLAM), np.float32)),
    ], name="COADD")  # fmt: skip
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(ValueError, match=expected):
        read_spectrum_file(path)


def test_released_redshifts_as_a_column_are_read_flat(tmp_path):
    path = tmp_path / "rel_2dz.h5"
    _released(path, z_shape=(1,))
    d = read_spectra(path, np.arange(6))
    assert d["redshift"].shape == (6,) and d["targetid"].shape == (6,)
    tids, src = survey_input(path, "all", 2)
    assert tids == [1000, 1001] and 0.01 <= src["meta"][1]["true_z"] <= 0.5
    with h5py.File(path, "a") as f:  # a redshift per row is still required
        del f["0/redshifts"]
        f["0/redshifts"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"rel_2dz.h5: group '0' redshifts have shape \(3, 2\)"):
        survey_info(path)


def test_released_string_targetids_are_named(tmp_path, capsys):
    path = tmp_path / "rel_strtid.h5"
    _released(path, tid=np.array([b"abc"] * 6))
    err = _cli_error(["survey", "redshift", str(path), "--n", "2"], capsys)
    assert "rel_strtid.h5: group '0' targetids has dtype |S3; expected integers" in err


def _catalog(path, data) -> str:
    with h5py.File(path, "w") as f:
        if data is None:
            f.create_group("redshift")
        else:
            f["redshift"] = data
    return str(path)


def test_bad_catalog_redshifts_are_named(tmp_path, capsys):
    spec = tmp_path / "good_sdss.fits"
    write_sdss_spec(spec, LOGLAM, np.ones_like(LOGLAM), np.ones_like(LOGLAM), 0.1)
    for name, data, expected in (
        ("cat_str.h5", np.array([b"a", b"b"]), "cat_str.h5: redshift is a dataset of dtype |S1"),
        ("cat_grp.h5", None, "cat_grp.h5: redshift is a group"),
        ("cat_nan.h5", np.full(5, np.nan), "cat_nan.h5: dataset redshift holds no finite"),
        ("cat_empty.h5", np.zeros(0), "cat_empty.h5: dataset redshift holds no finite"),
    ):
        catalog = _catalog(tmp_path / name, data)
        err = _cli_error(["survey", "redshift", str(spec), "--catalog", catalog], capsys)
        assert expected in err
    partly = _catalog(tmp_path / "cat_partnan.h5", np.array([np.nan, 0.1, 0.4, np.inf]))
    assert catalog_redshift_range(partly) == (0.1, 0.4)


def test_survey_file_with_string_ivar_is_named(tiny_survey, tmp_path, capsys):
    path = tmp_path / "tiny_strspec.h5"
    shutil.copy(tiny_survey, path)
    with h5py.File(path, "a") as f:
        shape = f["ivar"].shape
        del f["ivar"]
        f["ivar"] = np.full(shape, b"x")
    err = _cli_error(["survey", "redshift", str(path), "--n", "2"], capsys)
    assert "tiny_strspec.h5: dataset ivar has dtype |S1; expected numbers" in err


def test_survey_file_off_the_desi_grid_is_named_before_the_fit(tiny_survey, tmp_path):
    path = tmp_path / "tiny_shortwave.h5"
    shutil.copy(tiny_survey, path)
    with h5py.File(path, "a") as f:
        for k in ("spectra", "ivar", "wavelength"):
            short = f[k][..., :100]
            del f[k]
            f[k] = short
    assert survey_info(path)["n"] > 0  # a valid survey file, on another grid
    with pytest.raises(ValueError, match="tiny_shortwave.h5: dataset spectra has 100 wavel"):
        survey_input(path, "all", 2)


def test_survey_file_with_a_2d_wavelength_grid_is_named(tiny_survey, tmp_path, capsys):
    path = tmp_path / "tiny_wave2d.h5"
    shutil.copy(tiny_survey, path)
    with h5py.File(path, "a") as f:
        wave = f["wavelength"][:]
        del f["wavelength"]
        f["wavelength"] = np.stack([wave, wave])
    err = _cli_error(["survey", "info", str(path)], capsys)
    assert f"wavelength has shape (2, {wave.size}); expected (n_wave,)" in err
