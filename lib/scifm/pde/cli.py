"""``scifm pde ...``: generate datasets, inspect files, run the verifications."""

from __future__ import annotations

import argparse
import math
from typing import Any

from scifm.core.cliargs import count_upto, frame_count

INFO_FRAMES = 5  # `pde info` reads at most this many frames for its statistics


def register(subparsers: Any) -> None:
    """Add the ``pde`` group to the ``scifm`` command line."""
    parser = subparsers.add_parser("pde", help="PDE data engine: solvers, datasets, formats")
    sub = parser.add_subparsers(dest="pde_command", required=True)

    gen = sub.add_parser("generate", help="simulate trajectories into PDEBench or Well files")
    gen.add_argument("--system", required=True, choices=["swe", "diffreact", "ins", "cns"])
    gen.add_argument("--n", type=count_upto(100_000, "trajectories"), required=True,
                     help="number of trajectories")  # fmt: skip
    gen.add_argument(
        "--preset",
        default=None,
        choices=["tiny", "small", "pdebench"],
        help="tiny: 16^2 tests; small: 64^2 for a CPU; pdebench: 128^2",
    )
    gen.add_argument("--res", type=count_upto(2048, "cells per side"), default=None,
                     help="cells per side (default 128)")  # fmt: skip
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--format", dest="fmt", default="pdebench", choices=["pdebench", "well"])
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    gen.add_argument("--frames", dest="n_frames", type=frame_count, default=None)
    gen.add_argument("--t-end", dest="t_end", type=float, default=None)
    gen.add_argument(
        "--chunk",
        dest="chunk_size",
        type=int,
        default=None,
        help="trajectories per batch and per file (default 16)",
    )
    gen.add_argument("--dtype", default=None, choices=["float32", "float64"])
    gen.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="physical parameter, e.g. --param M=1.0 --param eta=0.1",
    )
    gen.add_argument("--no-progress", action="store_true")
    gen.set_defaults(func=_generate)

    info = sub.add_parser("info", help="summarize a PDEBench or Well file")
    info.add_argument("path")
    info.set_defaults(func=_info)

    ver = sub.add_parser("verify", help="run the reference problems and print their errors")
    ver.add_argument("--quick", action="store_true", help="coarser grids")
    ver.set_defaults(func=_verify)


def _parse_params(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE, e.g. M=1.0")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--param {item!r}: value {value!r} is not a number") from None
        if not math.isfinite(out[key.strip()]):
            raise ValueError(f"--param {item!r}: expected a finite number")
    return out


def _generate(args: argparse.Namespace) -> int:
    from scifm.core import pick_device
    from scifm.pde.generate import generate, request_from_args

    req = request_from_args(
        args.system,
        args.n,
        preset=args.preset,
        res=args.res,
        n_frames=args.n_frames,
        t_end=args.t_end,
        fmt=args.fmt,
        seed=args.seed,
        chunk_size=args.chunk_size,
        dtype=args.dtype,
        params=_parse_params(args.param),
    )
    files = generate(req, args.out, device=pick_device(args.device), progress=not args.no_progress)
    for path in files:
        print(path)
    return 0


def _info(args: argparse.Namespace) -> int:
    """The file's layout from its metadata, and field statistics from a few frames.

    Real files are large (PDEBench's 2D_CFD train files hold 10,000 trajectories, tens of
    GB; an INS file is (4, 1000, 512, 512, 2)), so nothing is read whole: the statistics
    come from up to ``INFO_FRAMES`` evenly spaced frames of the first trajectory.
    """
    import numpy as np

    from scifm.pde.filewindows import FileWindows, scan_file

    info = scan_file(args.path)
    reader = FileWindows(info, n_ctx=1)
    t_note = f", dt {info.dt:.4g} between frames" if info.dt is not None else ""
    print(f"{args.path}: {info.fmt} file ({info.layout} layout), system {info.system}")
    print(
        f"  {info.n_traj} trajectories x {info.n_frames} frames of {info.nx}x{info.ny} "
        f"cells{t_note}"
    )
    print(f"  fields {list(reader.field_names)}")
    fixed = {**{k: lo for k, (lo, hi) in info.ranges.items() if lo == hi}, **info.params}
    if fixed:
        print(f"  parameters (all trajectories): {fixed}")
    varying = {k: v for k, v in info.ranges.items() if k not in fixed}
    if varying:
        print(f"  parameter ranges over trajectories: {varying}")
    picks = sorted({round(i) for i in np.linspace(0, info.n_frames - 1, INFO_FRAMES)})
    data = np.stack(
        [reader.frames(0, slice(k, k + 1), finite=False)[0] for k in picks]
    )  # (F, C, X, Y)
    print(f"  statistics of trajectory 0, frames {picks}:")
    for i, name in enumerate(reader.field_names):
        f = data[:, i]
        bad = int((~np.isfinite(f)).sum())
        ok = f[np.isfinite(f)]
        stats = (
            f"min {float(ok.min()):.4g} max {float(ok.max()):.4g} mean {float(ok.mean()):.4g}"
            if ok.size
            else "no finite value"
        )
        print(f"  {name:>10}: {stats}" + (f"  ({bad} non-finite values)" if bad else ""))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from scifm.pde.verification import run_all

    for name, value in run_all(quick=args.quick).items():
        print(f"{name:<45} {value}")
    return 0
