"""PDEBench and The Well files: round trips, the official reader, clear errors."""

import h5py
import numpy as np
import pytest
import torch

from scifm.pde import simulate
from scifm.pde.files import detect_format, read_any
from scifm.pde.filewindows import FileWindows
from scifm.pde.formats import FormatError
from scifm.pde.pdebench import read_pdebench, write_pdebench
from scifm.pde.well import read_well, write_well, write_well_stats

SYSTEMS = ["swe", "diffreact", "ins", "cns"]


@pytest.fixture(scope="module")
def runs(single_thread):
    with single_thread():
        return {
            s: simulate(s, 2, res=16, n_frames=4, t_end=0.01 if s == "cns" else 0.1, seed=0)
            for s in SYSTEMS
        }


@pytest.mark.parametrize("system", SYSTEMS)
def test_pdebench_round_trip_with_public_names_keys_shapes(runs, tmp_path, system):
    traj = runs[system]
    path = write_pdebench(traj, tmp_path)
    expected_name = {
        "swe": "2D_rdb_NA_NA.h5",
        "diffreact": "2D_diff-react_NA_NA.h5",
        "ins": "ns_incom_inhom_2d_16-0.h5",
        "cns": "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_16_Train.hdf5",
    }[system]
    assert path.name == expected_name
    with h5py.File(path, "r") as f:
        if system in ("swe", "diffreact"):
            assert sorted(f.keys()) == ["0000", "0001"]
            c = 1 if system == "swe" else 2
            assert f["0001/data"].shape == (4, 16, 16, c) and f["0001/data"].dtype == np.float32
            assert f["0000/grid/x"].shape == (16,) and f["0000/grid/t"].shape == (4,)
        elif system == "ins":
            assert f["velocity"].shape == (2, 4, 16, 16, 2)
            assert f["particles"].shape == (2, 4, 16, 16, 1)
            assert f["force"].shape == (2, 16, 16, 2) and f["t"].shape == (2, 4)
        else:
            for key in ("Vx", "Vy", "density", "pressure"):
                assert f[key].shape == (2, 4, 16, 16) and f[key].dtype == np.float32
            assert f["x-coordinate"].shape == (16,) and f["t-coordinate"].shape == (5,)
            assert f.attrs["M"] == pytest.approx(0.1) and f.attrs["eta"] == pytest.approx(0.01)
            np.testing.assert_array_equal(f["density"][:], traj.field("density").numpy())
    back = read_pdebench(path)
    assert back.system == system and back.field_names == traj.field_names
    torch.testing.assert_close(back.fields, traj.fields, rtol=0, atol=0)
    torch.testing.assert_close(back.t, traj.t)
    if system == "ins":
        torch.testing.assert_close(back.params["forcing"], traj.params["forcing"])
    assert detect_format(path) == "pdebench"


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_well_package_loads_our_file_with_the_same_arrays(runs, tmp_path, system):
    from the_well.data import WellDataset

    traj = runs[system]
    path = write_well(traj, tmp_path)
    dataset_dir = path.parent.parent.parent
    stats = write_well_stats(dataset_dir)
    assert stats.name == "stats.yaml"
    ds = WellDataset(
        path=str(dataset_dir),
        well_split_name="train",
        n_steps_input=2,
        n_steps_output=1,
        use_normalization=True,
        normalization_type=_zscore(),
    )
    raw = WellDataset(
        path=str(dataset_dir),
        well_split_name="train",
        n_steps_input=2,
        n_steps_output=1,
        use_normalization=False,
    )
    assert len(raw) == 2 * 2  # 2 trajectories x 2 windows
    sample = raw[3]  # trajectory 1, window starting at frame 1
    ours = traj.fields[1, 1:4].permute(0, 2, 3, 1)  # (T, X, Y, C) in our channel order
    names = raw.metadata.field_names[0] + raw.metadata.field_names[1]
    order = [{"velocity_x": "vx", "velocity_y": "vy"}.get(n, n) for n in names]
    ours = ours[..., [traj.field_names.index(n) for n in order]]
    torch.testing.assert_close(sample["input_fields"], ours[:2], rtol=0, atol=0)
    torch.testing.assert_close(sample["output_fields"], ours[2:], rtol=0, atol=0)
    assert ds[3]["input_fields"].shape == sample["input_fields"].shape
    back = read_well(path)
    torch.testing.assert_close(back.fields, traj.fields, rtol=0, atol=0)
    assert detect_format(path) == "well"


def _zscore():
    from the_well.data.normalization import ZScoreNormalization

    return ZScoreNormalization


def test_stats_yaml_matches_the_data(runs, tmp_path):
    import yaml

    traj = runs["cns"]
    stats_path = write_well_stats(write_well(traj, tmp_path).parent.parent.parent)
    stats = yaml.safe_load(stats_path.read_text())
    rho = traj.field("density").double()
    assert stats["mean"]["density"] == pytest.approx(float(rho.mean()), rel=1e-6)
    assert stats["std"]["density"] == pytest.approx(float(rho.std(unbiased=False)), rel=1e-6)
    assert len(stats["mean"]["velocity"]) == 2
    delta = rho[:, 1:] - rho[:, :-1]
    assert stats["std_delta"]["density"] == pytest.approx(
        float(delta.std(unbiased=False)), rel=1e-5
    )


def test_windows_from_either_file_format(runs, tmp_path):
    traj = runs["diffreact"]
    for path in (write_pdebench(traj, tmp_path), write_well(traj, tmp_path)):
        ds = FileWindows(path, n_ctx=2)
        assert ds.system == "diffreact" and len(ds) == 4
        torch.testing.assert_close(ds[0]["y"], traj.fields[0, 2])


def test_truncated_file_is_a_clear_error(runs, tmp_path):
    path = write_pdebench(runs["cns"], tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(FormatError, match=path.name):
        read_any(path)


def test_not_hdf5_and_missing_file_are_clear_errors(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("not an hdf5 file")
    with pytest.raises(FormatError, match="cannot open as HDF5"):
        read_pdebench(bad)
    with pytest.raises(FormatError, match="no such file"):
        read_pdebench(tmp_path / "missing.h5")


def test_missing_key_is_named(runs, tmp_path):
    path = write_pdebench(runs["cns"], tmp_path)
    with h5py.File(path, "a") as f:
        del f["y-coordinate"]
    with pytest.raises(FormatError, match="missing key 'y-coordinate'"):
        read_pdebench(path)
    path = write_pdebench(runs["swe"], tmp_path)
    with h5py.File(path, "a") as f:
        del f["0000/grid/t"]
    with pytest.raises(FormatError, match="missing key 'grid/t'"):
        read_pdebench(path)


def test_wrong_layout_is_named(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=np.zeros((2, 3)))
    with pytest.raises(FormatError, match="found keys \\['tensor'\\]"):
        read_any(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("Vx", data=np.zeros((2, 3)))
    with pytest.raises(FormatError, match="'Vx' is \\(2, 3\\); expected a 4-D dataset"):
        read_any(path)


def test_non_finite_frames_are_never_written(runs, tmp_path):
    traj = runs["swe"]
    bad = traj.select(slice(0, 2))
    bad.fields = bad.fields.clone()
    bad.fields[0, 1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        write_pdebench(bad, tmp_path)
    with pytest.raises(ValueError, match="non-finite"):
        write_well(bad, tmp_path)
    assert not any(tmp_path.rglob("*.h5")) and not any(tmp_path.rglob("*.hdf5"))


def test_pde_info_reads_a_few_frames_not_the_file(runs, tmp_path, monkeypatch, capsys):
    """A real PDEBench file is tens of GB: `pde info` takes its layout from the metadata and
    its statistics from a few frames of trajectory 0, never the whole file."""
    import scifm.pde.files
    from scifm.cli import main
    from scifm.pde import filewindows

    traj = runs["ins"]
    path = write_pdebench(traj, tmp_path)
    read = []
    real = filewindows.read_dataset
    monkeypatch.setattr(
        filewindows, "read_dataset", lambda d, sel=(): read.append(sel) or real(d, sel)
    )
    monkeypatch.setattr(scifm.pde.files, "read_any", lambda *a, **k: pytest.fail("read whole"))
    assert main(["pde", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 trajectories x 4 frames of 16x16 cells" in out and "frames [0, 1, 2, 3]" in out
    assert all(sel[0] == 0 and sel[1].stop - sel[1].start == 1 for sel in read)  # one frame each
    vx = traj.fields[0, :, 0]
    assert f"vx: min {float(vx.min()):.4g} max {float(vx.max()):.4g}" in out
