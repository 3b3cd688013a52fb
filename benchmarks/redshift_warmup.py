"""The first template-fit redshift of a process, cold and after ``warm_up()`` (issue 14 item 5).

The galaxies page fits an uploaded spectrum with ``scifm.survey.redshift`` (redrock, our
templates). In a fresh process the first fit also imports redrock, builds the redshifted
template grid (our 11 templates at 1,445 redshifts on the binned DESI grid) and compiles
redrock's numba rebinning; the server does that at start in a thread (``warm_up``). Each
case runs in its own fresh Python process, ``--repeats`` times:

- cold: the first and second ``fit_spectrum`` of a real DESI spectrum (the first LRG of
  the sv3 coadd in specutils' wheel); the first includes redrock's import (done lazily);
- warm: ``warm_up()`` (its import and its fit timed), then the same two fits.

Also the process's RSS after the fits, and what it drops when the kept template grid is let go.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/redshift_warmup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_case(case: str) -> dict:
    """Run in a fresh process: the timings of ``case`` ("cold" or "warm")."""
    from scifm.astroclip.realspec import read_real_spectra
    from scifm.survey.readers.synthetic import specutils_desi_coadds

    coadd = next(p for p in specutils_desi_coadds() if "sv3-dark" in p.name)
    spectra = read_real_spectra(coadd)
    out: dict = {"case": case}
    from scifm.survey import redshift  # (redrock itself is imported by the first fit)

    if case == "warm":
        out["warm_up"] = redshift.warm_up()
    fits = []
    for k in ("first_fit_s", "second_fit_s"):
        t = time.perf_counter()
        fits.append(redshift.fit_spectrum(spectra.flux[0], spectra.ivar[0]))
        out[k] = time.perf_counter() - t
    out["z"], out["flag"] = fits[0].z, fits[0].flag
    out["same_result"] = fits[0] == fits[1]
    out["rss_after_mb"] = _rss_mb()
    redshift._PREPARED.clear()  # what the kept template grid holds
    gc.collect()
    out["grid_mb"] = out["rss_after_mb"] - _rss_mb()
    return out


def run(case: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{ROOT / 'lib'}:{ROOT}")
    proc = subprocess.run([sys.executable, __file__, "--case", case], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def render(res: dict) -> str:
    c, w = res["cold"], res["warm"]
    lines = [
        f"Median of {res['repeats']} fresh processes per case; 1 thread; 2 CPU cores shared "
        "with other jobs (the figures move with the load). Spectrum: the first LRG of "
        f"specutils' coadd-sv3-dark-26065.fits (z = {c['z']:.4f}, flag {c['flag']}).",
        "",
        "| case | warm_up import (s) | warm_up fit (s) | first fit (s) | second fit (s) | "
        "RSS after (MB) | of which the kept grid (MB) |",
        "|---|---|---|---|---|---|---|",
        f"| cold | - | - | {c['first_fit_s']:.2f} (with redrock's import) | "
        f"{c['second_fit_s']:.2f} | {c['rss_after_mb']:.0f} | {c['grid_mb']:.0f} |",
        f"| after warm_up() | {w['import_s']:.2f} | {w['warm_fit_s']:.2f} | "
        f"{w['first_fit_s']:.2f} | {w['second_fit_s']:.2f} | {w['rss_after_mb']:.0f} | "
        f"{w['grid_mb']:.0f} |",
        "",
        "The cold first fit pays for redrock's import, the redshifted template grid and "
        "numba's compilation of redrock's rebinning; after `warm_up()` (which the server runs "
        "at start in a thread, `app/serve.py`) the first fit costs what any later one does.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per case")
    p.add_argument("--case", choices=("cold", "warm"), help=argparse.SUPPRESS)  # (child)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(one_case(args.case)))
        return 0
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats}: expected at least 1")
    from scifm.core.report import run_info, write_report

    runs = {case: [run(case) for _ in range(args.repeats)] for case in ("cold", "warm")}
    med = statistics.median
    res: dict = {"repeats": args.repeats, "runs": runs}
    res["cold"] = {k: med(r[k] for r in runs["cold"])
                   for k in ("first_fit_s", "second_fit_s", "rss_after_mb", "grid_mb")}  # fmt: skip
    res["cold"].update(z=runs["cold"][0]["z"], flag=runs["cold"][0]["flag"])
    res["warm"] = {k: med(r[k] for r in runs["warm"])
                   for k in ("first_fit_s", "second_fit_s", "rss_after_mb", "grid_mb")}  # fmt: skip
    res["warm"]["import_s"] = med(r["warm_up"]["import_s"] for r in runs["warm"])
    res["warm"]["warm_fit_s"] = med(r["warm_up"]["fit_s"] for r in runs["warm"])
    res["same_result"] = all(r["same_result"] for rs in runs.values() for r in rs)
    data = {"spectrum": "specutils desi_test_data coadd-sv3-dark-26065.fits, object 0"}
    info = run_info(data=data, argv=argv, note="1 thread; 2 CPU cores shared with other jobs")
    write_report("redshift_warmup", res, render(res), info=info,
                 title="First template fit of a process: cold and after warm_up()")  # fmt: skip
    print(render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
