"""The same galaxies from two survey generator versions: what changed, and by how much.

Two files made with the same seed (e.g. the first rows of the 40k survey begun by version 2
and the same rows from version 3) hold the same galaxies: the same parameters, so the same
physics. This compares them row by row over their common finished rows:
- every stored parameter and property: largest relative difference (the noiseless
  quantities; a version that only reorganises the computation changes them by round-off
  or by its stated numerical tolerance);
- inverse variances: largest relative difference;
- noisy spectra and image sums: new minus old in units of the noise of the difference
  (mean 0 expected; std 1 for independent noise draws, below 1 where the versions share a
  random stream).

    .venv/bin/python benchmarks/survey_versions.py data/survey_40k.h5 data/survey_v3_first1984.h5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np

from scifm.core.report import repo_path, run_info, write_report
from scifm.survey.io import finished_rows

RESULTS = Path(__file__).parent / "results"


def compare(old: Path, new: Path, limit: int) -> dict:
    rows = np.intersect1d(finished_rows(old), finished_rows(new))[:limit]
    if rows.size == 0:
        raise SystemExit(f"{old} and {new} have no finished rows in common")
    with h5py.File(old, "r") as a, h5py.File(new, "r") as b:
        if a.attrs["seed"] != b.attrs["seed"]:
            raise SystemExit(f"seeds differ ({a.attrs['seed']} vs {b.attrs['seed']})")
        out = {"versions": [int(a.attrs["version"]), int(b.attrs["version"])], "n": int(rows.size)}
        diffs = {}
        for group in ("params", "props"):
            for name in b[group]:
                x, y = a[group][name][rows], b[group][name][rows]
                rel = np.abs(y - x) / np.maximum(np.abs(x), 1e-300)
                diffs[f"{group}/{name}"] = float(np.nanmax(rel))
        out["max_rel_diff"] = dict(sorted(diffs.items(), key=lambda kv: -kv[1]))
        ia, ib = a["ivar"][rows].astype(np.float64), b["ivar"][rows].astype(np.float64)
        out["ivar_max_rel_diff"] = float(np.max(np.abs(ib - ia) / ia))
        sa, sb = a["spectra"][rows].astype(np.float64), b["spectra"][rows].astype(np.float64)
        pull = (sb - sa) / np.sqrt(1 / ia + 1 / ib)
        out["spectrum_pull"] = {"mean": float(pull.mean()), "std": float(pull.std())}
        stamp = np.stack([b["props"][f"stamp_flux_{c}"][rows] for c in "grz"], 1)
        sky = np.stack([b["params"][f"sky_sigma_{c}"][rows] for c in "grz"], 1)
        side = a["images"].shape[1]
        gain = np.asarray(json.loads(b.attrs["config"])["electrons_per_nmgy"])
        sigma = np.sqrt(2 * ((sky * side) ** 2 + np.clip(stamp, 0, None) / gain))
        sums = [np.concatenate([f["images"][rows[i : i + 64]].sum(axis=(1, 2), dtype=np.float64)
                                for i in range(0, rows.size, 64)]) for f in (a, b)]  # fmt: skip
        p = (sums[1] - sums[0]) / sigma
        out["image_sum_pull"] = {
            "mean": p.mean(0).round(3).tolist(),
            "std": p.std(0).round(3).tolist(),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", help="survey file of the earlier generator version")
    ap.add_argument("new", help="survey file of the later version, same seed")
    ap.add_argument("--limit", type=int, default=4000, help="common rows to compare at most")
    args = ap.parse_args()
    r = compare(Path(args.old), Path(args.new), args.limit)
    info = run_info(data={"old": repo_path(args.old), "new": repo_path(args.new), "rows": r["n"]})
    top = list(r["max_rel_diff"].items())[:8]
    md = "\n".join([
        f"Generator version {r['versions'][0]} against {r['versions'][1]} on the same {r['n']} "
        "galaxies (same seed and object ids).", "",
        "- largest relative differences of the stored parameters and properties: "
        + ", ".join(f"{k} {v:.1e}" for k, v in top)
        + f"; the rest at most {list(r['max_rel_diff'].values())[len(top)]:.0e}",
        "- inverse variance of the spectra: largest relative difference "
        f"{r['ivar_max_rel_diff']:.1e}",
        f"- noisy spectra, new - old in units of the noise of the difference: mean "
        f"{r['spectrum_pull']['mean']:.4f}, std {r['spectrum_pull']['std']:.4f} (independent "
        "noise draws: 0, 1)",
        f"- image sums g, r, z, new - old over the noise of the difference: mean "
        f"{r['image_sum_pull']['mean']}, std {r['image_sum_pull']['std']} (std below 1 when "
        "both versions draw the image noise from the same random stream: most Poisson counts "
        "then coincide)", "",
    ])  # fmt: skip
    write_report("survey_versions", r, md, info=info, out_dir=RESULTS,
                 title="Survey generator versions compared")  # fmt: skip
    print(md)


if __name__ == "__main__":
    main()
