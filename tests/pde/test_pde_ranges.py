"""Parameter ranges a solver samples, and the ranges and frame spacing ``scan_file`` reads."""

from __future__ import annotations

import pytest

from scifm.pde import cns_init, parameter_ranges, scan_file, simulate, swe
from scifm.pde.pdebench import write_pdebench
from scifm.pde.well import write_well


def test_parameter_ranges_are_the_solver_defaults_overrides_and_sampled_ranges():
    r = parameter_ranges("cns", {"M": [0.1, 1.0], "eta": 0.1})
    assert r["M"] == (0.1, 1.0) and r["eta"] == (0.1, 0.1) and r["zeta"] == (0.01, 0.01)
    assert r["d0"] == r["T0"] == cns_init.BASE_RANGE
    assert r["delta_rho"] == cns_init.DELTA_RANGE
    assert parameter_ranges("swe")["radius"] == swe.RADIUS_RANGE
    assert "forcing" not in parameter_ranges("ins", {})  # a field, not a scalar
    with pytest.raises(ValueError, match="unknown for diffreact"):
        parameter_ranges("diffreact", {"nu": 1.0})


@pytest.mark.parametrize("fmt", ["pdebench", "well"])
def test_scan_file_reads_each_parameter_range_and_the_frame_spacing(tmp_path, fmt):
    traj = simulate("swe", 3, res=16, n_frames=5, t_end=0.4, seed=1)
    if fmt == "pdebench":
        path = write_pdebench(traj, tmp_path / "f.h5")
    else:
        path = write_well(traj, tmp_path)
    info = scan_file(path)
    assert info.dt == pytest.approx(0.1)
    radius = traj.params["radius"]
    assert info.ranges["radius"] == pytest.approx((float(radius.min()), float(radius.max())))
    assert info.ranges["radius"][0] < info.ranges["radius"][1]  # three different dams
    assert info.ranges["h_in"] == (2.0, 2.0)
