"""PDE data engine for MPP: four verified solvers, PDEBench/The Well formats, windows."""

from scifm.mpp.pde.failures import SimulationError
from scifm.mpp.pde.grid import Grid
from scifm.mpp.pde.simulate import simulate
from scifm.mpp.pde.systems import N_STATES, SYSTEMS, SystemSpec, get_system
from scifm.mpp.pde.trajectories import Trajectories

__all__ = [
    "N_STATES",
    "SYSTEMS",
    "Grid",
    "SimulationError",
    "SystemSpec",
    "Trajectories",
    "get_system",
    "simulate",
]
