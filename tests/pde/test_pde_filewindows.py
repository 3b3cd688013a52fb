"""Lazy training windows from PDEBench and Well files: content, resampling rule, bad input."""

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from scifm.pde import FormatError, write_pdebench, write_well
from scifm.pde import filewindows as fw
from scifm.pde.filewindows import FileWindows, find_files, group_windows, scan_file
from scifm.pde.windows import TrajectoryWindows


@pytest.mark.parametrize("system", ["swe", "diffreact", "ins", "cns"])
@pytest.mark.parametrize("fmt", ["pdebench", "well"])
def test_file_windows_equal_the_in_memory_windows(small_runs, tmp_path, system, fmt):
    traj = small_runs[system]
    path = write_pdebench(traj, tmp_path) if fmt == "pdebench" else write_well(traj, tmp_path)
    lazy = FileWindows(path, n_ctx=2)
    mem = TrajectoryWindows.from_trajectories(traj, n_ctx=2)
    assert len(lazy) == len(mem) and lazy.system == system
    for i in range(len(mem)):
        a, b = lazy[i], mem[i]
        torch.testing.assert_close(a["x"], b["x"])
        torch.testing.assert_close(a["y"], b["y"])
        assert torch.equal(a["field_index"], b["field_index"]) and a["periodic"] == b["periodic"]


def test_reads_only_the_frames_of_one_window(small_runs, tmp_path, monkeypatch):
    path = write_pdebench(small_runs["ins"], tmp_path)
    ds = FileWindows(path, n_ctx=2)
    seen = []
    real = fw.read_dataset
    monkeypatch.setattr(fw, "read_dataset", lambda d, sel=(): seen.append(sel) or real(d, sel))
    ds[5]  # trajectory 1, window 1
    assert seen == [(1, slice(1, 4, 1))] * 2  # velocity and particles: 3 frames of one run


def test_resampling_rule_pools_space_and_strides_time(small_runs, tmp_path):
    traj = small_runs["diffreact"]  # 2 runs, 6 frames, 32^2
    path = write_well(traj, tmp_path)
    ds = FileWindows(path, n_ctx=1, res=16, frames=3)  # pool 2, every 2nd frame: 0, 2, 4
    assert (ds.pool, ds.step, ds.per_traj) == (2, 2, 2)
    want = F.avg_pool2d(traj.fields[1, [2, 4]], 2)
    torch.testing.assert_close(ds[3]["x"][0], want[0])
    torch.testing.assert_close(ds[3]["y"], want[1])
    with pytest.raises(FormatError, match=r"32x32 cannot be average-pooled to 24x24"):
        FileWindows(path, n_ctx=1, res=24)
    with pytest.raises(FormatError, match="needs at least 6"):
        FileWindows(path, n_ctx=5, frames=3)


def test_loader_workers_each_open_the_file(small_runs, tmp_path):
    ds = FileWindows(write_pdebench(small_runs["swe"], tmp_path), n_ctx=2)
    ds[0]  # the parent holds a handle; forked workers must open their own
    got = list(DataLoader(ds, batch_size=None, num_workers=2))
    for i, item in enumerate(got):
        torch.testing.assert_close(item["x"], ds[i]["x"])


def test_bad_files_and_directories_are_clear_errors(small_runs, tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["tensor"] = [1.0]
    with pytest.raises(FormatError, match="bad.h5: neither a PDEBench file"):
        scan_file(bad)
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f["0000/grid/x"] = [0.0]
    with pytest.raises(FormatError, match="wrong.h5: missing key 'data'"):
        scan_file(wrong)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="empty: empty directory"):
        find_files([tmp_path / "empty"])
    with pytest.raises(FormatError, match="nowhere: no such file"):
        find_files([tmp_path / "nowhere"])


def test_a_data_set_whose_files_disagree_is_refused(small_runs, tmp_path):
    """Frames saved at a spacing no whole stride brings to the data set's are refused, naming
    both files; a file of another system too."""
    for d in "abc":
        (tmp_path / d).mkdir()
    short = small_runs["ins"].select([0])
    short.fields, short.t = short.fields[:, :4], short.t[:4]
    a = scan_file(write_pdebench(short, tmp_path / "a"))
    slow = small_runs["ins"].select([1])
    slow.t = slow.t * 1.5  # frames 1.5 times as far apart: no whole stride fits
    b = scan_file(write_pdebench(slow, tmp_path / "b"))
    with pytest.raises(
        FormatError,
        match=r"b/ns_incom.*\(6, 32, 32\) with frames 0\.\d+ apart; "
        r"expected ins \(4, 32, 32\), frames 0\.\d+ apart like ns_incom",
    ):
        group_windows({"ins": [a, b]}, n_ctx=2)
    c = scan_file(write_pdebench(small_runs["swe"], tmp_path / "c"))
    with pytest.raises(FormatError, match="swe data"):
        group_windows({"ins": [a, c]}, n_ctx=2)


def test_a_file_saved_more_often_is_strided_to_the_data_sets_spacing(small_runs, tmp_path):
    """Beside a file saved every other frame, the full file takes stride 2 (its frames then
    lie as far apart), whichever of the two is listed first."""
    for d in "ab":
        (tmp_path / d).mkdir()
    a = scan_file(write_pdebench(small_runs["ins"], tmp_path / "a"))
    sparse = small_runs["ins"].select([0])
    sparse.fields, sparse.t = sparse.fields[:, ::2], sparse.t[::2]
    b = scan_file(write_pdebench(sparse, tmp_path / "b"))
    assert (a.n_frames, b.n_frames) == (6, 3) and b.dt == pytest.approx(2 * a.dt)
    for order in ([a, b], [b, a]):
        ds = group_windows({"ins": order}, n_ctx=2)["ins"]
        assert [w.step for w in ds.datasets] == [2 if f is a else 1 for f in order]
        first = ds[0] if order[0] is a else ds[len(ds.datasets[0])]  # a's first window
        torch.testing.assert_close(first["y"], small_runs["ins"].fields[0, 4].to(first["y"].dtype))
    # of two files as long, the one saved more often is strided to the other, in either order
    fine = small_runs["ins"].select([0])
    fine.t = fine.t[0] + (fine.t - fine.t[0]) / 2  # the same frame count, half the spacing
    (tmp_path / "c").mkdir()
    c = scan_file(write_pdebench(fine, tmp_path / "c"))
    assert c.n_frames == a.n_frames and c.dt == pytest.approx(a.dt / 2)
    for order in ([a, c], [c, a]):
        ds = group_windows({"ins": order}, n_ctx=2)["ins"]
        assert [w.step for w in ds.datasets] == [2 if f is c else 1 for f in order]


def test_trajectories_of_two_lengths_at_one_spacing_train_as_one_data_set(small_runs, tmp_path):
    """A folder of PDEBench-span files beside longer runs at the same frame spacing (the
    long-span training ablation of issue 13): each file gives its own windows, in order, and
    ``frames`` strides every file as it strides the shortest."""
    for d in "ab":
        (tmp_path / d).mkdir()
    a = scan_file(write_pdebench(small_runs["ins"], tmp_path / "a"))
    short = small_runs["ins"].select([1])
    short.fields, short.t = short.fields[:, :4], short.t[:4]
    b = scan_file(write_pdebench(short, tmp_path / "b"))
    assert (a.n_frames, b.n_frames) == (6, 4) and b.dt == pytest.approx(a.dt)
    ds = group_windows({"ins": [a, b]}, n_ctx=2)["ins"]
    wa, wb = FileWindows(a, n_ctx=2), FileWindows(b, n_ctx=2)
    assert len(ds) == len(wa) + len(wb) and len(wb) < len(wa) // a.n_traj
    last = ds[len(ds) - 1]  # the short file's last window: its frames 1, 2 -> 3
    torch.testing.assert_close(last["x"], short.fields[0, 1:3].to(last["x"].dtype))
    torch.testing.assert_close(last["y"], short.fields[0, 3].to(last["y"].dtype))
    # frames=2 strides the 4-frame file by 3, so the 6-frame one too (alone: by 5)
    ds = group_windows({"ins": [a, b]}, n_ctx=1, frames=2)["ins"]
    steps = [w.step for w in ds.datasets]
    assert steps == [3, 3] and FileWindows(a, n_ctx=1, frames=2).step == 5


def test_directories_skip_well_held_out_splits(small_runs, tmp_path):
    write_well(small_runs["swe"], tmp_path)
    write_well(small_runs["swe"], tmp_path, split="valid")
    files = find_files([tmp_path])
    assert [p.parent.name for p in files] == ["train"]


def test_files_of_one_system_at_two_resolutions_agree_once_pooled(small_runs, tmp_path):
    """PDEBench publishes CNS M1.0 at 128^2 and 512^2: a folder of both trains at one res."""
    for d in "ab":
        (tmp_path / d).mkdir()
    a = scan_file(write_pdebench(small_runs["ins"], tmp_path / "a"))
    low = small_runs["ins"].select([0, 1])
    low.fields = F.avg_pool2d(low.fields.flatten(0, 2), 2).unflatten(0, low.fields.shape[:3])
    low.x, low.y = low.x[::2], low.y[::2]
    b = scan_file(write_pdebench(low, tmp_path / "b"))
    assert (a.nx, b.nx) == (32, 16)
    ds = group_windows({"ins": [a, b]}, n_ctx=2, res=16)["ins"]
    assert len(ds) == 2 * len(FileWindows(a, n_ctx=2)) and ds[0]["x"].shape[-1] == 16
    with pytest.raises(FormatError, match=r"\(6, 16, 16\); expected ins \(6, 32, 32\)"):
        group_windows({"ins": [a, b]}, n_ctx=2)


def test_a_real_well_file_with_byte_names_mach_scalar_and_per_sample_time(small_runs, tmp_path):
    """Variations real Well files show: field names as bytes, the Mach number as a 0-d
    scalar named 'Mach', the time axis stored per sample."""
    from scifm.mpp.data import variant_of
    from scifm.pde.files import read_any

    path = write_well(small_runs["cns"], tmp_path)
    with h5py.File(path, "r+") as f:
        for g in ("t0_fields", "t1_fields"):
            f[g].attrs["field_names"] = [n.encode() for n in f[g].attrs["field_names"]]
        sc = f["scalars"]
        for k in list(sc):
            del sc[k]
        sc["Mach"] = np.float32(0.1)  # one value for the file
        sc.attrs["field_names"] = [b"Mach"]
        t = f["dimensions/time"][()]
        del f["dimensions/time"]
        f["dimensions/time"] = np.stack([t, t + 1.0])  # (N, T): sample 0's times are t
    info = scan_file(path)
    assert info.system == "cns" and variant_of(info) == "cns_m0.1"
    traj = read_any(path)
    torch.testing.assert_close(traj.fields, small_runs["cns"].fields)
    torch.testing.assert_close(traj.t, torch.as_tensor(t, dtype=torch.float32))
    assert traj.params["Mach"].tolist() == pytest.approx([0.1, 0.1])
    with h5py.File(path, "r+") as f:  # no Mach number anywhere: the error says what to do
        del f["scalars/Mach"]
        f["scalars"].attrs["field_names"] = []
    with pytest.raises(FormatError, match=r"without a Mach number.*cns_m<Mach>="):
        variant_of(scan_file(path))


def test_a_non_finite_value_in_a_file_is_named_not_trained_on(small_runs, tmp_path):
    """One NaN pixel would make a NaN loss or a NaN score that reads like a result."""
    path = write_pdebench(small_runs["diffreact"], tmp_path)
    with h5py.File(path, "r+") as f:
        f["0001/data"][3, 5, 7, 1] = np.nan
    ds = FileWindows(path, n_ctx=2)
    ds[0]  # trajectory 0 is clean
    with pytest.raises(FormatError, match=r"trajectory 1, frames 1:4:1: 1 non-finite values"):
        ds[ds.per_traj + 1]
    assert np.isnan(ds.frames(1, slice(3, 4), finite=False)).sum() == 1


def test_an_overflowing_value_or_a_broken_time_axis_is_named(small_runs, tmp_path):
    """2e19 is finite in float32 but its square is not: the rollout curve printed null for
    that step. A NaN or constant time axis was only a WARNING about the spacing."""
    path = write_pdebench(small_runs["diffreact"], tmp_path)
    with h5py.File(path, "r+") as f:
        f["0001/data"][3, 5, 7, 1] = 2e19
    ds = FileWindows(path, n_ctx=2)
    ds[0]
    with pytest.raises(FormatError, match=r"trajectory 1, .*values up to 2e\+19; .*1e\+15"):
        ds[ds.per_traj + 1]
    for bad in (np.nan, 0.0):
        path = write_pdebench(small_runs["diffreact"], tmp_path / str(bad))
        with h5py.File(path, "r+") as f:
            key = next(k for k in ("0000/grid/t", "t-coordinate", "t") if k in f)
            f[key][...] = bad
        with pytest.raises(FormatError, match=r"time coordinate .* expected finite, increasing"):
            scan_file(path)
    path = write_pdebench(small_runs["diffreact"], tmp_path / "short_t")
    with h5py.File(path, "r+") as f:  # fewer times than frames: was taken for no time axis
        n = f["0000/grid/t"].shape[0]
        del f["0000/grid/t"]
        f["0000/grid/t"] = np.linspace(0.0, 1.0, n - 2)
    with pytest.raises(FormatError, match=rf"grid/t has {n - 2} entries for {n} frames"):
        scan_file(path)


def test_files_without_a_time_axis_group_by_frame_count(small_runs, tmp_path):
    """No saved times, no spacing to compare: equal frame counts train together (one such file
    alone too), other counts are refused, saying why."""
    from dataclasses import replace

    for d in "ab":
        (tmp_path / d).mkdir()
    a = replace(scan_file(write_pdebench(small_runs["ins"], tmp_path / "a")), dt=None)
    short = small_runs["ins"].select([0])
    short.fields, short.t = short.fields[:, :4], short.t[:4]
    b = replace(scan_file(write_pdebench(short, tmp_path / "b")), dt=None)
    assert len(group_windows({"ins": [a]}, n_ctx=2)["ins"]) == len(FileWindows(a, n_ctx=2))
    assert len(group_windows({"ins": [a, a]}, n_ctx=2)["ins"]) == 2 * len(FileWindows(a, n_ctx=2))
    with pytest.raises(FormatError, match=r"\(6, 32, 32\) without a time axis to compare frame "
                       r"spacings; expected ins \(4, 32, 32\) like"):  # fmt: skip
        group_windows({"ins": [a, b]}, n_ctx=2)
    # a tie in length goes to the file with a time axis, whichever is listed first
    timed = scan_file(write_pdebench(small_runs["ins"], tmp_path / "c"))
    long = small_runs["ins"].select([0])
    long.fields = torch.cat([long.fields, long.fields[:, 1:]], dim=1)  # 11 frames, same spacing
    long.t = long.t[0] + (long.t[1] - long.t[0]) * torch.arange(11, dtype=long.t.dtype)
    (tmp_path / "d").mkdir()
    d = scan_file(write_pdebench(long, tmp_path / "d"))
    for order in ([a, timed, d], [timed, a, d]):
        assert len(group_windows({"ins": order}, n_ctx=2)["ins"].datasets) == 3
