"""The four PDEBench 2D systems MPP trains on: fields, MPP field indices, defaults.

Follows McCabe et al., "Multiple Physics Pretraining for Physical Surrogate Models"
(arXiv:2310.02994) for the shared field index map, and Takamoto et al., "PDEBench"
(2022) for each system's domain, frame count and time span.

Array convention everywhere in ``scifm.pde``: a frame is ``(C, X, Y)``, the first
spatial axis is x and the second is y (as in PDEBench's ``(..., nx, ny, C)`` files).
"""

from __future__ import annotations

from dataclasses import dataclass

N_STATES = 12  # width of MPP's shared field embedding; indices 10, 11 are free for fine-tuning


@dataclass(frozen=True)
class SystemSpec:
    """What a consumer needs to know about one system's trajectories."""

    name: str  # short name used on the command line and in files
    title: str  # human-readable name
    field_names: tuple[str, ...]  # channel order of every frame
    field_index: tuple[int, ...]  # MPP shared-embedding index of each field
    periodic: bool  # True when both spatial boundaries wrap around
    boundary: str  # "periodic", "outflow" (open) or "wall" (no-flux)
    domain: tuple[float, float, float, float]  # (x0, x1, y0, y1)
    res: int  # PDEBench cells per side
    n_frames: int  # PDEBench frames saved, including t = 0
    t_end: float  # PDEBench final time

    def __post_init__(self) -> None:
        if len(self.field_names) != len(self.field_index):
            raise ValueError(
                f"system {self.name!r}: {len(self.field_names)} field names but "
                f"{len(self.field_index)} field indices; expected one index per field"
            )
        if any(not 0 <= i < N_STATES for i in self.field_index):
            raise ValueError(
                f"system {self.name!r}: field_index {self.field_index} outside [0, {N_STATES})"
            )

    @property
    def n_fields(self) -> int:
        return len(self.field_names)

    @property
    def lengths(self) -> tuple[float, float]:
        x0, x1, y0, y1 = self.domain
        return x1 - x0, y1 - y0


SYSTEMS: dict[str, SystemSpec] = {
    "swe": SystemSpec(
        name="swe",
        title="Shallow water, radial dam break",
        field_names=("h",),
        field_index=(0,),
        periodic=False,
        boundary="outflow",
        domain=(-2.5, 2.5, -2.5, 2.5),
        res=128,
        n_frames=101,
        t_end=1.0,
    ),
    "diffreact": SystemSpec(
        name="diffreact",
        title="Diffusion-reaction (FitzHugh-Nagumo)",
        field_names=("u", "v"),
        field_index=(4, 5),
        periodic=False,
        boundary="wall",
        domain=(-1.0, 1.0, -1.0, 1.0),
        res=128,
        n_frames=101,
        t_end=5.0,
    ),
    "ins": SystemSpec(
        name="ins",
        title="Incompressible Navier-Stokes with a passive scalar",
        field_names=("vx", "vy", "particles"),
        field_index=(1, 2, 3),
        periodic=True,  # our pseudo-spectral solver is periodic (PDEBench's is not)
        boundary="periodic",
        domain=(0.0, 1.0, 0.0, 1.0),
        res=128,
        n_frames=1000,
        t_end=5.0,
    ),
    "cns": SystemSpec(
        name="cns",
        title="Compressible Navier-Stokes",
        field_names=("vx", "vy", "density", "pressure"),
        field_index=(6, 7, 8, 9),
        periodic=True,
        boundary="periodic",
        domain=(0.0, 1.0, 0.0, 1.0),
        res=128,
        n_frames=21,
        t_end=1.0,
    ),
}


def get_system(name: str) -> SystemSpec:
    """The spec of system ``name`` (one of ``SYSTEMS``)."""
    if name not in SYSTEMS:
        raise ValueError(f"system {name!r}: unknown; expected one of {sorted(SYSTEMS)}")
    return SYSTEMS[name]
