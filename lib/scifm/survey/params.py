"""Per-galaxy physical parameters of the simulated survey.

One draw per galaxy sets everything both modalities see: redshift, stellar mass,
a delayed-tau star-formation history, metallicity, Calzetti dust, nebular
ionization and velocity dispersion (for the bagpipes spectrum, Carnall et al.
2018) and a bulge + disk morphology whose size grows with mass and shrinks in
arcsec with distance (for the GalSim image). Star-forming and quiescent
populations differ in SFH, dust, bulge fraction and size-mass relation, so the
red sequence / blue cloud appear in colour space as in DESI x Legacy Surveys
(the data of AstroCLIP, Parker et al. 2024).

The draw is a pure function of ``(config, seed, object_id)`` through
``numpy_rng([seed, object_id])``: any subset of a survey can be regenerated alone.
"""

from __future__ import annotations

import functools

import numpy as np

from scifm.survey.config import SurveyConfig

# Cosmology of bagpipes (flat LCDM, H0 = 70, Om0 = 0.3): distances must match its spectra.
H0, OM0 = 70.0, 0.3

# Name -> meaning of every generating parameter (stored under /params in a survey file).
# Median (true r - estimated r) of the bagpipes models per population (see _draw_mass_redshift).
_R_OFFSET_SF, _R_OFFSET_Q = -0.98, -0.08

PARAM_DOC: dict[str, str] = {
    "object_id": "index of the galaxy in its survey (with the seed, fixes every draw)",
    "redshift": "cosmological redshift",
    "quiescent": "1 for the quiescent population, 0 for star-forming",
    "log_mass_formed": "log10 of the total mass formed (Msun), bagpipes massformed",
    "age": "time since star formation began (Gyr), delayed-tau SFH",
    "tau": "e-folding time of the delayed-tau SFH (Gyr)",
    "metallicity": "stellar metallicity Z/Zsun",
    "av": "Calzetti V-band attenuation (mag)",
    "log_u": "nebular ionization parameter log10 U",
    "veldisp": "stellar velocity dispersion (km/s)",
    "bulge_frac": "bulge-to-total flux ratio in r",
    "n_bulge": "Sersic index of the bulge (disk is exponential, n = 1)",
    "r_disk_kpc": "disk half-light radius (kpc)",
    "r_bulge_kpc": "bulge half-light radius (kpc)",
    "r_disk_arcsec": "disk half-light radius on the sky (arcsec)",
    "r_bulge_arcsec": "bulge half-light radius on the sky (arcsec)",
    "q_disk": "disk axis ratio b/a (inclination)",
    "q_bulge": "bulge axis ratio b/a",
    "pa": "position angle (radians)",
    "dx": "centre offset from the stamp centre in x (pixels)",
    "dy": "centre offset from the stamp centre in y (pixels)",
    "psf_fwhm_g": "Moffat PSF FWHM in g (arcsec)",
    "psf_fwhm_r": "Moffat PSF FWHM in r (arcsec)",
    "psf_fwhm_z": "Moffat PSF FWHM in z (arcsec)",
    "sky_sigma_g": "sky noise per pixel in g (nanomaggies)",
    "sky_sigma_r": "sky noise per pixel in r (nanomaggies)",
    "sky_sigma_z": "sky noise per pixel in z (nanomaggies)",
    "spec_exposure": "relative effective exposure time of the spectrum (noise ~ 1/sqrt)",
}
PARAM_NAMES: tuple[str, ...] = tuple(PARAM_DOC)


@functools.lru_cache(maxsize=1)
def cosmology_tables() -> dict[str, np.ndarray]:
    """Redshift tables (z, dV/dz, distance modulus, kpc per arcsec, age in Gyr)."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=H0, Om0=OM0)
    # Log-spaced below z = 0.05 so that nearby galaxies (z ~ 0.002) get accurate distances.
    z = np.concatenate([np.geomspace(5e-4, 0.05, 400, endpoint=False), np.linspace(0.05, 3, 3000)])
    return {
        "z": z,
        "dvdz": cosmo.differential_comoving_volume(z).value,
        "dist_mod": cosmo.distmod(z).value,
        "kpc_per_arcsec": cosmo.kpc_proper_per_arcmin(z).value / 60.0,
        "age": cosmo.age(z).value,
    }


def _interp(name: str, z: np.ndarray | float) -> np.ndarray:
    t = cosmology_tables()
    return np.interp(z, t["z"], t[name])


def age_of_universe(z: np.ndarray | float) -> np.ndarray:
    """Age of the universe at redshift z (Gyr)."""
    return _interp("age", z)


def _draw_mass_redshift(cfg: SurveyConfig, rng: np.random.Generator) -> tuple[float, float, bool]:
    """(z, target log M*, quiescent) of a flux-limited sample: volume x mass function x r limit."""
    t = cosmology_tables()
    sel = (t["z"] >= cfg.z_min) & (t["z"] <= cfg.z_max)
    zs, cdf = t["z"][sel], np.cumsum(t["dvdz"][sel])
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    lo, hi = cfg.log_mstar_min, cfg.log_mstar_max
    m = 256  # candidates per round
    for _ in range(200):
        z = np.interp(rng.random(m), cdf, zs)
        # Schechter mass function in log M (M_c = 10.75, alpha = -1.2) by rejection.
        logm = rng.uniform(lo, hi, m)
        x = 10 ** (logm - 10.75)
        phi = x ** (1 - 1.2) * np.exp(-x)
        keep_mf = rng.random(m) * phi.max(initial=1e-30) < phi
        p_q = 1.0 / (1.0 + np.exp(-(logm - cfg.quiescent_mass) / cfg.quiescent_width))
        q = rng.random(m) < p_q
        # r magnitude estimate for M/L_r ~ 2 with a k-correction ~ 1.2 z, calibrated on the
        # bagpipes models (star-forming galaxies are brighter at fixed mass); soft 0.3 mag edge.
        r_est = -20.5 - 2.5 * (logm - 10.5) + _interp("dist_mod", z) + 1.2 * z
        r_est += np.where(q, _R_OFFSET_Q, _R_OFFSET_SF)
        keep_flux = r_est < cfg.r_mag_limit + 0.3 * rng.standard_normal(m)
        ok = np.flatnonzero(keep_mf & keep_flux)
        if ok.size:
            i = ok[0]
            return float(z[i]), float(logm[i]), bool(q[i])
    raise ValueError(
        f"survey config: no galaxy passes the cuts in {200 * m} draws (r_mag_limit="
        f"{cfg.r_mag_limit}, log_mstar {lo}-{hi}, z {cfg.z_min}-{cfg.z_max}); loosen them"
    )


def _star_formation(rng: np.random.Generator, logm: float, q: bool, t_univ: float) -> dict:
    """Delayed-tau SFH (age / tau sets the specific SFR) and stellar metallicity."""
    age = t_univ * (rng.uniform(0.75, 0.97) if q else rng.uniform(0.5, 0.95))
    ratio = rng.uniform(6.0, 14.0) if q else rng.uniform(2.0, 5.0)
    scatter = (0.08 if q else 0.12) * rng.standard_normal()
    log_z = 0.25 * (logm - 10.5) - (0.0 if q else 0.1) + scatter  # mass-metallicity relation
    metallicity = float(10 ** np.clip(log_z, np.log10(0.2), np.log10(2.0)))
    return {"age": float(age), "tau": float(age / ratio), "metallicity": metallicity}


def _morphology(rng: np.random.Generator, logm: float, q: bool, z: float) -> dict:
    """Bulge fraction, inclination and sizes: quiescent galaxies bulgy and compact."""
    bulge_frac = rng.beta(5.0, 2.5) if q else rng.beta(1.2, 5.0)
    cos_i = rng.random()
    q_disk = float(np.sqrt(cos_i**2 * (1 - 0.15**2) + 0.15**2))  # intrinsic thickness 0.15
    if q:
        r_bulge = 10 ** (0.45 + 0.6 * (logm - 11.0) + 0.15 * rng.standard_normal())
        r_disk = r_bulge * rng.uniform(1.2, 2.0)
    else:
        r_disk = 10 ** (0.62 + 0.22 * (logm - 10.5) + 0.16 * rng.standard_normal())
        r_bulge = r_disk * rng.uniform(0.15, 0.4)
    kpc_arcsec = float(_interp("kpc_per_arcsec", z))
    return {
        "bulge_frac": float(bulge_frac),
        "r_disk_kpc": float(r_disk),
        "r_bulge_kpc": float(r_bulge),
        "r_disk_arcsec": float(r_disk / kpc_arcsec),
        "r_bulge_arcsec": float(r_bulge / kpc_arcsec),
        "q_disk": q_disk,
    }


def sample_galaxy(cfg: SurveyConfig, seed: int, object_id: int) -> dict[str, float]:
    """All generating parameters of one galaxy (a pure function of its arguments).

    The order of the random draws is part of the survey's definition: changing it
    changes every galaxy of every seed.
    """
    rng = np.random.default_rng([int(seed), int(object_id)])  # = scifm.core.numpy_rng
    z, logm, q = _draw_mass_redshift(cfg, rng)
    sfh = _star_formation(rng, logm, q, float(age_of_universe(z)))
    morph = _morphology(rng, logm, q, z)
    # Dust: star-forming galaxies are dustier with mass and when seen edge-on.
    if q:
        av = abs(0.06 * rng.standard_normal())
    else:
        edge_on = 0.7 + 0.6 * (1 - morph["q_disk"])
        av = (0.25 + 0.3 * (logm - 10.0) + 0.2 * rng.standard_normal()) * edge_on
    sigma0, slope, pivot = (2.25, 0.28, 11.0) if q else (1.95, 0.25, 10.5)
    veldisp = 10 ** (sigma0 + slope * (logm - pivot) + 0.05 * rng.standard_normal())
    seeing = np.exp(0.12 * rng.standard_normal())
    sky = cfg.pixel_sigma * 10 ** (-0.4 * cfg.depth_scatter * rng.standard_normal()) * seeing
    out = {"object_id": float(object_id), "redshift": z, "quiescent": float(q),
           "log_mass_formed": logm + 0.22,  # ~60% of the formed mass survives in stars
           **sfh, "av": float(np.clip(av, 0.0, 2.5))}  # fmt: skip
    out["log_u"] = float(rng.uniform(-3.6, -3.0) if q else rng.uniform(-3.5, -2.3))
    out["veldisp"] = float(np.clip(veldisp, 40.0, 400.0))
    out.update(morph)
    # Sersic n on a 0.5 grid: GalSim caches one profile table per index.
    out["n_bulge"] = float(
        np.round(2 * (rng.uniform(3.0, 4.0) if q else rng.uniform(2.0, 4.0))) / 2
    )
    out["q_bulge"] = float(rng.uniform(0.55, 1.0))
    out["pa"] = float(rng.uniform(0.0, np.pi))
    out["dx"], out["dy"] = float(0.3 * rng.standard_normal()), float(0.3 * rng.standard_normal())
    out.update({f"psf_fwhm_{b}": float(f * seeing) for b, f in zip("grz", cfg.psf_fwhm)})
    out.update({f"sky_sigma_{b}": float(s) for b, s in zip("grz", sky)})
    out["spec_exposure"] = float(10 ** (cfg.spec_noise_scatter * rng.standard_normal()))
    return {k: out[k] for k in PARAM_NAMES}


def sample_params(cfg: SurveyConfig, n: int, seed: int, start: int = 0) -> dict[str, np.ndarray]:
    """Parameters of galaxies ``start .. start + n - 1``: name -> (n,) float64 array."""
    if n < 0 or start < 0:
        raise ValueError(f"sample_params: n={n}, start={start}; expected non-negative integers")
    rows = [sample_galaxy(cfg, seed, i) for i in range(start, start + n)]
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in PARAM_NAMES}
