"""Bad input to the AstroCLIP commands and the galaxies page's upload: spectra of NaN or of
values near the float32 limit (3e38), surveys with too few galaxies or no finite redshift,
uploads that a reader trips on. Each gets a clear answer that names the input, never a
number made from no data, and never a result paired with the wrong object."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from scifm.astroclip.config import AstroClipConfig
from scifm.astroclip.model import AstroClip
from scifm.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "assets" / "astroclip"  # model, catalog.h5, redshift_index.h5
HUGE = 3e38  # finite in float32, but a float32 sum of a few overflows to inf


def _write_release(path: Path, per_group: int, *, spectra: float | None = None,
                   redshift: float | None = None) -> Path:  # fmt: skip
    """A small file in the released AstroCLIP layout (groups "0".."9", no ivar: the readers
    give ivar 1 everywhere); ``spectra``/``redshift``: one value for every galaxy."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for g in range(10):
            grp = f.create_group(str(g))
            grp["images"] = rng.normal(0, 0.02, (per_group, 152, 152, 3)).astype("f4")
            s = rng.normal(1, 0.3, (per_group, 7781, 1))
            grp["spectra"] = (s if spectra is None else np.full_like(s, spectra)).astype("f4")
            z = rng.uniform(0.01, 0.5, per_group) if redshift is None else [redshift] * per_group
            grp["redshifts"] = np.asarray(z, "f4").reshape(per_group)
            grp["targetids"] = 39_627_000_000_000_000 + g * 100 + np.arange(per_group)
    return path


@pytest.fixture(scope="module")
def tiny_model() -> AstroClip:
    torch.manual_seed(0)
    return AstroClip(AstroClipConfig.preset("tiny")).eval()


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_model, tmp_path_factory) -> str:
    from scifm.core import save_checkpoint

    out = tmp_path_factory.mktemp("bad_input") / "model"
    save_checkpoint(out, tiny_model, tiny_model.config)
    return str(out)


# ----- 3e38 spectra: binning, embedding, evaluation -----
def test_binning_of_huge_values_does_not_overflow_and_inf_is_no_data():
    from scifm.astroclip.data import prepare_spectra
    from scifm.astroclip.embed import has_data

    cfg = AstroClipConfig.preset("tiny").spectrum
    x = prepare_spectra(np.full((1, 7781), HUGE, np.float32), cfg)
    assert torch.isfinite(x).all() and float(x[0, 0]) == pytest.approx(HUGE, rel=1e-6)
    rows = torch.tensor([[1.0, 2.0], [float("inf"), 1.0], [0.0, 0.0]])
    assert has_data(rows).tolist() == [True, False, False]


def test_embed_file_flags_spectra_the_model_cannot_embed(tiny_model, tmp_path):
    from scifm.astroclip.data import toy_survey
    from scifm.astroclip.embed import embed_file, embedding_summary, read_embeddings

    g = toy_survey(4)
    g.spectra[1] = HUGE

    def fetch(a: int, b: int):
        return type(g)(g.images[a:b], g.spectra[a:b], g.redshift[a:b], g.targetid[a:b])

    out = tmp_path / "emb.h5"
    embed_file(tiny_model, fetch, 4, out, progress=False)
    emb = read_embeddings(out)
    assert emb["spectrum_ok"].tolist() == [True, False, True, True]
    assert np.isnan(emb["spectrum"][1]).all() and np.isfinite(emb["spectrum"][[0, 2, 3]]).all()
    assert embedding_summary(out)["no_spectrum"] == 1


def test_evaluate_names_the_survey_when_no_spectrum_can_be_embedded(tiny_ckpt, tmp_path, capsys):
    path = _write_release(tmp_path / "rel_huge.h5", 2, spectra=HUGE)
    args = ["astroclip", "evaluate", "--model", tiny_ckpt, "--survey", str(path), "--quiet"]
    assert main([*args, "--props", "redshift"]) == 1
    err = capsys.readouterr().err
    assert f"survey {path}: 20 of 20 galaxies of the split have no image or no spectrum" in err
    assert "too few training/test galaxies" in err and "NaN" not in err.split("(all")[0]


# ----- too few galaxies or no finite redshift -----
@pytest.mark.parametrize(
    ("per_group", "n", "redshift"),
    [(2, 1, None), (1, None, None), (2, None, float("nan"))],
    ids=["n1", "one-per-group", "nan-redshift"],
)
def test_evaluate_with_too_few_galaxies_names_the_survey(
    tiny_ckpt, tmp_path, capsys, per_group, n, redshift
):
    path = _write_release(tmp_path / "rel.h5", per_group, redshift=redshift)
    args = ["astroclip", "evaluate", "--model", tiny_ckpt, "--survey", str(path), "--quiet",
            "--props", "redshift", *(["--n", str(n)] if n else [])]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"survey {path}: " in err and "too few training/test galaxies" in err, err
    assert "0 sample(s)" not in err
    if redshift is not None:
        assert "no finite redshift" in err


def test_knn_r2_refuses_a_target_with_no_finite_values():
    from scifm.astroclip.evaluate import knn_r2

    x = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="no finite redshift"):
        knn_r2(x[:6], x[6:], {"redshift": np.full(6, np.nan)}, {"redshift": np.ones(4)})


# ----- scifm astroclip redshift: NaN and huge spectra get no k-NN number -----
def test_knn_redshift_of_nan_and_huge_spectra_says_why_there_is_none(tmp_path):
    from scifm.astroclip.realspec import NOT_PLACED, OUT_OF_RANGE, add_knn_redshifts
    from scifm.survey.readers.synthetic import write_sdss_spec

    def notes(path: Path, tids: list[int]) -> list[tuple]:
        rows = [{"targetid": t, "z": None, "note": ""} for t in tids]
        add_knn_redshifts(rows, path, SHIPPED, n=2)
        return [(r["knn_z"], r["knn_note"]) for r in rows]

    tids = [39_627_000_000_000_000 + g * 100 for g in range(2)]
    nan = _write_release(tmp_path / "rel_nan.h5", 1, spectra=np.nan)  # ivar 1 everywhere
    assert notes(nan, tids) == [(None, NOT_PLACED)] * 2
    huge = _write_release(tmp_path / "rel_huge.h5", 1, spectra=HUGE)
    assert notes(huge, tids) == [(None, OUT_OF_RANGE)] * 2
    good = _write_release(tmp_path / "rel_good.h5", 1)
    assert all(np.isfinite(z) for z, _ in notes(good, tids))
    ll = np.arange(3.5563, 4.0172, 1e-4)
    sdss = write_sdss_spec(tmp_path / "huge_sdss.fits", ll, np.full_like(ll, HUGE),
                           np.ones_like(ll), 0.1)  # fmt: skip
    assert notes(sdss, [1_234_567_890_123]) == [(None, OUT_OF_RANGE)]


# ----- the galaxies page: each object its own fit; a reader's exception is a message -----
@pytest.fixture(scope="module")
def explorer():
    from scifm.astroclip.catalog import Catalog
    from scifm.astroclip.explore import Explorer
    from scifm.astroclip.redshift_index import load_for_assets

    model, index = load_for_assets(SHIPPED)
    return Explorer(Catalog.load(SHIPPED / "catalog.h5")), model, index


def test_upload_pairs_each_object_with_its_own_fit(explorer, desi_coadds, tmp_path):
    from astropy.io import fits

    from scifm.astroclip.realspec import OUT_OF_RANGE, read_real_spectra
    from scifm.dashboards.galaxy_upload import answer_upload, show_templates
    from scifm.survey.redshift import RedshiftFit

    lrg = next(p for p in desi_coadds if "sv3-dark" in p.name)  # two objects
    mixed = tmp_path / "mixed_coadd.fits"
    with fits.open(lrg) as h:
        first = int(np.flatnonzero(h["B_IVAR"].data.max(1) > 0)[0])  # rows without data first
        for arm in "BRZ":
            h[f"{arm}_FLUX"].data[first] = HUGE
        h.writeto(mixed)
    both = read_real_spectra(mixed)
    ex, model, index = explorer
    answer = answer_upload(ex, model, mixed.read_bytes(), mixed.name, redshift_index=index)
    assert [o.targetid for o in answer.objects] == [int(both.targetid[1])]
    assert f"object {both.targetid[0]}: {OUT_OF_RANGE}." in answer.panes[0].object
    assert answer.flux.shape == (1, 7781) and answer.ivar.shape == (1, 7781)
    np.testing.assert_array_equal(answer.flux[0], both.flux[1])  # the shown object's row
    fit = RedshiftFit(z=0.3, z_err=1e-4, flag="ok", zwarn=0, deltachi2=200.0, chi2=1.0, npixels=9)
    show_templates(answer, [fit])
    assert "template redshift 0.3000" in answer.objects[0].template.object
    with pytest.raises(ValueError, match="2 template fits for 1 shown objects"):
        show_templates(answer, [fit, fit])


def test_upload_a_reader_trips_on_is_a_message_naming_the_file(
    explorer, desi_coadds, tmp_path, monkeypatch
):
    from astropy.io import fits

    from scifm.astroclip import realspec
    from scifm.dashboards.galaxy_upload import answer_upload

    ex, model, index = explorer
    bad = tmp_path / "fmimage_coadd.fits"
    with fits.open(desi_coadds[0]) as h:
        h["FIBERMAP"] = fits.ImageHDU(np.zeros(5), name="FIBERMAP")  # a table expected
        h.writeto(bad)
    answer = answer_upload(ex, model, bad.read_bytes(), bad.name, redshift_index=index)
    assert not answer.objects and answer.panes[0].alert_type == "danger"
    assert "Could not read fmimage_coadd.fits: " in answer.panes[0].object

    def trips(data: bytes, filename: str):
        raise AttributeError("'numpy.ndarray' object has no attribute 'columns'")

    monkeypatch.setattr(realspec, "read_uploaded_spectra", trips)
    answer = answer_upload(ex, model, b"SIMPLE", "odd.fits", redshift_index=index)
    text = answer.panes[0].object
    assert not answer.objects and answer.panes[0].alert_type == "danger"
    assert text.startswith("Could not read odd.fits: AttributeError: ") and "expected" in text
