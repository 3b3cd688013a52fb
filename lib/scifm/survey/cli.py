"""``scifm survey``: generate a simulated survey, inspect it, read real spectrum files.

scifm survey generate --n 1000 --out data/survey.h5 [--seed 0] [--workers 2]
scifm survey info data/survey.h5
scifm survey read-spectrum coadd-sv3-dark-26065.fits [--redrock redrock.fits] [--json]
scifm survey redshift FILE [--split test] [--n 100] [--json OUT]   (FITS spectra or survey HDF5)
    (the k-NN redshift beside it: scifm astroclip redshift FILE)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scifm.core.cliargs import positive_int


def _generate(args: argparse.Namespace) -> int:
    from scifm.survey.config import SurveyConfig
    from scifm.survey.generate import generate_survey

    cfg = SurveyConfig.preset(args.preset).with_overrides(args.set or [])
    out = generate_survey(args.out, args.n, config=cfg, seed=args.seed, workers=args.workers,
                          progress=not args.quiet, overwrite=args.overwrite)  # fmt: skip
    print(f"wrote {args.n} galaxies (seed {args.seed}, preset {args.preset}) to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from scifm.survey.io import survey_info

    info = survey_info(args.path)
    if info["config"] is not None:  # None for a released AstroCLIP file
        info["config"] = info["config"].to_dict()
    print(json.dumps(info, indent=2))
    return 0


def _read_spectrum(args: argparse.Namespace) -> int:
    from scifm.survey.readers import read_spectrum_file

    records = read_spectrum_file(args.file, redrock=args.redrock)
    rows = [{"targetid": r.targetid, "redshift": r.redshift, "coverage": round(r.coverage, 4),
             "wave_min": r.wave_range[0], "wave_max": r.wave_range[1], "source": r.source}
            for r in records]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2, allow_nan=False))
        return 0
    print(f"{args.file}: {len(rows)} object(s) on the DESI grid (7781 pixels, 3600-9824 A)")
    for r in rows:
        z = "unknown" if r["redshift"] is None else f"{r['redshift']:.5f}"
        good = ("no good pixel" if r["wave_min"] is None
                else f"good {r['wave_min']:.0f}-{r['wave_max']:.0f} A")  # fmt: skip
        print(f"  targetid {r['targetid']:>20}  z {z:>9}  coverage {r['coverage']:6.1%}  {good}")
    return 0


def _redshift(args: argparse.Namespace) -> int:
    from scifm.survey.redshift import redshift_rows

    check_json_out(args.json, [args.file, args.catalog, args.templates, args.redrock])
    rows, z_range = redshift_rows(args.file, split=args.split, n=args.n,
                                  catalog=args.catalog, templates=args.templates,
                                  redrock=args.redrock)  # fmt: skip
    show_redshift_rows(args.file, rows, z_range, args.json)
    return 0


def show_redshift_rows(file: str, rows: list[dict], z_range: list[float] | None,
                       json_out: str | None, knn: bool = False) -> None:  # fmt: skip
    """Print ``redshift_rows``' rows (with ``knn``: their knn_z and knn_note, ``scifm
    astroclip redshift``) and write them to ``json_out`` when given."""
    from scifm.core.report import atomic_write
    from scifm.survey.redshift import OUTSIDE_NOTE

    if json_out:  # the text is made first: a failure (above or here) writes nothing
        check_json_out(json_out, [file])
        text = json.dumps({"file": str(file), "catalog_z_range": z_range, "rows": rows},
                          indent=1, allow_nan=False)  # fmt: skip
        atomic_write(json_out, text)
    span = "no catalogue" if z_range is None else f"{z_range[0]:.3f}-{z_range[1]:.3f}"
    print(f"{file}: {len(rows)} spectra; template-fitting redshift (redrock, our templates); "
          f"catalogue z range {span}")  # fmt: skip
    col = f" {'knn_z':>8}" if knn else ""
    print(f"{'targetid':>20} {'z':>8} {'z_err':>9} {'true_z':>8}{col}  flag")
    for r in rows:
        true_z = "" if r["true_z"] is None else f"{r['true_z']:.4f}"
        note = f"  {r['note']}" if r["note"] else ""
        z, z_err = (float("nan") if v is None else v for v in (r["z"], r["z_err"]))
        if knn:
            col = f" {'-' if r['knn_z'] is None else format(r['knn_z'], '.4f'):>8}"
            note = f"  k-NN: {r['knn_note']}" + note.replace(OUTSIDE_NOTE, "", 1).rstrip()
        print(f"{r['targetid']:>20} {z:8.4f} {z_err:9.2e} {true_z:>8}{col}  {r['flag']}{note}")
    if json_out:
        print(f"wrote {json_out}")


def check_json_out(json_out: str | None, inputs: list) -> None:
    """Refuse a ``--json OUT`` that would overwrite an input of the command, or an existing
    file that is not such a JSON record (a spectrum, a survey): only a record of an earlier
    run of the command is replaced. Checked before any work, so nothing is lost."""
    if not json_out:
        return
    out = Path(json_out)
    for given in inputs:
        if given and Path(given).exists() and out.exists() and out.samefile(given):
            raise ValueError(f"--json {json_out}: is an input of this command ({given}); "
                             "choose another path")  # fmt: skip
    if out.is_dir():
        raise ValueError(f"--json {json_out}: is a directory; give a file path")
    if out.exists():
        try:
            old = json.loads(out.read_text())
            ours = isinstance(old, dict) and {"file", "rows"} <= old.keys()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ours = False
        if not ours:
            raise ValueError(f"--json {json_out}: exists and is not a redshift record written by "
                             "this command; remove it or choose another path")  # fmt: skip
    if not out.parent.exists():
        raise ValueError(f"--json {json_out}: folder {out.parent} does not exist")


def add_redshift_input_args(p: argparse.ArgumentParser, n_help: str) -> None:
    """The spectra a redshift command reads and where it writes: one set for every such command.

    ``scifm survey redshift`` and ``scifm astroclip redshift`` read the same inputs (a DESI
    coadd, an SDSS spec file or a survey HDF5 file) with the same options.
    """
    p.add_argument("file", help="DESI coadd-*.fits, SDSS spec-*.fits, or a survey HDF5 file")
    p.add_argument(
        "--split",
        choices=("all", "test"),
        default="all",
        help="survey file: all finished rows, or AstroCLIP's held-out test split",
    )
    p.add_argument("--n", type=positive_int, default=None, help=n_help)
    p.add_argument("--json", default=None, metavar="OUT", help="also write the rows to OUT")
    p.add_argument("--templates", default=None, help="redrock template file (default: ours)")
    p.add_argument(
        "--redrock", default=None, help="DESI's redrock file for a coadd: its z shown as true_z"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``survey`` group to the ``scifm`` command."""
    group = subparsers.add_parser("survey", help="simulated DESI x Legacy Surveys galaxy survey")
    sub = group.add_subparsers(dest="survey_command", required=True)
    p = sub.add_parser("generate", help="simulate N galaxies into an HDF5 file (resumable)")
    p.add_argument("--n", type=positive_int, required=True, help="number of galaxies")
    p.add_argument("--out", required=True, help="output HDF5 path (an interrupted one resumes)")
    p.add_argument("--seed", type=int, default=0, help="survey seed (galaxy i is (seed, i))")
    p.add_argument("--workers", type=positive_int, default=1, help="parallel worker processes")
    p.add_argument("--preset", default="desi", help="SurveyConfig preset: tiny, small, desi")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="SurveyConfig overrides")
    p.add_argument("--overwrite", action="store_true", help="replace a different existing file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_generate)
    p = sub.add_parser("info", help="size, seed, config and progress of a survey file")
    p.add_argument("path")
    p.set_defaults(func=_info)
    p = sub.add_parser("read-spectrum", help="read a DESI coadd or SDSS spec file")
    p.add_argument("file", help="coadd-*.fits or spec-*.fits")
    p.add_argument("--redrock", default=None, help="redrock file to join redshifts (DESI)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_read_spectrum)
    p = sub.add_parser("redshift", help="template-fitting redshift (redrock) of each spectrum")
    add_redshift_input_args(p, n_help="survey file: first N rows only")
    p.add_argument(
        "--catalog",
        default=None,
        help="catalog whose z range is noted (default assets/astroclip/catalog.h5)",
    )
    p.set_defaults(func=_redshift)
