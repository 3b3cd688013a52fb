"""The released AstroCLIP file (groups "0".."9") read as it is: info, reader, split, errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from scifm.cli import main
from scifm.survey import read_survey, survey_info
from scifm.survey.io import survey_split
from scifm.survey.released import write_released


def _arrays(n: int, rng: np.random.Generator, spectra_shape: str = "column") -> tuple:
    images = rng.normal(0.0, 0.01, (n, 152, 152, 3))  # float64: any float dtype is accepted
    spectra = rng.normal(1.0, 0.1, (n, 7781, 1) if spectra_shape == "column" else (n, 7781))
    return images, spectra.astype(np.float32), rng.uniform(0.01, 0.5, n), 39_600 + np.arange(n)


@pytest.fixture(scope="module")
def released_file(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("released") / "astroclip_desi.h5"
    arrays = _arrays(33, np.random.default_rng(0))  # groups of 3 or 4 rows
    write_released(str(path), *arrays)
    return path, arrays


def test_layout_is_exactly_the_released_one(released_file):
    path, _ = released_file
    with h5py.File(path, "r") as f:
        assert sorted(f, key=int) == [str(i) for i in range(10)] and not dict(f.attrs)
        assert set(f["0"]) == {"images", "spectra", "redshifts", "targetids"}
        assert f["0"]["spectra"].shape[1:] == (7781, 1) and f["0"]["images"].dtype == np.float64


def test_info_reader_and_split(released_file, capsys):
    path, (images, spectra, z, tid) = released_file
    info = survey_info(path)
    assert info["n"] == 33 and info["complete"] and info["layout"] == "astroclip-release"
    assert sum(info["groups"].values()) == 33
    assert main(["survey", "info", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 33
    d = read_survey(path)
    assert d.images.dtype == np.float32 and d.images.shape == (33, 152, 152, 3)
    assert d.spectra.shape == d.ivar.shape == (33, 7781) and d.props == {}
    np.testing.assert_allclose(d.spectra, spectra[..., 0])
    np.testing.assert_allclose(d.redshift, z, rtol=1e-6)
    np.testing.assert_array_equal(d.targetid, tid)
    part = read_survey(path, start=2, stop=9)  # crosses group boundaries
    np.testing.assert_array_equal(part.targetid, tid[2:9])
    np.testing.assert_allclose(part.images, images[2:9].astype(np.float32))
    train, test = survey_split(path)
    assert len(train) + len(test) == 33 and not set(train) & set(test)
    offset = 0
    for n in info["groups"].values():  # first 80 % of each group train, the rest test
        rows = np.arange(offset, offset + n)
        assert set(rows[: int(0.8 * n)]) <= set(train) and set(rows[int(0.8 * n) :]) <= set(test)
        offset += n


def test_flat_spectra_and_bad_layouts(tmp_path):
    rng = np.random.default_rng(1)
    flat = tmp_path / "flat.h5"
    write_released(str(flat), *_arrays(20, rng, spectra_shape="flat"))
    assert read_survey(flat).spectra.shape == (20, 7781)
    bad = tmp_path / "bad.h5"
    images, spectra, z, tid = _arrays(10, rng)
    write_released(str(bad), images, spectra[:, :7000], z, tid, n_groups=2)
    with pytest.raises(ValueError, match=r"group '0' spectra have shape \(5, 7000, 1\)"):
        read_survey(bad)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="released AstroCLIP layout"):
        survey_info(other)
