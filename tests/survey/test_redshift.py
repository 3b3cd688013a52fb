"""Template-fitting redshifts (redrock on our templates): recovery, flags, CLI, split rule."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from scifm.astroclip.data import split_indices
from scifm.cli import main
from scifm.core import numpy_rng
from scifm.survey.io import finished_rows, held_out_rows, read_spectra
from scifm.survey.readers.grid import DESI_WAVE
from scifm.survey.readers.synthetic import write_redrock
from scifm.survey.redshift import (
    OUTSIDE_NOTE,
    fit_redshifts,
    fit_spectrum,
    quality_flag,
    range_note,
)
from scifm.survey.templates import BURSTS, LINES, read_templates

Z_NARROW = (0.05, 0.6)  # a short scan keeps these tests to seconds


def _spectrum_at(z: float, coeff: dict[str, float], sigma: float, seed: int) -> tuple:
    """A noisy spectrum made from our own templates at redshift ``z`` on the DESI grid."""
    wave, flux, names = read_templates()
    model = sum(a * np.interp(DESI_WAVE / (1 + z), wave, flux[names.index(k)])
                for k, a in coeff.items())  # fmt: skip
    noise = sigma * numpy_rng(seed).standard_normal(DESI_WAVE.size)
    return model + noise, np.full(DESI_WAVE.size, 1 / sigma**2)


def test_template_file_holds_bursts_then_lines():
    wave, flux, names = read_templates()
    assert flux.shape == (len(BURSTS) + len(LINES), wave.size)
    assert np.all(flux >= 0) and names[len(BURSTS) :] == list(LINES)
    # Halpha at its vacuum wavelength: the line template peaks within a pixel of 6564.6 A
    assert abs(wave[np.argmax(flux[names.index("Halpha")])] - 6564.61) <= 1.0


def test_recovers_a_template_spectrum_within_its_error():
    z_true = 0.3217
    old = next(n for n in read_templates()[2] if n.startswith("burst age 2.5"))
    flux, ivar = _spectrum_at(z_true, {old: 3.0, "Halpha": 4.0, "[OIII]": 2.0}, 0.5, seed=3)
    fit = fit_spectrum(flux, ivar)
    assert fit.ok, fit
    assert abs(fit.z - z_true) < 3 * fit.z_err + 1e-5, fit
    assert 0 < fit.z_err < 1e-3 and fit.npixels == DESI_WAVE.size // 4


def test_flat_noise_is_flagged():
    noise = numpy_rng(11).standard_normal((2, DESI_WAVE.size))
    fits_ = fit_redshifts(noise, np.ones_like(noise), z_range=Z_NARROW)
    assert all(not f.ok for f in fits_), fits_
    assert all("DELTACHI2<40" in f.flag for f in fits_)


def test_masked_pixels_are_ignored():
    z_true = 0.21
    flux, ivar = _spectrum_at(z_true, {"[OII]": 3.0, "Halpha": 5.0, "[OIII]": 3.0}, 0.3, seed=5)
    mask = np.zeros(flux.shape, np.uint32)
    mask[3000:3400] = 1
    flux[3000:3400] = 1e6  # garbage under the mask
    fit = fit_redshifts(flux, ivar, mask, z_range=Z_NARROW)[0]
    assert abs(fit.z - z_true) < 1e-3 and fit.npixels == (DESI_WAVE.size - 400) // 4


def test_bad_shapes_and_flags():
    with pytest.raises(ValueError, match=r"flux has shape \(100,\); expected"):
        fit_spectrum(np.zeros(100), np.ones(100))
    with pytest.raises(ValueError, match="ivar has shape"):
        fit_redshifts(np.zeros((2, 7781)), np.ones((3, 7781)))
    assert quality_flag(0, 41.0) == "ok"
    assert quality_flag(4, 3.0) == "SMALL_DELTA_CHI2,DELTACHI2<40"
    assert range_note(0.9, (0.02, 0.58)) == OUTSIDE_NOTE and range_note(0.3, (0.02, 0.58)) == ""
    assert range_note(0.9, None) == ""


def test_real_desi_coadd_through_the_cli(desi_coadds, tmp_path, capsys):
    coadd = next(p for p in desi_coadds if "sv3-dark" in p.name)
    out = tmp_path / "z.json"
    rr = write_redrock(tmp_path / "redrock.fits", np.array([39627866878514741]), np.array([0.7]))
    argv = ["survey", "redshift", str(coadd), "--json", str(out), "--redrock", str(rr)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    rows, (z_lo, z_hi) = doc["rows"], doc["catalog_z_range"]
    assert [r["targetid"] for r in rows] == [39627866878511337, 39627866878514741]
    assert [r["true_z"] for r in rows] == [None, pytest.approx(0.7)]  # DESI's z, joined
    for r in rows:
        assert r["target_class"] == "LRG"
        assert r["note"] == ("" if z_lo <= r["z"] <= z_hi else OUTSIDE_NOTE)
        assert str(r["targetid"]) in text and f"{r['z']:.4f}" in text
        assert 0 < r["z_err"] < 0.01 and r["flag"] in text


def test_bad_file_is_one_clean_error(tmp_path, capsys):
    bad = tmp_path / "notes.fits"
    bad.write_text("not a fits file\n")
    out = tmp_path / "z.json"
    assert main(["survey", "redshift", str(bad), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scifm: error: spectrum file notes.fits: not a readable FITS file")
    assert err.count("\n") == 1 and not out.exists()
    assert main(["survey", "redshift", str(tmp_path / "missing.h5")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_survey_test_split_through_the_cli(tiny_survey, tiny_spec, tmp_path, capsys):
    n, _ = tiny_spec
    test_rows = held_out_rows(tiny_survey)
    np.testing.assert_array_equal(test_rows, split_indices(n, 0.2, 0)[1])  # AstroCLIP's split
    out = tmp_path / "z.json"
    argv = ["survey", "redshift", str(tiny_survey), "--split", "test", "--json", str(out)]
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == list(test_rows)
    for r in rows:  # simulated galaxies: the fitted z lies within 0.0033 (1 + z) of the truth
        assert abs(r["z"] - r["true_z"]) / (1 + r["true_z"]) < 0.0033, r


def test_finished_rows_of_a_partial_file(tiny_survey, tmp_path):
    part = tmp_path / "partial.h5"
    shutil.copy(tiny_survey, part)
    with h5py.File(part, "r+") as f:
        f["chunk_done"][1] = False  # rows 4..7 (chunks of 4) not generated
    np.testing.assert_array_equal(finished_rows(part), [0, 1, 2, 3, 8, 9])
    np.testing.assert_array_equal(held_out_rows(part), split_indices(4, 0.2, 0)[1])
    with pytest.raises(ValueError, match=r"rows \[5\] are not generated"):
        read_spectra(part, np.array([0, 5]))
    assert read_spectra(part, np.array([1, 8]))["spectra"].shape == (2, 7781)


def test_shipped_templates_are_what_the_command_builds():
    pytest.importorskip("bagpipes")
    from scifm.survey.templates import build_templates

    wave, flux, names = build_templates()
    s_wave, s_flux, s_names = read_templates()
    np.testing.assert_array_equal(wave, s_wave)
    np.testing.assert_allclose(flux, s_flux, rtol=1e-6, atol=1e-6)
    assert names == s_names


def test_released_layout_test_split(tmp_path):
    """The released AstroCLIP layout: its own split (last 20 % of each group), no ivar."""
    from scifm.survey.released import write_released

    z_true = np.array([0.12, 0.2, 0.31, 0.45])
    spectra = np.stack([_spectrum_at(z, {"Halpha": 30.0, "[OIII]": 30.0, "[OII]": 30.0}, 1.0, i)[0]
                        for i, z in enumerate(z_true)])[:, :, None]  # fmt: skip
    path = tmp_path / "released.h5"
    write_released(str(path), np.zeros((4, 152, 152, 3), np.float32),
                   spectra.astype(np.float32), z_true, np.arange(4) + 100, n_groups=2)  # fmt: skip
    np.testing.assert_array_equal(held_out_rows(path), [1, 3])  # 80/20 inside groups of 2
    out = tmp_path / "z.json"
    assert main(["survey", "redshift", str(path), "--split", "test", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["targetid"] for r in rows] == [101, 103]
    for r in rows:
        assert abs(r["z"] - r["true_z"]) < 1e-3, r


def test_the_template_grid_is_kept_and_fits_in_threads_stay_the_same():
    """The redshifted template grid is built once per process and reused (``warm_up`` builds
    it); fits from two threads at once equal a serial fit and leave stdout as it was."""
    import sys
    import threading

    from scifm.survey import redshift

    old = next(n for n in read_templates()[2] if n.startswith("burst age 2.5"))
    flux, ivar = _spectrum_at(0.3217, {old: 3.0, "Halpha": 4.0, "[OIII]": 2.0}, 0.5, seed=3)
    redshift._PREPARED.clear()
    fresh = fit_spectrum(flux, ivar)
    grid = next(iter(redshift._PREPARED.values()))
    assert set(redshift.warm_up()) == {"import_s", "fit_s"}
    assert list(redshift._PREPARED.values()) == [grid]  # reused, not rebuilt
    stdout, results = sys.stdout, [None, None]
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, fit_spectrum(flux, ivar)))
               for i in range(2)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [fresh, fresh] and sys.stdout is stdout
    assert fresh.ok and abs(fresh.z - 0.3217) < 3 * fresh.z_err + 1e-5


def test_a_bad_template_file_is_named(tmp_path):
    """A text file, a header without CDELT1 and all-NaN basis vectors: the first two gave
    astropy's messages without the file's name, the third fitted 'z 0.0020' and exited 0."""
    from astropy.io import fits

    text = tmp_path / "text.fits"
    text.write_text("not FITS")
    wave, flux, _ = read_templates()
    nocdelt = tmp_path / "nocdelt.fits"
    hdu = fits.ImageHDU(flux.astype(np.float32), name="BASIS_VECTORS")
    hdu.header["CRVAL1"] = wave[0]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(nocdelt)
    nan = tmp_path / "nan.fits"
    hdu = fits.ImageHDU(np.full_like(flux, np.nan, np.float32), name="BASIS_VECTORS")
    hdu.header.update(CRVAL1=wave[0], CDELT1=wave[1] - wave[0])
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(nan)
    for path, what in ((text, ""), (nocdelt, "CDELT1"), (nan, "non-finite basis vectors")):
        with pytest.raises(ValueError, match=rf"redshift templates {path}: .*{what}"):
            read_templates(path)


def test_benchmark_knn_variants_never_use_a_query_as_its_own_neighbour(tiny_survey, tiny_spec):
    """benchmarks/redshift.py --variants: item 5's agreement for the SpecFormer-alone
    embedding, other neighbours and k. The shipped catalog was cut from another survey, so
    only the training split serves as neighbours here, and no query galaxy is among them."""
    from benchmarks import redshift as bench

    sim = bench.simulated(tiny_survey, None, bench.catalog_range(), variants=True)
    rows = sim["knn_variants"]
    n_test = len(held_out_rows(tiny_survey))
    assert sorted((r["embedding"], r["estimator"], r["k"]) for r in rows) == sorted(
        (e, s, k)
        for e in (
            "aligned",
            "specformer",
            "specformer_seg",
            "specformer_seg_pca128",
            "specformer_seg_pca64",
        )
        for s in ("regression", "page")
        for k in (64, 16)
    )
    assert {r["neighbours"] for r in rows} == {"every training galaxy of the split"}
    assert all(r["n_neighbours"] == tiny_spec[0] - n_test for r in rows)
    for r in rows:
        f = r["frac_agree_inside"]
        assert (np.isnan(f) and r["n_inside"] == 0) or 0.0 <= f <= 1.0
    assert "SpecFormer alone" in "\n".join(bench._variant_lines(rows))


def test_specformer_score_reads_the_split_recorded_with_the_checkpoint(tiny_survey, tmp_path):
    """benchmarks/specformer_score.py: a SpecFormer run scored on the whole split it recorded."""
    from benchmarks import specformer_score

    out = tmp_path / "spec"
    train = ["astroclip", "pretrain-spectrum", "--survey", str(tiny_survey), "--preset", "tiny",
             "--quiet", "--steps", "2", "--batch-size", "4", "--out", str(out)]  # fmt: skip
    assert main(train) == 0
    assert specformer_score.main(["--survey", str(tiny_survey), "--run", f"tiny={out}",
                                  "--poolings", "mean_std", "seg2", "--input-bins", "4",
                                  "--out-dir", str(tmp_path / "res")]) == 0  # fmt: skip
    row = json.loads((tmp_path / "res" / "specformer_score.json").read_text())["runs"][0]
    assert row["step"] == 2 and row["n_fit"] + row["n_eval"] == 10
    assert row["n_eval"] == len(held_out_rows(tiny_survey))
    assert np.isfinite(row["val_loss"]) and "knn_r2_redshift" in row
    v = row["variants"]
    assert list(v) == ["mean", "mean_std", "seg2", "input4"]
    assert v["mean"]["redshift"] == row["knn_r2_redshift"]  # the top row is the mean pooling
    d = v["mean"]["dim"]
    assert (v["mean_std"]["dim"], v["seg2"]["dim"], v["input4"]["dim"]) == (2 * d, 2 * d, 4)
    md = (tmp_path / "res" / "specformer_score.md").read_text()
    assert "| tiny (" in md and "| tiny | seg2 |" in md and "| tiny | input4 | 4 |" in md
    with pytest.raises(SystemExit):
        specformer_score.main(["--survey", str(tiny_survey), "--run", "no-label"])


def test_benchmark_candidate_model_is_measured_on_the_catalogs_own_galaxies(
    tiny_survey, tmp_path, capsys
):
    """benchmarks/redshift.py --model: a candidate re-embeds the shipped catalog's galaxies
    from the survey they came from; a survey that does not hold them is refused by name, and
    a candidate's figures never overwrite the shipped model's report."""
    from benchmarks import redshift as bench
    from scifm.astroclip.config import AstroClipConfig
    from scifm.astroclip.model import AstroClip
    from scifm.core import save_checkpoint

    cfg = AstroClipConfig.preset("tiny").replace(spectrum_head="seg4")
    save_checkpoint(tmp_path / "cand", AstroClip(cfg), cfg)
    with pytest.raises(ValueError, match=rf"{tiny_survey}: holds 0 of the catalog's"):
        bench.simulated(tiny_survey, 2, bench.catalog_range(), model_path=str(tmp_path / "cand"))
    with pytest.raises(SystemExit):
        bench.main(["--survey", str(tiny_survey), "--model", str(tmp_path / "cand")])
    assert "another --name" in capsys.readouterr().err


def test_benchmark_breaks_the_page_agreement_down_by_redshift():
    """benchmarks/redshift.py: the page's misses by template-redshift bin; a query outside the
    catalogue's range counts nowhere, a near miss is within twice the tolerance."""
    from benchmarks import redshift as bench
    from scifm.survey.redshift import AGREE

    z = np.array([0.03, 0.04, 0.15, 0.16, 0.17, 0.45, 0.9])
    d = np.array([0.0, 1.5 * AGREE, AGREE, 3 * AGREE, 0.0, 0.0, 0.5])
    inside = z < 0.7
    rows = bench.agreement_by_redshift(d, z, inside, np.array([0.01, 0.12, 0.13, 0.5]))
    by = {(r["z_lo"], r["z_hi"]): r for r in rows}
    assert sum(r["n"] for r in rows) == 6  # the query at z = 0.9 is outside
    assert by[(0.0, 0.05)] == {"z_lo": 0.0, "z_hi": 0.05, "n": 2, "neighbours": 1,
                                   "frac_agree": 0.5, "median_abs_dz_1pz": 0.75 * AGREE,
                                   "misses": 1, "near_misses": 1}  # fmt: skip
    assert (by[(0.1, 0.2)]["misses"], by[(0.1, 0.2)]["near_misses"]) == (1, 0)  # <= agrees
    assert by[(0.1, 0.2)]["neighbours"] == 2 and by[(0.05, 0.1)]["n"] == 0
    assert np.isnan(by[(0.05, 0.1)]["frac_agree"])
    text = "\n".join(bench._by_redshift_lines(rows))
    assert "| 0.10-0.20 | 3 | 2 | 66.7% |" in text and "| 0.05-0.10 | 0 | 0 | - | - |" in text
