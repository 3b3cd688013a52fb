"""PDE data engine for MPP: four verified solvers, PDEBench/The Well formats, windows.

``generate`` (the submodule) holds resumable dataset generation; import it explicitly.
"""

from scifm.mpp.pde.failures import SimulationError
from scifm.mpp.pde.formats import FormatError, detect_format, read_any
from scifm.mpp.pde.grid import Grid
from scifm.mpp.pde.pdebench import read_pdebench, write_pdebench
from scifm.mpp.pde.simulate import simulate
from scifm.mpp.pde.systems import N_STATES, SYSTEMS, SystemSpec, get_system
from scifm.mpp.pde.trajectories import Trajectories
from scifm.mpp.pde.well import read_well, write_well, write_well_stats
from scifm.mpp.pde.windows import (
    FieldStats,
    MultiSystemBatches,
    TrajectoryWindows,
    collate_windows,
)

__all__ = [
    "N_STATES",
    "SYSTEMS",
    "FieldStats",
    "FormatError",
    "Grid",
    "MultiSystemBatches",
    "SimulationError",
    "SystemSpec",
    "Trajectories",
    "TrajectoryWindows",
    "collate_windows",
    "detect_format",
    "get_system",
    "read_any",
    "read_pdebench",
    "read_well",
    "simulate",
    "write_pdebench",
    "write_well",
    "write_well_stats",
]
