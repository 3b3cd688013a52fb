"""Realism and cost of the simulated galaxy survey (issue 5).

Generates a survey sample with ``scifm.survey`` and measures:
- cost: CPU milliseconds per galaxy of one worker and of each stage (parameters,
  bagpipes spectrum, photometry, GalSim image, fibre fraction, noise), and throughput
  (galaxies/s) with 1 and 2 worker processes;
- storage per galaxy (file bytes / N, and the raw array bytes);
- realism (``scifm.survey.realism``): colour-redshift, colour bimodality,
  size-magnitude, H-alpha EW vs sSFR (and re-measured on the noisy spectra),
  image photometry vs spectrum photometry in units of the image noise;
and draws the figures ``benchmarks/results/survey_*.png``.

    .venv/bin/python benchmarks/survey.py            # 1024 galaxies (~3 min on the shared CPU)
    .venv/bin/python benchmarks/survey.py --quick    # 96 galaxies (~30 s)
    .venv/bin/python benchmarks/survey.py --quick --survey data/survey_40k.h5 --limit 4000
        # quick cost figures, realism on the first 4000 galaxies of a generated file
    PYTHONPATH=OLD/lib .venv/bin/python benchmarks/survey.py --quick --cost-only before.json
    .venv/bin/python benchmarks/survey.py --quick --before before.json ...
        # the cost of an older generator timed the same way, quoted beside the new one
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from scifm.core.report import repo_path, run_info, write_report
from scifm.survey import SurveyConfig, generate_survey, read_survey, sample_galaxy, survey_info
from scifm.survey.fiber import fiber_curve, fiber_fractions
from scifm.survey.figures import realism_figures
from scifm.survey.images import add_image_noise, draw_noiseless
from scifm.survey.io import VERSION
from scifm.survey.photometry import band_fluxes
from scifm.survey.realism import realism_report
from scifm.survey.spectra import SpectrumSimulator, observe_spectrum

RESULTS = Path(__file__).parent / "results"


STAGES = ("params", "spectrum", "photometry", "image", "fiber", "noise")


def stage_times(cfg: SurveyConfig, n: int, seed: int = 99) -> dict[str, float]:
    """Mean CPU milliseconds per galaxy of each simulation stage, in this process.

    The stages run as ``simulate.simulate_galaxy`` runs them, after 16 warm-up galaxies (the
    bagpipes model and GalSim's tables per Sersic index are built once per process). CPU
    time, not wall time: on a shared machine the wall clock measures the other jobs.
    """
    sim = SpectrumSimulator(cfg)
    for i in range(16):
        _run_stages(cfg, sim, seed + 1, i, None)
    t = dict.fromkeys(STAGES, 0.0)
    for i in range(n):
        _run_stages(cfg, sim, seed, i, t)
    return {k: round(v * 1e3 / n, 2) for k, v in t.items()}


def _run_stages(cfg: SurveyConfig, sim, seed: int, i: int, t: dict | None) -> None:
    marks = [time.process_time()]
    p = sample_galaxy(cfg, seed, i)
    marks.append(time.process_time())
    m = sim.model(p)
    marks.append(time.process_time())
    f = band_fluxes(m.full_wave, m.full_flux)
    marks.append(time.process_time())
    img = draw_noiseless(cfg, p, f)
    marks.append(time.process_time())
    fiber_flux = m.flux * fiber_curve(fiber_fractions(p, cfg.fiber_diameter), cfg.wavelength)
    marks.append(time.process_time())
    rng = np.random.default_rng([seed, i, 1])
    sky = np.array([p[f"sky_sigma_{b}"] for b in "grz"])
    add_image_noise(img, sky, np.asarray(cfg.electrons_per_nmgy), rng)
    observe_spectrum(cfg, fiber_flux, p["spec_exposure"], rng)
    marks.append(time.process_time())
    if t is not None:
        for k, a, b in zip(STAGES, marks[:-1], marks[1:]):
            t[k] += b - a


def timed_generation(path: Path, n: int, workers: int, seed: int) -> tuple[float, float]:
    """(galaxies per wall second, CPU ms per galaxy of this process) of ``generate_survey``.

    One worker runs in this process: a 16-galaxy survey first builds its bagpipes model and
    tables, so the timed run is the steady state of a long generation. The CPU figure is
    only meaningful for one worker (a pool's children are not counted).
    """
    # One worker: the default chunks of the real runs. Two: small chunks, so both get work.
    cfg = SurveyConfig() if workers == 1 else SurveyConfig(chunk_size=16)
    if workers == 1:
        generate_survey(path.with_suffix(".warm.h5"), 16, seed=seed, config=cfg, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    generate_survey(path, n, seed=seed, workers=workers, progress=False, config=cfg)
    return n / (time.perf_counter() - t0), (time.process_time() - c0) * 1e3 / n


def cost(n_stages: int, n_single: int, seed: int, tmp: Path) -> dict:
    """Stage CPU times and one-worker throughput of the code on the path (old or new)."""
    cfg = SurveyConfig()
    print(f"stage timings over {n_stages} galaxies", flush=True)
    stages = stage_times(cfg, n_stages)
    print(f"generating {n_single} galaxies with 1 worker", flush=True)
    gps1, cpu1 = timed_generation(tmp / "one.h5", n_single, 1, seed)
    return {
        "generator_version": VERSION,
        "galaxies_per_s_1_worker": round(gps1, 2),
        "cpu_ms_per_galaxy_1_worker": round(cpu1, 1),
        "cpu_ms_per_galaxy_by_stage": stages,
        "galaxies_timed": {"stages": n_stages, "1_worker": n_single},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sample, smoke run")
    ap.add_argument("--survey", default=None, help="existing survey file for the realism part")
    ap.add_argument("--limit", type=int, default=4000, help="rows of --survey to analyse")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument(
        "--cost-only",
        default=None,
        metavar="JSON",
        help="only time the generation (of whatever scifm is on the path) into JSON",
    )
    ap.add_argument(
        "--before",
        default=None,
        metavar="JSON",
        help="a --cost-only result of the previous code, quoted beside the new one",
    )
    ap.add_argument("--before-note", default="", help="which code --before timed")
    args = ap.parse_args()
    n_sample, n_stages, n_single = (96, 64, 128) if args.quick else (1024, 256, 512)
    if args.cost_only:
        with tempfile.TemporaryDirectory() as tmp:
            result = {"cost": cost(n_stages, n_single, args.seed, Path(tmp)),
                      "run": run_info(note="cost only; CPU times of one process")}  # fmt: skip
        Path(args.cost_only).write_text(json.dumps(result, indent=2))
        print(json.dumps(result["cost"], indent=2))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        one = cost(n_stages, n_single, args.seed, Path(tmp))
        print(f"generating {n_sample} galaxies with 2 workers", flush=True)
        sample = Path(tmp) / "sample.h5"
        gps2, _ = timed_generation(sample, n_sample, 2, args.seed)
        file_bytes = os.path.getsize(sample)
        source = args.survey or sample
        d = read_survey(source, stop=None if args.survey is None else args.limit)
        print(f"realism on {len(d)} galaxies of {source}", flush=True)
        report = realism_report(d)
        source_version = survey_info(source).get("version")
        # A quick run's own small sample is a smoke test; realism from a --survey file is not.
        suffix = "_quick" if args.quick and args.survey is None else ""
        figures = []
        for name, fig in realism_figures(d).items():
            out = RESULTS / f"{name}{suffix}.png"
            fig.savefig(out, dpi=70)
            figures.append(out.name)
    arrays = d.images[0].nbytes + d.spectra[0].nbytes + d.ivar[0].nbytes
    realism_source = repo_path(source) if args.survey else f"generated sample, seed {args.seed}"
    info = run_info(
        data={
            "generated": f"{n_single} galaxies (1 worker) and {n_sample} (2 workers), "
            f"SurveyConfig defaults, seed {args.seed}; stage timings on seed 99",
            "realism": f"{realism_source}, {len(d)} galaxies, generator version {source_version}",
        },
        note="2 CPU cores shared with other jobs: wall-clock rates depend on the load, the CPU "
        "times per galaxy much less; the simulation is CPU code",
    )
    gps1 = one["galaxies_per_s_1_worker"]
    result = {
        "throughput": {
            **one,
            "galaxies_per_s_2_workers": round(gps2, 2),
            "speedup_2_vs_1": round(gps2 / gps1, 2),
            "cpu_hours_for_40k_galaxies": round(
                40_000 * one["cpu_ms_per_galaxy_1_worker"] / 3.6e6, 2
            ),
        },
        "storage": {
            "bytes_per_galaxy_file": round(file_bytes / n_sample),
            "bytes_per_galaxy_arrays": int(arrays),
            "note": "uncompressed float32: image 152x152x3, spectrum + ivar 2 x 7781",
        },
        "realism_source": realism_source,
        "realism_generator_version": source_version,
        "realism": report,
        "figures": figures,
    }
    if args.before:
        before = json.loads(Path(args.before).read_text())
        result["throughput"]["before"] = {**before["cost"], "command": before["run"]["command"],
                                          "date_utc": before["run"]["date_utc"],
                                          "code": args.before_note}  # fmt: skip
    result["throughput"]["galaxies_timed"]["2_workers"] = n_sample
    md = render_md(result)
    write_report(
        f"survey{suffix}", result, md, info=info, out_dir=RESULTS,
        title="Simulated galaxy survey: realism and cost",
    )  # fmt: skip
    print(md)


def _before_lines(t: dict) -> list[str]:
    if "before" not in t:
        return []
    b = t["before"]
    ratio = b["cpu_ms_per_galaxy_1_worker"] / t["cpu_ms_per_galaxy_1_worker"]
    return [
        f"- before (generator version {b.get('generator_version')}, {b.get('code', '')}; "
        f"`{b['command']}`, {b['date_utc']}): "
        f"{b['cpu_ms_per_galaxy_1_worker']} CPU ms per galaxy, {b['galaxies_per_s_1_worker']} "
        f"galaxies/s (1 worker); by stage {b['cpu_ms_per_galaxy_by_stage']}; "
        f"{ratio:.1f}x less CPU per galaxy now",
    ]


def render_md(r: dict) -> str:
    t, s, rep = r["throughput"], r["storage"], r["realism"]
    cr, bi, sm = rep["colour_redshift"], rep["bimodality"], rep["size_magnitude"]
    el, ph, sa = rep["emission_lines"], rep["photometry_image_vs_spectrum"], rep["sample"]
    fo = rep["fiber_and_overflow"]

    def fmt(x: object) -> str:
        return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)

    lines = [
        f"## Cost (generator version {t['generator_version']})", "",
        f"- CPU per galaxy (1 worker, steady state): {t['cpu_ms_per_galaxy_1_worker']} ms, "
        f"{t['cpu_hours_for_40k_galaxies']} CPU hours for 40k galaxies",
        f"- throughput: {t['galaxies_per_s_1_worker']} galaxies/s (1 worker), "
        f"{t['galaxies_per_s_2_workers']} (2 workers, pool start included), "
        f"ratio {t['speedup_2_vs_1']}",
        f"- CPU ms per galaxy by stage (1 process): {t['cpu_ms_per_galaxy_by_stage']}",
        *_before_lines(t),
        f"- storage: {s['bytes_per_galaxy_file']} bytes/galaxy on disk "
        f"({s['bytes_per_galaxy_arrays']} of arrays; {s['note']})", "",
        f"## Realism ({r['realism_source']}, N = {sa['n']})", "",
        f"- sample: z 5/50/95% = {[round(v, 3) for v in sa['redshift']]}, r = "
        f"{[round(v, 2) for v in sa['mag_r']]}, fraction r < 19.5: {sa['frac_r_below_19p5']:.2f}, "
        f"quiescent fraction {sa['quiescent_fraction']:.2f}, spectral S/N per pixel "
        f"{[round(v, 1) for v in sa['spec_snr_per_pixel']]}",
        "- colour-redshift (median g-r per z bin " + str(cr["z_bins"]) + "): quiescent "
        + str([fmt(v) for v in cr["median_g_r_quiescent"]]) + ", star-forming "
        + str([fmt(v) for v in cr["median_g_r_star_forming"]])
        + f"; red sequence reddens with z: {cr['red_sequence_reddens_with_z']}",
        f"- bimodality ({bi['z_range'][0]} < z < {bi['z_range'][1]}, N = {bi['n']}): "
        f"blue {fmt(bi.get('blue_mean'))} +- {fmt(bi.get('blue_sigma'))}, red "
        f"{fmt(bi.get('red_mean'))} +- {fmt(bi.get('red_sigma'))}, Ashman D = "
        f"{fmt(bi.get('ashman_d'))} (> 2: separated), BIC gain of 2 vs 1 components "
        f"{fmt(bi.get('delta_bic_two_vs_one'))}",
        f"- size-magnitude: Spearman(log r_half, r) = {sm['spearman_log_rhalf_vs_mag_r']:.2f}, "
        f"slope {sm['slope_dex_per_mag']:.3f} dex/mag; half-light radius measured on the r "
        f"images vs catalogue: Spearman {sm['spearman_image_rhalf_vs_catalogue']:.2f}, median "
        f"measured / sqrt(r_half^2 + (FWHM/2)^2) = {sm['median_image_over_psf_broadened']:.2f} "
        "(> 1: Moffat wings)",
        f"- H-alpha: Spearman(log EW, log sSFR) = {el['spearman_log_ew_vs_log_ssfr']:.2f}; median "
        f"EW star-forming {el['median_ew_star_forming']:.1f} A, quiescent "
        f"{el['median_ew_quiescent']:.1f} A; measured on noisy spectra / model = "
        f"{fmt(el['median_measured_over_model'])} (N = {el['n_measured']})",
        f"- redshift range {fo['z_min']:.4f}-{fo['z_max']:.3f}; z < 0.02: "
        f"{fo['frac_z_below_0p02']:.3f}, z < 0.05: {fo['frac_z_below_0p05']:.3f}",
        f"- fibre (1.5\"): r-band share of the light 5/50/95% = "
        f"{[round(v, 3) for v in fo.get('fiber_frac_r', [])]}, median fibre - total r = "
        f"{fmt(fo.get('fiber_minus_total_mag_r_median'))} mag, Spearman(share, size) = "
        f"{fmt(fo.get('spearman_fiber_frac_vs_size'))}; galaxies losing > 10% of r light "
        f"outside the stamp: {fmt(fo.get('frac_overflowing_stamp_10pc'))} (max "
        f"{fmt(fo.get('max_light_outside_stamp'))})", "",
        "| band | median pull vs spectrum | robust std | within 3 sigma | median rel. diff "
        "| noise pull mean | noise pull std |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for b, v in ph.items():
        lines.append(
            f"| {b} | {v['median_pull']:.2f} | {v['robust_std_pull']:.2f} | "
            f"{v['frac_within_3sigma']:.3f} | {v['median_rel_diff']:.4f} | "
            f"{fmt(v.get('noise_pull_mean'))} | {fmt(v.get('noise_pull_std'))} |"
        )
    lines += ["", "Figures: " + ", ".join(r["figures"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
