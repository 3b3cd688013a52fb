"""Readers of real files: DESI coadds shipped in specutils' wheel, SDSS and Legacy layouts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import specutils
from astropy.io import fits

from scifm.survey.readers import (
    DESI_WAVE,
    fit_cutout,
    read_desi_coadd,
    read_legacy_cutout,
    read_spectrum_file,
    resample_flux_conserving,
)
from scifm.survey.readers.grid import NOCOVERAGE
from scifm.survey.readers.synthetic import (
    specutils_desi_coadds,
    write_legacy_cutout,
    write_redrock,
    write_sdss_spec,
)

COADD = specutils_desi_coadds("coadd-sv3-dark-26065.fits")[0]  # has sky fibres and non-targets


def test_desi_coadd_skips_sky_and_non_targets():
    with fits.open(COADD) as h:
        fm = h["FIBERMAP"].data
        keep = (fm["TARGETID"] > 0) & (fm["OBJTYPE"] == "TGT")
        assert (fm["OBJTYPE"] == "SKY").any() and (fm["TARGETID"] < 0).any()  # both present
    recs = read_spectrum_file(COADD)
    assert [r.targetid for r in recs] == list(fm["TARGETID"][keep])
    for r in recs:
        assert r.flux.shape == r.ivar.shape == r.mask.shape == (7781,)
        assert r.redshift is None and r.source.startswith("DESI coadd")
        assert r.meta["OBJTYPE"] == "TGT" and np.isfinite(r.meta["TARGET_RA"])


def test_desi_arms_merge_by_inverse_variance_against_specutils():
    # specutils (the reference reader) gives the three arms separately.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arms = specutils.SpectrumList.read(COADD, format="DESI coadd")
    with fits.open(COADD) as h:
        row = int(np.flatnonzero(h["FIBERMAP"].data["OBJTYPE"] == "TGT")[0])
    rec = read_desi_coadd(COADD)[0]
    idx = [np.rint((a.spectral_axis.value - 3600.0) / 0.8).astype(int) for a in arms]
    flux = [a.flux.value[row] for a in arms]
    ivar = [a.uncertainty.array[row] for a in arms]
    mask = [np.asarray(a.mask[row]) for a in arms]
    b_only = idx[0][idx[0] < idx[1][0]]  # pixels only the B arm covers
    good = (ivar[0][: b_only.size] > 0) & ~mask[0][: b_only.size].astype(bool)
    np.testing.assert_allclose(rec.flux[b_only][good], flux[0][: b_only.size][good], rtol=1e-6)
    overlap = np.intersect1d(idx[0], idx[1])
    assert overlap.size > 10
    ib, ir = np.searchsorted(idx[0], overlap), np.searchsorted(idx[1], overlap)
    wb = np.where(mask[0][ib].astype(bool), 0, ivar[0][ib])
    wr = np.where(mask[1][ir].astype(bool), 0, ivar[1][ir])
    ok = wb + wr > 0
    expected = (flux[0][ib] * wb + flux[1][ir] * wr)[ok] / (wb + wr)[ok]
    np.testing.assert_allclose(rec.flux[overlap][ok], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec.ivar[overlap][ok], (wb + wr)[ok], rtol=1e-5)
    assert np.all(rec.mask[rec.ivar == 0] != 0) and np.all(rec.mask[rec.ivar > 0] == 0)


def test_desi_redrock_join(tmp_path):
    tids = [r.targetid for r in read_desi_coadd(COADD)]
    rr = write_redrock(tmp_path / "redrock.fits", np.array([*tids[:1], 123]), np.array([0.25, 1]))
    recs = read_spectrum_file(COADD, redrock=rr)
    assert recs[0].redshift == pytest.approx(0.25) and recs[0].meta["spectype"] == "GALAXY"
    assert all(r.redshift is None for r in recs[1:])
    with pytest.raises(ValueError, match="no REDSHIFTS or ZBEST"):
        read_spectrum_file(
            COADD, redrock=write_legacy_cutout(tmp_path / "x.fits", np.zeros((4, 4, 3)))
        )


def test_missing_redshifts_are_none_never_nan(tmp_path):
    """A NaN Z (SDSS, redrock) is no redshift; a redrock file of another tile says so."""
    tids = [r.targetid for r in read_desi_coadd(COADD)]
    rr = write_redrock(tmp_path / "nan.fits", np.array(tids[:2]), np.array([np.nan, 0.3]))
    recs = read_spectrum_file(COADD, redrock=rr)
    assert recs[0].redshift is None and recs[1].redshift == pytest.approx(0.3)
    other = write_redrock(tmp_path / "other.fits", np.array([1, 2]), np.array([0.1, 0.2]))
    with pytest.warns(UserWarning, match="none of its TARGETIDs is a target of coadd-sv3"):
        assert all(r.redshift is None for r in read_spectrum_file(COADD, redrock=other))
    loglam = np.arange(3.5800, 3.9600, 1e-4)
    path = write_sdss_spec(tmp_path / "spec-1234-56000-0004.fits", loglam,
                           np.full(loglam.size, 3.0), np.ones(loglam.size), z=np.nan)  # fmt: skip
    (rec,) = read_spectrum_file(path)
    assert rec.redshift is None


def test_resampling_conserves_flux_and_masks_uncovered_pixels():
    loglam = np.arange(np.log10(3800.0), np.log10(9200.0), 1e-4)
    wave = 10**loglam
    line = 5.0 * np.exp(-0.5 * ((wave - 6563.0) / 3.0) ** 2)
    flux_in = 2.0 + line
    f, iv, m = resample_flux_conserving(wave, flux_in, np.full(wave.size, 4.0))
    inside = m == 0
    assert (m[DESI_WAVE < 3790] & NOCOVERAGE).all() and (m[DESI_WAVE > 9210] != 0).all()
    np.testing.assert_allclose(f[inside & (np.abs(DESI_WAVE - 6563) > 30)], 2.0, rtol=1e-5)
    in_edges = np.diff(np.concatenate([[wave[0]], 0.5 * (wave[1:] + wave[:-1]), [wave[-1]]]))
    near = lambda w: np.abs(w - 6563.0) < 40
    np.testing.assert_allclose(((f - 2) * 0.8)[near(DESI_WAVE)].sum(),
                               ((flux_in - 2) * in_edges)[near(wave)].sum(), rtol=2e-3)  # fmt: skip
    assert np.all(iv[inside] >= 4.0 - 1e-3)  # averaging never loses information


def test_sdss_spec_file(tmp_path):
    loglam = np.arange(3.5800, 3.9600, 1e-4)
    flux = np.full(loglam.size, 3.0)
    bad = np.zeros(loglam.size, int)
    bad[1000:1010] = 4
    path = write_sdss_spec(tmp_path / "spec-1234-56000-0042.fits", loglam, flux,
                           np.ones(loglam.size), z=0.123, and_mask=bad)  # fmt: skip
    (rec,) = read_spectrum_file(path)
    assert rec.redshift == pytest.approx(0.123) and rec.targetid == 1_234_567_890_123
    assert rec.meta["plate"] == 1234 and rec.source.startswith("SDSS spec")
    good = rec.mask == 0
    np.testing.assert_allclose(rec.flux[good], 3.0, rtol=1e-5)
    lo, hi = 10 ** loglam[1000], 10 ** loglam[1009]
    assert np.all(rec.mask[(DESI_WAVE > lo) & (DESI_WAVE < hi)] != 0)
    assert rec.wave_range[0] >= 10**3.58 - 1 and rec.wave_range[1] <= 10 ** loglam[-1] + 1


def test_sdss_ids_beyond_int64_keep_the_spectrum(tmp_path):
    """eBOSS plates >= 8192 have SPECOBJID >= 2**63: the id is kept as text in meta, the
    int64 target id is -1, and the real-spectrum path (the page's upload) still reads it."""
    from scifm.astroclip.realspec import read_real_spectra

    loglam = np.arange(3.5800, 3.9600, 1e-4)
    big = 10350431788458862592  # plate 9193
    path = write_sdss_spec(tmp_path / "spec-9193-58039-0123.fits", loglam,
                           np.full(loglam.size, 3.0), np.ones(loglam.size), z=0.1,
                           specobjid=big)  # fmt: skip
    (rec,) = read_spectrum_file(path)
    assert rec.targetid == -1 and rec.meta["specobjid"] == str(big)
    spectra = read_real_spectra(path)
    assert spectra.targetid.tolist() == [-1] and spectra.redshift[0] == pytest.approx(0.1)


def test_desi_single_exposure_spectra_file_is_read_with_a_warning():
    """specutils ships a DESI spectra-*.fits (exposures, not a coadd): each exposure is a
    record, and the reader says so."""
    path = specutils_desi_coadds("spectra-*.fits")[0]
    with pytest.warns(UserWarning, match="single-exposure spectra"):
        recs = read_spectrum_file(path)
    assert recs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coadd raises no such warning
        read_spectrum_file(COADD)


def test_legacy_cutouts_cube_and_planes(tmp_path):
    img = np.random.default_rng(0).normal(size=(60, 64, 3)).astype(np.float32)
    for layout in ("cube", "planes"):
        back = read_legacy_cutout(write_legacy_cutout(tmp_path / f"{layout}.fits", img, layout))
        np.testing.assert_array_equal(back, img)
    big = fit_cutout(img, 152)
    assert big.shape == (152, 152, 3) and big.sum() == pytest.approx(img.sum(), rel=1e-5)
    np.testing.assert_array_equal(fit_cutout(img, 32), img[14:46, 16:48])
    two = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 8, 8), np.float32))]).writeto(two)
    with pytest.raises(ValueError, match=r"bands \['z'\] not found"):
        read_legacy_cutout(two)


def test_wrong_and_corrupt_files_name_the_file_and_problem(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("not a fits file at all\n" * 200)
    with pytest.raises(ValueError, match="notes.fits: not a readable FITS"):
        read_spectrum_file(text)
    with pytest.raises(FileNotFoundError, match="missing.fits"):
        read_spectrum_file(tmp_path / "missing.fits")
    other = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4)))]).writeto(other)
    with pytest.raises(ValueError, match="image.fits: HDUs .* look like neither"):
        read_spectrum_file(other)
    cut = tmp_path / "cut.fits"
    with fits.open(COADD) as h:
        del h["Z_FLUX"]
        h.writeto(cut)
    with pytest.raises(ValueError, match=r"cut.fits: missing HDUs \['Z_FLUX'\]"):
        read_spectrum_file(cut)
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(COADD.read_bytes()[:200_000])
    with pytest.raises(ValueError, match="truncated.fits"):
        read_spectrum_file(truncated)


def test_specutils_desi_files_are_found_through_the_installed_package(monkeypatch):
    import importlib.util

    import scifm.survey.readers.synthetic as synthetic

    names = [p.name for p in specutils_desi_coadds()]
    assert names == sorted(names)
    assert {"coadd-5-169-thru20210419.fits", "coadd-sv3-dark-26065.fits"} <= set(names)
    assert COADD.is_relative_to(Path(specutils.__file__).parent)
    with pytest.raises(FileNotFoundError, match=r"specutils .* holds no coadd-nope\*"):
        specutils_desi_coadds("coadd-nope*.fits")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="specutils is not installed"):
        synthetic.specutils_desi_coadds()
