"""Accuracy of the template-fitting redshift (issue 14, item 5).

Fits ``scifm.survey.redshift`` (redrock, NMF, our templates: ``scifm.survey.templates``)
to (1) the held-out test split of a simulated survey file (finished rows only,
``scifm.survey.io.held_out_rows``: AstroCLIP's 80/20 split) and (2) every real
spectrum available offline: the DESI coadds that specutils' wheel ships. Reports on
the simulated split the fraction with |dz|/(1+z) < 0.0033 (DESI's catastrophic-failure
threshold, ~1000 km/s), the NMAD of dz/(1+z), the median offset, how the quality flag
separates failures, and the scatter of the residuals in units of z_err; per real
spectrum z, z_err, flag and its target class (those files carry no redshift: no truth).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/redshift.py        # data/survey_40k.h5
    .venv/bin/python benchmarks/redshift.py --survey data/s.h5 --n 200
A survey file can be made with ``scifm survey generate --n 400 --seed 3 --out data/s.h5``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import h5py
import numpy as np
from sklearn.decomposition import PCA

from scifm.core.paths import repo_root
from scifm.core.report import results_dir, run_info, write_report
from scifm.survey.io import held_out_rows, read_spectra, survey_info
from scifm.survey.readers import read_spectrum_file
from scifm.survey.readers.synthetic import specutils_desi_coadds
from scifm.survey.redshift import (
    CATASTROPHIC,
    MIN_DELTACHI2,
    desi_target_class,
    finite_or_none,
    fit_records,
    fit_redshifts,
    range_note,
)
from scifm.survey.templates import BURSTS, LINES

TITLE = "Template-fitting redshift: simulated test split and real DESI spectra"


def nmad(x: np.ndarray) -> float:
    """Normalised median absolute deviation, 1.4826 median |x - median x|."""
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


def simulated(
    path: Path,
    n: int | None,
    z_range: tuple[float, float] | None = None,
    variants: bool = False,
    reference_rows: int | None = None,
    model_path: str | None = None,
) -> dict:
    rows = held_out_rows(path)
    rows = rows[:n] if n is not None else rows
    d = read_spectra(path, rows)
    t0 = time.perf_counter()
    fits_ = fit_redshifts(d["spectra"], d["ivar"])
    seconds = time.perf_counter() - t0
    z_true = d["redshift"].astype(np.float64)
    z = np.array([f.z for f in fits_])
    z_err = np.array([f.z_err for f in fits_])
    ok = np.array([f.ok for f in fits_])
    dz = (z - z_true) / (1 + z_true)
    good = np.abs(dz) < CATASTROPHIC
    bias = float(np.median(dz[good])) if good.any() else float("nan")
    pull = (z - z_true - bias * (1 + z_true)) / np.where(z_err > 0, z_err, np.nan)
    return {
        "n": len(rows),
        "rows": "held-out test split (AstroCLIP's 80/20 rule over the finished prefix)",
        "frac_within_0.0033": float(good.mean()),
        "nmad_dz_1pz": nmad(dz),
        "median_dz_1pz": float(np.median(dz)),
        "frac_flag_ok": float(ok.mean()),
        "frac_within_0.0033_flag_ok": float(good[ok].mean()) if ok.any() else float("nan"),
        "n_catastrophic": int((~good).sum()),
        "n_catastrophic_flag_ok": int((~good & ok).sum()),
        "n_flagged": int((~ok).sum()),
        "nmad_pull_after_offset": nmad(pull[good]),
        "median_z_err": float(np.median(z_err)),
        "z_true_range": [float(z_true.min()), float(z_true.max())],
        "seconds": seconds,
        "seconds_per_spectrum": seconds / len(rows),
        "knn_agreement": None if z_range is None else knn_agreement(
            d["spectra"], z, ok, z_range, query_ids=d["targetid"], model_path=model_path,
            survey=path),
        "knn_variants": knn_variants(path, d["spectra"], z, ok, z_range, d["targetid"],
                                     reference_rows=reference_rows, model_path=model_path)
                        if variants and z_range is not None else None,
        "failures": [{"row": int(r), "z_true": float(zt), "z": float(zz), "flag": f.flag}
                     for r, zt, zz, f, g in zip(rows, z_true, z, fits_, good) if not g],
    }  # fmt: skip


def knn_agreement(
    spectra: np.ndarray,
    z_tmpl: np.ndarray,
    ok: np.ndarray,
    z_range: tuple[float, float],
    query_ids: np.ndarray | None = None,
    model_path: str | None = None,
    survey: Path | None = None,
) -> dict:
    """Issue 14 item 5: where the template redshift lies inside the catalogue's range, the
    zero-shot k-NN redshift (k = 64, standardised, distance-weighted) of the shipped AstroCLIP
    spectrum embedding over the shipped catalog must agree with it within 0.01 (1 + z).

    The neighbours are the catalog's training galaxies only (``is_test`` 0) and never a
    query galaxy itself (``query_ids``): a catalog cut from the same survey holds some of the
    held-out galaxies, and a galaxy is its own nearest neighbour. ``model_path``: another
    AstroCLIP model than the shipped one (a candidate); the same catalog galaxies are then
    re-embedded by it from ``survey`` (the catalog's stored embeddings are the shipped
    model's)."""
    from scifm.astroclip.catalog import Catalog
    from scifm.astroclip.data import prepare_spectra
    from scifm.astroclip.embed import embed_arrays
    from scifm.astroclip.realspec import knn_redshift_estimate
    from scifm.core.paths import assets_dir
    from scifm.dashboards.galaxies import load_astroclip
    from scifm.survey.redshift import AGREE

    root = assets_dir() / "astroclip"
    model = load_astroclip(model_path or str(root / "model"))
    cat = Catalog.load(root / "catalog.h5")
    emb = embed_arrays(model, None, prepare_spectra(spectra, model.config.spectrum),
                       device="cpu")["spectrum"]  # fmt: skip
    ref = np.ones(len(cat), bool) if "is_test" not in cat.props else cat.props["is_test"] == 0
    if query_ids is not None:
        ref &= ~np.isin(cat.targetid, np.asarray(query_ids, np.int64))
    z_cat = np.asarray(cat.props["redshift"], np.float64)[ref]
    ref_emb = cat.embeddings["spectrum"][ref].astype(np.float32)
    if model_path is not None:  # a candidate model: embed the same catalog galaxies with it
        ref_emb, z_cat = _embedded_rows(model, survey, cat.targetid[ref])
    z_knn = knn_redshift_estimate(ref_emb, z_cat, emb)
    inside = ok & (z_tmpl >= z_range[0]) & (z_tmpl <= z_range[1])
    d = np.abs(z_knn - z_tmpl) / (1 + z_tmpl)
    agree = d <= AGREE
    return {
        "definition": "|z_knn - z_template| / (1 + z_template) <= 0.01, template flag ok and "
                      "z_template inside the catalogue's range",
        "neighbours": f"{int(ref.sum())} catalog galaxies: training rows, no query galaxy",
        "model": model_path or "shipped",
        "catalog_survey": str(cat.attrs.get("survey", "not recorded")),
        "n_inside": int(inside.sum()),
        "frac_agree_inside": float(agree[inside].mean()) if inside.any() else float("nan"),
        "median_abs_dz_1pz_inside": float(np.median(d[inside])) if inside.any() else float("nan"),
        "nmad_knn_minus_template": nmad((z_knn - z_tmpl)[inside] / (1 + z_tmpl[inside])),
        "z_knn": [round(float(v), 5) for v in z_knn],
        "z_template": [round(float(v), 5) for v in z_tmpl],
        "page": page_agreement(model, cat, spectra, z_tmpl, inside, query_ids)
                if model_path is None else None,
    }  # fmt: skip


PAGE_K = 16  # the galaxies page's default k (GalaxyExplorer.k)


def page_agreement(model, cat, spectra: np.ndarray, z_tmpl: np.ndarray, inside: np.ndarray,
                   query_ids: np.ndarray | None, k: int = PAGE_K) -> dict | None:  # fmt: skip
    """Item 5 as the galaxies page answers an upload: the shipped redshift index
    (``assets/astroclip/redshift_index.h5``; ``astroclip/redshift_index.py``) searched by
    cosine, top-k, similarity-weighted mean redshift (``explore.knn_redshift``), among the
    indexed galaxies (the catalog's and, in an index built with ``--training-split``, every
    training galaxy of the split) that are training rows and not a query galaxy. None when no
    index is shipped."""
    from scifm.astroclip.redshift_index import RedshiftIndex, knn_redshifts
    from scifm.core.paths import assets_dir
    from scifm.survey.redshift import AGREE

    path = assets_dir() / "astroclip" / "redshift_index.h5"
    if not path.exists():
        return None
    index = RedshiftIndex.load(path)
    test_ids = cat.targetid[cat.props["is_test"] == 1] if "is_test" in cat.props else []
    exclude = np.concatenate(
        [
            np.asarray(test_ids, np.int64),
            np.asarray([] if query_ids is None else query_ids, np.int64),
        ]
    )
    allowed = ~np.isin(index.targetid, exclude)
    in_cat = allowed & np.isin(index.targetid, cat.targetid)
    z_knn = knn_redshifts(index, model, spectra, k=k, exclude=exclude)
    d = np.abs(z_knn - z_tmpl) / (1 + z_tmpl)
    return {
        "index": f"assets/astroclip/redshift_index.h5 ({index.pooling}, "
                 f"{index.vectors.shape[1]} principal components)",
        "estimator": f"cosine top-{k}, similarity-weighted (the page's upload)",
        "neighbours": f"{int(allowed.sum())} indexed galaxies ({int(in_cat.sum())} of them in "
                      "the shipped catalog): training rows, no query",
        "frac_agree_inside": float((d <= AGREE)[inside].mean()) if inside.any() else float("nan"),
        "median_abs_dz_1pz_inside": float(np.median(d[inside])) if inside.any() else float("nan"),
        "nmad_knn_minus_template": nmad((z_knn - z_tmpl)[inside] / (1 + z_tmpl[inside])),
        "by_redshift": agreement_by_redshift(d, z_tmpl, inside, index.redshift[allowed]),
        "z_knn": [round(float(v), 5) for v in z_knn],
    }  # fmt: skip


Z_EDGES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.7)  # template-redshift bins of the breakdown


def agreement_by_redshift(d: np.ndarray, z_tmpl: np.ndarray, inside: np.ndarray,
                          z_neighbours: np.ndarray) -> list[dict]:  # fmt: skip
    """Where the misses are: per template-redshift bin, the queries inside the range, the
    neighbours the index offers there, the fraction that agree, and the misses that are
    near ones (|dz|/(1+z) <= 2 x the tolerance)."""
    from scifm.survey.redshift import AGREE

    rows = []
    for lo, hi in itertools.pairwise(Z_EDGES):
        q = inside & (z_tmpl >= lo) & (z_tmpl < hi)
        miss = q & (d > AGREE)
        rows.append({
            "z_lo": lo, "z_hi": hi, "n": int(q.sum()),
            "neighbours": int(((z_neighbours >= lo) & (z_neighbours < hi)).sum()),
            "frac_agree": float((d[q] <= AGREE).mean()) if q.any() else float("nan"),
            "median_abs_dz_1pz": float(np.median(d[q])) if q.any() else float("nan"),
            "misses": int(miss.sum()),
            "near_misses": int((miss & (d <= 2 * AGREE)).sum()),
        })  # fmt: skip
    return rows


def _embedded_rows(model, survey: Path | None, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model``'s aligned spectrum embeddings and redshifts of the galaxies ``ids`` of
    ``survey`` (the catalog's galaxies, read back from the survey they were cut from)."""
    if survey is None:
        raise ValueError("a candidate --model needs the survey its catalog was cut from")
    with h5py.File(survey, "r") as f:
        all_ids = np.asarray(f["targetid"][:], np.int64)
    rows = np.flatnonzero(np.isin(all_ids, ids))
    if len(rows) != len(ids):
        raise ValueError(f"{survey}: holds {len(rows)} of the catalog's {len(ids)} galaxies; "
                         "the catalog was cut from another survey")  # fmt: skip
    d = read_spectra(survey, rows)
    return spectrum_views(model, d["spectra"])["aligned"], d["redshift"].astype(np.float64)


ESTIMATORS = {
    "regression": "standardised, distance-weighted k-NN regression (k-NN R^2's)",
    "page": "cosine top-k, similarity-weighted mean (the galaxies page's upload)",
}


def cosine_knn(ref: np.ndarray, z_ref: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """The upload's estimate (``explore.knn_redshift``) for each query: the similarity-weighted
    mean redshift of its top-k neighbours by cosine similarity."""
    from scifm.astroclip.explore import similarity_weighted_mean

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)

    scores = unit(query) @ unit(ref).T
    top = np.argsort(-scores, axis=1)[:, :k]
    return np.array([similarity_weighted_mean(s[t], z_ref[t]) for s, t in zip(scores, top)])


SEGMENTS = "seg32"  # specformer_score.md: the best SpecFormer pooling for redshift there
PCA_DIMS = (128, 64)  # the segment vector reduced for a catalog column (4,096 -> 128 or 64)


def spectrum_views(model, spectra: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """One frozen SpecFormer pass, three embeddings: the aligned AstroCLIP spectrum embedding
    (the head's output, L2-normalised, as ``embed_arrays``), the SpecFormer-alone one
    (mean-pooled tokens, as ``spectrum_features``) and its tokens pooled in 32 wavelength
    segments (``specformer.pool_tokens``, 32 x d_model numbers)."""
    import torch

    from scifm.astroclip.data import prepare_spectra
    from scifm.astroclip.model import normalized
    from scifm.astroclip.specformer import pool_tokens

    x = prepare_spectra(spectra, model.config.spectrum)
    views: dict[str, list[np.ndarray]] = {"aligned": [], "specformer": [], "specformer_seg": []}
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            tokens = model.spectrum_encoder(x[i : i + batch_size])
            views["aligned"].append(normalized(model.spectrum_head(tokens)).numpy())
            views["specformer"].append(pool_tokens(tokens, "mean").numpy())
            views["specformer_seg"].append(pool_tokens(tokens, SEGMENTS).numpy())
    return {k: np.concatenate(v) for k, v in views.items()}


def knn_variants(
    path: Path,
    spectra: np.ndarray,
    z_tmpl: np.ndarray,
    ok: np.ndarray,
    z_range: tuple[float, float],
    query_ids: np.ndarray,
    ks: tuple[int, ...] = (64, 16),
    reference_rows: int | None = None,
    model_path: str | None = None,
) -> list[dict]:
    """Item 5's agreement for other choices than the page's: which embedding of the shipped
    model (aligned AstroCLIP spectrum or SpecFormer alone), which neighbours (the shipped
    catalog's training rows, or every training galaxy of the split) and k. The queries and
    template redshifts are :func:`knn_agreement`'s; no neighbour is a query galaxy."""
    from scifm.astroclip.catalog import Catalog
    from scifm.astroclip.realspec import knn_redshift_estimate
    from scifm.core.paths import assets_dir
    from scifm.dashboards.galaxies import load_astroclip
    from scifm.survey.io import finished_rows
    from scifm.survey.redshift import AGREE

    root = assets_dir() / "astroclip"
    model = load_astroclip(model_path or str(root / "model"))
    cat = Catalog.load(root / "catalog.h5")
    with h5py.File(path, "r") as f:
        ids = np.asarray(f["targetid"][:], np.int64)
    done = finished_rows(path)
    test = held_out_rows(path)
    train_rows = np.setdiff1d(done, test)
    train_rows = train_rows[~np.isin(ids[train_rows], query_ids)]
    ref_cat = np.ones(len(cat), bool) if "is_test" not in cat.props else cat.props["is_test"] == 0
    ref_cat &= ~np.isin(cat.targetid, query_ids)
    cat_rows = np.flatnonzero(np.isin(ids, cat.targetid[ref_cat]))  # increasing survey rows
    refs = {"shipped catalog, training rows": cat_rows,
            "every training galaxy of the split": train_rows[:reference_rows]}  # fmt: skip
    q = spectrum_views(model, spectra)
    inside = ok & (z_tmpl >= z_range[0]) & (z_tmpl <= z_range[1])
    out = []
    for ref_name, rows in refs.items():
        if not len(rows):  # e.g. a catalog cut from another survey file
            continue
        t0 = time.perf_counter()
        d = read_spectra(path, rows)
        views = spectrum_views(model, d["spectra"])
        seconds = time.perf_counter() - t0
        # what a compact catalog column could hold: the segment vector reduced to its first
        # principal components, fitted on these neighbours only (the queries are projected)
        pca = PCA(min(max(PCA_DIMS), *views["specformer_seg"].shape), random_state=0)
        ref_pc = pca.fit_transform(views["specformer_seg"])
        q_pc = pca.transform(q["specformer_seg"])
        for dim in PCA_DIMS:  # principal components nest: the first dim of the largest
            views[f"specformer_seg_pca{dim}"] = ref_pc[:, :dim]
            q[f"specformer_seg_pca{dim}"] = q_pc[:, :dim]
        z_ref = d["redshift"].astype(np.float64)
        for emb, est, k in itertools.product(tuple(views), ESTIMATORS, ks):
            if est == "regression":
                z_knn = knn_redshift_estimate(views[emb], z_ref, q[emb], k=k)
            else:  # the page's: cosine top-k, similarity-weighted (explore.knn_redshift)
                z_knn = cosine_knn(views[emb], z_ref, q[emb], k)
            dz = (np.abs(z_knn - z_tmpl) / (1 + z_tmpl))[inside]
            if not len(dz):
                dz = np.array([np.nan])
            out.append({
                "embedding": emb, "estimator": est, "neighbours": ref_name,
                "n_neighbours": len(rows), "k": k,
                "n_inside": int(inside.sum()),
                "frac_agree_inside": float(np.mean(dz <= AGREE)) if inside.any() else np.nan,
                "median_abs_dz_1pz_inside": float(np.median(dz)),
                "nmad_knn_minus_template": nmad((z_knn - z_tmpl)[inside]
                                                / (1 + z_tmpl[inside])),
                "embed_seconds": round(seconds, 1),
            })  # fmt: skip
    return out


def real_spectra(z_range: tuple[float, float]) -> list[dict]:
    out = []
    for path in specutils_desi_coadds():
        records = read_spectrum_file(path)
        for rec, fit in zip(records, fit_records(records)):
            out.append({"file": path.name, "targetid": rec.targetid,
                        "target_class": desi_target_class(rec.meta) or "none set",
                        "coverage": round(rec.coverage, 4), "z": finite_or_none(fit.z),
                        "z_err": finite_or_none(fit.z_err),
                        "flag": fit.flag, "deltachi2": fit.deltachi2,
                        "note": range_note(fit.z, z_range),
                        "true_z": rec.redshift})  # fmt: skip
    return out


def catalog_range() -> tuple[float, float]:
    from scifm.core.paths import assets_dir
    from scifm.survey.redshift import catalog_redshift_range

    return catalog_redshift_range(assets_dir() / "astroclip/catalog.h5")


def render(sim: dict, real: list[dict], survey: str, z_range: tuple[float, float]) -> str:
    s = sim
    lines = [
        "Template-fitting redshift: redrock 0.21 (NMF: non-negative amplitudes), our templates "
        f"({len(BURSTS)} single-burst BC03 continua, {len(LINES)} emission-line templates; "
        "`scifm.survey.templates`), spectra binned by 4 pixels, z from -0.005 to 1.7 in steps "
        f"of 3e-4 in log10(1 + z). Flag 'ok': ZWARN = 0 and DELTACHI2 >= {MIN_DELTACHI2:g} "
        "(DESI BGS criterion).",
        "",
        f"## Simulated test split ({survey}, {s['n']} galaxies, "
        f"z {s['z_true_range'][0]:.3f}-{s['z_true_range'][1]:.3f})",
        "",
        "| measure | value |",
        "|---|---|",
        f"| fraction with \\|dz\\|/(1+z) < 0.0033 | {s['frac_within_0.0033']:.4f} |",
        f"| NMAD of dz/(1+z) | {s['nmad_dz_1pz']:.2e} |",
        f"| median dz/(1+z) | {s['median_dz_1pz']:.2e} |",
        f"| fraction flagged ok | {s['frac_flag_ok']:.4f} |",
        f"| catastrophic (all / among ok) | {s['n_catastrophic']} / "
        f"{s['n_catastrophic_flag_ok']} |",
        f"| median z_err | {s['median_z_err']:.2e} |",
        f"| NMAD of (dz - offset)/z_err | {s['nmad_pull_after_offset']:.2f} |",
        f"| CPU time | {s['seconds']:.0f} s ({s['seconds_per_spectrum']:.2f} s per spectrum) |",
        "",
        "Survey generator version 4 puts the spectra on vacuum wavelengths, as our templates "
        "(like DESI's) are; before it, bagpipes' air wavelengths on a grid labelled vacuum "
        "gave a median offset of -2.65e-4 in dz/(1+z) (air/vacuum differ by 2.8e-4 in "
        "(1 + z) at H-alpha, ~80 km/s).",
        "",
        *_agreement_lines(s.get("knn_agreement"), survey),
        *_variant_lines(s.get("knn_variants")),
        "## Real spectra (the DESI coadds in specutils' wheel)",
        "",
        "These files carry no redshift (no redrock file ships with them): no truth, only the "
        f"estimates. Catalogue redshift range {z_range[0]:.3f}-{z_range[1]:.3f}.",
        "",
        "| file | targetid | target | coverage | z | z_err | DELTACHI2 | flag | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in real:
        z, z_err = ("-" if v is None else f"{v:{f}}" for v, f in ((r["z"], ".4f"),
                                                                  (r["z_err"], ".1e")))  # fmt: skip
        lines.append(f"| {r['file']} | {r['targetid']} | {r['target_class']} | "
                     f"{r['coverage']:.3f} | {z} | {z_err} | "
                     f"{r['deltachi2']:.1f} | {r['flag']} | {r['note']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _agreement_lines(a: dict | None, survey: str) -> list[str]:
    if not a:
        return []
    return [
        "## Zero-shot k-NN redshift (shipped AstroCLIP model and catalog) against the template"
        if a.get("model", "shipped") == "shipped"
        else f"## Zero-shot k-NN redshift (candidate model `{a['model']}`, re-embedding the "
        "shipped catalog's galaxies) against the template",
        "",
        f"Issue 14 item 5: {a['definition']}. Of the {a['n_inside']} test galaxies inside, "
        f"**{100 * a['frac_agree_inside']:.1f}%** agree (median |dz|/(1+z) "
        f"{a['median_abs_dz_1pz_inside']:.4f}, NMAD of (z_knn - z_template)/(1+z) "
        f"{a['nmad_knn_minus_template']:.4f}); the goal is that every one agrees. Neighbours: "
        f"{a['neighbours']}. The shipped model and catalog come from `{a['catalog_survey']}`"
        + (
            " (this survey: the queries are held-out galaxies of the split it trained on)."
            if a["catalog_survey"] == survey
            else "; these galaxies are new to it."
        ),
        "",
        *_page_lines(a.get("page")),
    ]


def _page_lines(p: dict | None) -> list[str]:
    if not p:
        return []
    return [
        f"**What the galaxies page's upload says** (its redshift index, {p['index']}; "
        f"{p['estimator']}; neighbours: {p['neighbours']}): "
        f"**{100 * p['frac_agree_inside']:.1f}%** of the same galaxies agree (median "
        f"|dz|/(1+z) {p['median_abs_dz_1pz_inside']:.4f}, NMAD "
        f"{p['nmad_knn_minus_template']:.4f}); "
        + (
            "every one: the goal is met."
            if p["frac_agree_inside"] == 1.0
            else "not every one: the goal is missed."
        ),
        "",
        *_by_redshift_lines(p.get("by_redshift")),
    ]


def _by_redshift_lines(rows: list[dict] | None) -> list[str]:
    if not rows:
        return []
    lines = [
        "Where the page's misses are, by template redshift (queries inside the range; "
        "neighbours: indexed training galaxies in the same bin; a near miss is within twice "
        "the tolerance):",
        "",
        "| template z | queries | neighbours | agree | median \\|dz\\|/(1+z) | misses | "
        "near misses |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        agree = "-" if not r["n"] else f"{100 * r['frac_agree']:.1f}%"
        med = "-" if not r["n"] else f"{r['median_abs_dz_1pz']:.4f}"
        lines.append(f"| {r['z_lo']:.2f}-{r['z_hi']:.2f} | {r['n']} | {r['neighbours']} | "
                     f"{agree} | {med} | {r['misses']} | {r['near_misses']} |")  # fmt: skip
    return [*lines, ""]


def _variant_lines(rows: list[dict] | None) -> list[str]:
    if not rows:
        return []
    lines = [
        "### The same agreement for other embeddings, neighbours and k (`--variants`)",
        "",
        "The same queries and template redshifts; the shipped model's aligned spectrum "
        "embedding, or its SpecFormer alone (mean-pooled tokens before the head, or the "
        f"tokens pooled in {SEGMENTS.removeprefix('seg')} wavelength segments, "
        "`specformer_score.md`, also reduced to its first "
        f"{' or '.join(map(str, PCA_DIMS))} principal components fitted on the neighbours); "
        "neighbours "
        "from the shipped catalog's training rows or from every training galaxy of the split "
        "(embedded here), never a query galaxy; two estimators: the k-NN regression above "
        "(standardised, distance-weighted, as the k-NN R^2) and the galaxies page's upload "
        "(`explore.knn_redshift`: cosine top-k, similarity-weighted mean; the page searches "
        "the catalog with k = 16).",
        "",
        "| embedding | estimator | neighbours | N | k | agree (<= 0.01) | "
        "median \\|dz\\|/(1+z) | NMAD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"aligned": "AstroCLIP spectrum (aligned)", "specformer": "SpecFormer alone",
             "specformer_seg": f"SpecFormer alone, {SEGMENTS} pooling",
             **{f"specformer_seg_pca{d}": f"SpecFormer alone, {SEGMENTS}, PCA {d}"
                for d in PCA_DIMS}}  # fmt: skip
    est = {"regression": "k-NN regression", "page": "cosine, similarity-weighted (page)"}
    the_page = ("aligned", "page", 16)
    page = [r for r in rows if r["neighbours"].startswith("shipped catalog")
            and (r["embedding"], r["estimator"], r["k"]) == the_page]  # fmt: skip
    best = max(rows, key=lambda r: np.nan_to_num(r["frac_agree_inside"], nan=-1.0))
    summary = (
        f"The page's estimator on the aligned embedding (cosine top-16, similarity-weighted, over "
        f"the shipped catalog: what the page said before its redshift index) agrees for "
        f"**{100 * page[0]['frac_agree_inside']:.1f}%**; "
        if page
        else ""
    ) + (
        f"the best choice measured here ({names[best['embedding']]}, "
        f"{est[best['estimator']]}, k = {best['k']}, {best['neighbours']} as "
        f"neighbours) for {100 * best['frac_agree_inside']:.1f}%. "
        + (
            "Every one agrees: the goal is met."
            if best["frac_agree_inside"] == 1.0
            else "None reaches the goal (every one)."
        )
    )
    lines[-2:-2] = [summary, ""]
    for r in rows:
        lines.append(
            f"| {names[r['embedding']]} | {est[r['estimator']]} | "
            f"{r['neighbours']} | {r['n_neighbours']} | {r['k']} | "
            f"{100 * r['frac_agree_inside']:.1f}% | {r['median_abs_dz_1pz_inside']:.4f} | "
            f"{r['nmad_knn_minus_template']:.4f} |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--survey", default="data/survey_40k.h5", help="survey HDF5 (repo-relative)")
    p.add_argument("--n", type=int, default=None, help="first N test rows only")
    p.add_argument(
        "--variants",
        action="store_true",
        help="also item 5's agreement with SpecFormer alone, all training "
        "galaxies as neighbours and k = 16 (embeds the training split)",
    )
    p.add_argument(
        "--render",
        action="store_true",
        help="rewrite redshift.md from the stored redshift.json (no fit)",
    )
    p.add_argument("--reference-rows", type=int, default=None,
                   help="with --variants: the first N training galaxies only")  # fmt: skip
    p.add_argument("--model", default=None,
                   help="a candidate AstroCLIP checkpoint instead of the shipped model (the "
                        "shipped catalog's galaxies are re-embedded with it from --survey); "
                        "write the report under another --name")  # fmt: skip
    p.add_argument("--name", default="redshift",
                   help="report name: benchmarks/results/NAME.{json,md}")  # fmt: skip
    args = p.parse_args(argv)
    if args.model and args.name == "redshift":
        p.error(
            "--model: a candidate's figures go under another --name, not redshift.md "
            "(the shipped model's report)"
        )
    if args.render:
        stored = json.loads((results_dir() / f"{args.name}.json").read_text())
        info = stored.pop("run")
        body = render(stored["simulated"], stored["real"], info["data"]["survey"],
                      tuple(stored["catalog_z_range"]))  # fmt: skip
        write_report(args.name, stored, body, info=info, title=TITLE)
        return 0
    path = Path(args.survey)
    path = path if path.is_absolute() else repo_root() / path
    info = survey_info(path)
    z_range = catalog_range()
    sim = simulated(path, args.n, z_range, args.variants, args.reference_rows, args.model)
    real = real_spectra(z_range)
    results = {"simulated": sim, "real": real, "catalog_z_range": list(z_range)}
    data = {"survey": args.survey, "survey_seed": info["seed"], "survey_rows_done": info["n_done"],
            "split": sim["rows"], "real": "specutils desi_test_data coadd-*.fits",
            "model": args.model or "assets/astroclip/model (shipped)"}  # fmt: skip
    run = run_info(data=data, argv=argv, note="1 thread; 2 CPU cores shared with other jobs")
    write_report(args.name, results, render(sim, real, args.survey, z_range), info=run,
                 title=TITLE)  # fmt: skip
    print(render(sim, real, args.survey, z_range))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
