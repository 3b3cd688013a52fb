"""Training windows and the system-balanced batch source."""

from collections import Counter

import pytest
import torch

from scifm.core import BatchSource
from scifm.pde.windows import TrajectoryWindows, collate_windows, system_batches


def test_window_shapes_and_content(small_runs):
    traj = small_runs["cns"]
    ds = TrajectoryWindows.from_trajectories(traj, n_ctx=2)
    assert len(ds) == 2 * 1  # 3 frames, 2 context -> 1 window per trajectory
    item = ds[1]
    assert item["x"].shape == (2, 4, 32, 32) and item["x"].dtype == torch.float32
    assert item["y"].shape == (4, 32, 32)
    assert item["field_index"].tolist() == [6, 7, 8, 9]
    assert item["field_index"].dtype == torch.int64
    assert bool(item["periodic"]) is True and item["system"] == "cns"
    torch.testing.assert_close(item["y"], traj.fields[1, 2].float())
    torch.testing.assert_close(item["x"], traj.fields[1, :2].float())


def test_stats_per_field(small_runs):
    traj = small_runs["diffreact"]
    ds = TrajectoryWindows.from_trajectories(traj, n_ctx=2)
    u = traj.fields[:, :, 0].double()
    assert ds.stats.field_names == ("u", "v")
    assert ds.stats.mean[0] == pytest.approx(float(u.mean()), rel=1e-6)
    assert ds.stats.std[0] == pytest.approx(float(u.std()), rel=1e-6)
    normed = ds.stats.normalize(ds.fields[0, 0])
    assert abs(float(normed.std())) > 0


def test_n_ctx_too_long_is_a_clear_error(small_runs):
    with pytest.raises(ValueError, match="n_ctx=6"):
        TrajectoryWindows.from_trajectories(small_runs["swe"], n_ctx=6)


def test_multi_system_batches_deterministic_balanced_sharded(small_runs):
    data = {k: TrajectoryWindows.from_trajectories(v, n_ctx=1) for k, v in small_runs.items()}
    src = system_batches(data, batch_size=4, seed=7)
    assert isinstance(src, BatchSource)
    a, b = src.get(5, 1, 0, 1), src.get(5, 1, 0, 1)
    torch.testing.assert_close(a["x"], b["x"])
    assert a["x"].shape[:2] == (4, 1) and a["x"].ndim == 5
    assert a["field_index"].shape == (a["x"].shape[2],)
    # Two ranks together hold exactly the one-process global batch.
    r0, r1 = src.get(5, 1, 0, 2), src.get(5, 1, 1, 2)
    assert r0["system"] == r1["system"] == a["system"]
    torch.testing.assert_close(torch.stack([r0["x"], r1["x"]], 1).flatten(0, 1), a["x"])
    # Without replacement: a system's first two draws (one epoch) hold 8 distinct windows.
    swe = [src.get(s, 0) for s in range(60)]
    swe = torch.cat([b["y"] for b in swe if b["system"] == "swe"][:2])
    assert len(torch.unique(swe.flatten(1), dim=0)) == 8
    counts = Counter(src.get(s, 0)["system"] for s in range(400))
    assert set(counts) == set(data)
    assert min(counts.values()) > 60  # uniform over 4 systems: ~100 each


def test_too_few_windows_for_a_batch_is_a_clear_error(small_runs):
    data = {"cns": TrajectoryWindows.from_trajectories(small_runs["cns"], n_ctx=2)}
    with pytest.raises(ValueError, match="'cns' has 2 windows, fewer than batch_size=4"):
        system_batches(data, batch_size=4)


def test_collate_refuses_mixed_systems(small_runs):
    a = TrajectoryWindows.from_trajectories(small_runs["swe"], n_ctx=2)[0]
    b = TrajectoryWindows.from_trajectories(small_runs["diffreact"], n_ctx=2)[0]
    with pytest.raises(ValueError, match="one system"):
        collate_windows([a, b])
