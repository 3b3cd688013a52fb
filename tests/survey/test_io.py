"""Survey files: layout, reading slices, resuming an interrupted generation, bad files."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from scifm.survey import generate_survey, read_survey, survey_info, write_survey
from scifm.survey.generate import pending_chunks
from scifm.survey.io import create_survey_file, make_targetid


def test_layout_and_reader(tiny_survey, tiny_spec):
    n, seed = tiny_spec
    d = read_survey(tiny_survey)
    assert len(d) == n
    assert d.images.shape == (n, 152, 152, 3) and d.images.dtype == np.float32
    assert d.spectra.shape == d.ivar.shape == (n, 7781)
    assert d.targetid.dtype == np.int64 and len(set(d.targetid)) == n
    np.testing.assert_array_equal(d.targetid, make_targetid(seed, np.arange(n)))
    for key in ("log_mstar", "log_ssfr", "log_z", "age"):
        assert np.all(np.isfinite(d.props[key]))
    np.testing.assert_allclose(d.redshift, d.params["redshift"], rtol=1e-6)
    assert np.all(d.ivar > 0) and np.all(np.isfinite(d.images))
    # Image photometry agrees with the noiseless in-stamp flux within sky + photon noise, and
    # that with the spectrum's synthesized photometry up to the light beyond the stamp.
    flux = np.stack([d.props[f"flux_{b}"] for b in "grz"], axis=1)
    stamp = np.stack([d.props[f"stamp_flux_{b}"] for b in "grz"], axis=1)
    sky = np.stack([d.params[f"sky_sigma_{b}"] for b in "grz"], axis=1) * 152
    sigma = np.sqrt(sky**2 + stamp / np.asarray(d.config.electrons_per_nmgy))
    assert np.all(np.abs(d.images.sum(axis=(1, 2)) - stamp) < 5 * sigma)
    assert np.all(stamp <= flux * 1.001)
    compact = d.props["r_half_arcsec"] < 3.0
    assert np.all((np.abs(stamp - flux) < 0.03 * flux)[compact])
    part = read_survey(tiny_survey, start=3, stop=7)
    np.testing.assert_array_equal(part.spectra, d.spectra[3:7])
    np.testing.assert_array_equal(d.subset(slice(3, 7)).images, part.images)
    with pytest.raises(ValueError, match="rows 5:99"):
        read_survey(tiny_survey, start=5, stop=99)


def test_interrupted_generation_resumes_identically(tiny_survey, tiny_spec, tiny_config, tmp_path):
    n, seed = tiny_spec
    path = tmp_path / "resume.h5"
    create_survey_file(path, tiny_config, n, seed)
    assert len(pending_chunks(path)) == 3
    info = survey_info(path)
    assert info["n_done"] == 0 and not info["complete"]
    with pytest.raises(ValueError, match="not all generated"):
        read_survey(path)
    # Finish the middle chunk only (as if the run died after it), then resume.
    from scifm.survey.io import write_chunk
    from scifm.survey.simulate import simulate_range

    with h5py.File(path, "r+") as f:
        write_chunk(f, 1, 4, simulate_range(tiny_config, seed, 4, 8))
    assert [c for c, _, _ in pending_chunks(path)] == [0, 2]
    np.testing.assert_array_equal(read_survey(path, start=4, stop=8).images,
                                  read_survey(tiny_survey, start=4, stop=8).images)  # fmt: skip
    generate_survey(path, n, config=tiny_config, seed=seed, progress=False)
    a, b = read_survey(path), read_survey(tiny_survey)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    with pytest.raises(ValueError, match="overwrite"):
        generate_survey(path, n + 1, config=tiny_config, seed=seed, progress=False)


def test_parallel_workers_give_the_same_file(tiny_survey, tiny_spec, tiny_config, tmp_path):
    n, seed = tiny_spec
    path = generate_survey(tmp_path / "par.h5", n, config=tiny_config, seed=seed,
                           workers=2, progress=False)  # fmt: skip
    np.testing.assert_array_equal(read_survey(path).spectra, read_survey(tiny_survey).spectra)


def test_write_survey_round_trip(tiny_survey, tmp_path):
    d = read_survey(tiny_survey).subset(np.array([0, 2, 9]))
    out = write_survey(tmp_path / "sub.h5", d, compression="gzip")
    e = read_survey(out)
    np.testing.assert_array_equal(e.images, d.images)
    assert e.props.keys() == d.props.keys() and list(e.targetid) == list(d.targetid)


def test_bad_files_give_clear_errors(tiny_survey, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_survey(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_survey(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="expected 'scifm-astroclip-survey'"):
        read_survey(other)
    truncated = tmp_path / "truncated.h5"
    shutil.copy(tiny_survey, truncated)
    with open(truncated, "r+b") as fh:
        fh.truncate(4096)
    with pytest.raises(ValueError, match="truncated.h5"):
        read_survey(truncated)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda f: f.attrs.__setitem__("n", 10**12), "attributes n=1000000000000"),
        (lambda f: (f.__delitem__("redshift"), f.create_dataset("redshift", (3,), "f4")),
         r"dataset redshift has shape \(3,\); expected \(10,\) for n=10"),
        (lambda f: (f.__delitem__("spectra"), f.create_dataset("spectra", (10, 7), "f4")),
         r"dataset spectra has shape \(10, 7\)"),
        (lambda f: f.__delitem__("targetid"), "no targetid"),
        (lambda f: f["params"].create_dataset("extra", (4,), "f8"), "params/extra"),
    ],
)  # fmt: skip
def test_a_survey_whose_shapes_disagree_with_its_n_is_refused_by_name(tiny_survey, tmp_path,
                                                                       edit, match):  # fmt: skip
    """The reader trusted the ``n`` attribute: n = 1e12 asked numpy for terabytes, a short
    redshift dataset read as z = 0 for the missing rows."""
    bad = tmp_path / "bad.h5"
    shutil.copy(tiny_survey, bad)
    with h5py.File(bad, "r+") as f:
        edit(f)
    for read in (survey_info, read_survey):
        with pytest.raises(ValueError, match=rf"survey file .*bad\.h5: .*{match}"):
            read(bad)


def test_a_failed_overwrite_leaves_the_old_survey_as_it_was(tiny_survey, tiny_config, tmp_path):
    """``survey generate --overwrite --n 1e14`` truncated the old file to a 70 KB stub before
    numpy failed to make 1e14 target ids."""
    old = tmp_path / "old.h5"
    shutil.copy(tiny_survey, old)
    before = old.read_bytes()
    with pytest.raises(ValueError, match=r"n=100000000000000; expected 1 <= n <= 1e\+08"):
        generate_survey(old, 10**14, config=tiny_config, overwrite=True, progress=False)
    with pytest.raises(ValueError, match="old.h5: n=0"):
        create_survey_file(old, tiny_config, 0, seed=0)
    assert old.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]


def test_a_creation_that_fails_half_way_leaves_the_old_file(tiny_survey, tiny_config, tmp_path,
                                                            monkeypatch):  # fmt: skip
    """The new file is written beside the old one and renamed only once complete."""
    from scifm.survey import io

    old = tmp_path / "old.h5"
    shutil.copy(tiny_survey, old)
    before = old.read_bytes()

    def half_written(path, *args):
        with h5py.File(path, "w") as f:
            f["images"] = np.zeros(3)
        raise OSError("disk full")

    monkeypatch.setattr(io, "_create", half_written)
    with pytest.raises(OSError, match="disk full"):
        io.create_survey_file(old, tiny_config, 10, seed=0)
    assert old.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]
    with h5py.File(old, "r"):  # a reader holds it open: HDF5's lock refuses the replacement
        monkeypatch.undo()
        with pytest.raises(ValueError, match="cannot replace it"):
            io.create_survey_file(old, tiny_config, 10, seed=0)
    assert old.read_bytes() == before
