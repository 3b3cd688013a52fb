"""PDE data engine for MPP: four verified solvers, PDEBench/The Well formats, windows.

``generate`` (the submodule) holds resumable dataset generation; import it explicitly.
"""

from scifm.pde.failures import SimulationError
from scifm.pde.files import detect_format, read_any
from scifm.pde.filewindows import FileWindows, PDEFile, find_files, group_windows, scan_file
from scifm.pde.formats import FormatError
from scifm.pde.grid import Grid
from scifm.pde.pdebench import read_pdebench, write_pdebench
from scifm.pde.simulate import parameter_ranges, simulate
from scifm.pde.systems import N_STATES, SYSTEMS, SystemSpec, get_system
from scifm.pde.trajectories import Trajectories
from scifm.pde.well import read_well, write_well, write_well_stats
from scifm.pde.windows import FieldStats, TrajectoryWindows, collate_windows, system_batches

__all__ = [
    "N_STATES",
    "SYSTEMS",
    "FieldStats",
    "FileWindows",
    "FormatError",
    "Grid",
    "PDEFile",
    "SimulationError",
    "SystemSpec",
    "Trajectories",
    "TrajectoryWindows",
    "collate_windows",
    "detect_format",
    "find_files",
    "get_system",
    "group_windows",
    "parameter_ranges",
    "read_any",
    "read_pdebench",
    "read_well",
    "scan_file",
    "simulate",
    "system_batches",
    "write_pdebench",
    "write_well",
    "write_well_stats",
]
