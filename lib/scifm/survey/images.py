"""Legacy-Surveys-like g, r, z cutouts drawn with GalSim (Rowe et al. 2015).

Each galaxy is a Sersic bulge plus an exponential disk, sheared to their axis
ratios and the position angle, convolved with a per-band Moffat PSF and drawn
on a 152 x 152 grid at 0.262"/pixel in nanomaggies, so the image sums to the
band flux synthesized from the same galaxy's spectrum. The bulge is redder than
the disk (its flux fraction rises from g to z) while the band totals stay
fixed. Noise is the source's own photon noise (Poisson on its photo-electrons at
the coadd's gain x exposure, ``SurveyConfig.electrons_per_nmgy``) plus Gaussian
sky noise at Legacy-Surveys-like depth (the sky is subtracted, its noise stays).
A nearby galaxy larger than the cutout simply overflows it, as in the real survey.
``draw_noiseless`` shares the galaxy's transforms between the bands (GalSim's
numbers, half the time); ``draw_noiseless_galsim`` is the band-by-band reference.
"""

from __future__ import annotations

import numpy as np

from scifm.survey.config import BANDS, SurveyConfig

# Bulge colour relative to the disk (mag, per band; positive = fainter): g, r, z.
BULGE_COLOUR = (0.25, 0.0, -0.15)
MOFFAT_BETA = 3.5  # DECam PSF wings are well described by beta ~ 3-4


def bulge_fractions(bulge_frac_r: float) -> np.ndarray:
    """Per-band bulge flux fraction (g, r, z) given the r-band bulge-to-total ratio."""
    w = 10 ** (-0.4 * np.asarray(BULGE_COLOUR))
    return bulge_frac_r * w / (bulge_frac_r * w + (1.0 - bulge_frac_r))


def draw_noiseless(cfg: SurveyConfig, p: dict[str, float], fluxes: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 noiseless image in nanomaggies for band ``fluxes`` (g, r, z).

    GalSim's FFT drawing with the work shared between the bands: the bulge, disk and pixel
    transforms are drawn once, on the grid GalSim picks for the bands, and combined per band
    with that band's PSF and bulge share before the inverse FFT. The same numbers as
    ``draw_noiseless_galsim`` to float32 round-off (``tests/survey/test_speed.py``) in about
    half its time; a galaxy whose bands need different grids goes through that reference.
    """
    import galsim

    if np.shape(fluxes) != (len(BANDS),):
        raise ValueError(f"draw_noiseless: fluxes shape {np.shape(fluxes)}; expected (3,) g, r, z")
    bulge, disk, psfs, pixel = _profiles_in_pixels(cfg, p)
    size = cfg.image_size
    lo = -(size // 2)  # the stamp's pixels run lo .. lo + size - 1 around its centre
    stamp = galsim.ImageF(galsim.BoundsI(lo, lo + size - 1, lo, lo + size - 1), scale=1.0)
    # The grid GalSim would use for the broadest and the sharpest PSF (grid size grows with
    # the PSF's width, k range with its sharpness): the bands share it if these two do.
    fwhm = [float(p[f"psf_fwhm_{b}"]) for b in BANDS]
    grids = [galsim.Convolve([galsim.Add([bulge, disk]), psfs[i], pixel]).drawFFT_makeKImage(stamp)
             for i in (int(np.argmax(fwhm)), int(np.argmin(fwhm)))]  # fmt: skip
    kimage, n = grids[0]
    same = grids[1][1] == n and grids[1][0].bounds == kimage.bounds
    if not same or kimage.array.shape[0] != n + 1:  # bands on different grids, or k wrapped
        return draw_noiseless_galsim(cfg, p, fluxes)

    def transform(prof) -> np.ndarray:  # (n + 1, n/2 + 1) complex64: ky -n/2 .. n/2, kx 0 .. n/2
        return prof.drawKImage(image=kimage.copy(), recenter=False).array

    total = np.clip(np.asarray(fluxes, np.float64), 0.0, None)
    fb = bulge_fractions(float(p["bulge_frac"]))
    kpixel = transform(pixel)
    # The galaxy shifted by -lo pixels puts the stamp on rows and columns 0 .. size - 1.
    kbulge = transform(bulge.shift(-lo, -lo)) * kpixel
    kdisk = transform(disk.shift(-lo, -lo)) * kpixel
    out = np.empty((size, size, len(BANDS)), np.float32)
    for k, psf in enumerate(psfs):  # band by band: a big galaxy's grid can reach 16k x 8k
        kimg = np.float32(fb[k] * total[k]) * kbulge
        kimg += np.float32((1 - fb[k]) * total[k]) * kdisk
        kimg *= transform(psf)
        out[..., k] = _stamp_from_kimage(kimg, n, size)
    return out


def _stamp_from_kimage(kimg: np.ndarray, n: int, size: int) -> np.ndarray:
    """Rows and columns 0 .. size - 1 of the real image of a (n + 1, n/2 + 1) k-image.

    ky runs -n/2 .. n/2 (the +n/2 row is the same frequency as -n/2 and is added to it),
    kx 0 .. n/2; the normalisation is GalSim's (the image sums to the k = 0 value).
    """
    folded = np.concatenate([kimg[n // 2 : n], kimg[: n // 2]])  # ky in FFT order
    folded[n // 2] += kimg[n]
    rows = np.fft.ifft(folded, axis=0)[:size]  # (size, n/2 + 1): only the stamp's rows
    return np.fft.irfft(rows, n=n, axis=1)[:, :size]


def _profiles_in_pixels(cfg: SurveyConfig, p: dict[str, float]) -> tuple:
    """Unit-flux bulge and disk (sheared, centred as ``drawImage`` centres them), the three
    band PSFs and the pixel, all in pixel units."""
    import galsim

    gsp = galsim.GSParams(maximum_fft_size=16384)
    s = cfg.pixel_scale
    beta = float(p["pa"]) * galsim.radians
    # drawImage puts the profile at the stamp's true centre (half a pixel below its central
    # pixel for an even size) plus the offset.
    half = 0.5 if cfg.image_size % 2 == 0 else 0.0
    shift = galsim.PositionD(float(p["dx"]) - half, float(p["dy"]) - half)
    bulge = galsim.Sersic(n=float(p["n_bulge"]), half_light_radius=float(p["r_bulge_arcsec"]) / s,
                          gsparams=gsp).shear(q=float(p["q_bulge"]), beta=beta)  # fmt: skip
    disk = galsim.Exponential(half_light_radius=float(p["r_disk_arcsec"]) / s, gsparams=gsp)
    disk = disk.shear(q=float(p["q_disk"]), beta=beta)
    psfs = [galsim.Moffat(beta=MOFFAT_BETA, fwhm=float(p[f"psf_fwhm_{b}"]) / s, gsparams=gsp)
            for b in BANDS]  # fmt: skip
    return bulge.shift(shift), disk.shift(shift), psfs, galsim.Pixel(1.0, gsparams=gsp)


def draw_noiseless_galsim(cfg: SurveyConfig, p: dict[str, float], fluxes: np.ndarray) -> np.ndarray:
    """``draw_noiseless`` band by band with GalSim's ``drawImage`` (the reference)."""
    import galsim

    gsp = galsim.GSParams(maximum_fft_size=16384)
    beta = float(p["pa"]) * galsim.radians
    bulge = galsim.Sersic(n=float(p["n_bulge"]), half_light_radius=float(p["r_bulge_arcsec"]),
                          gsparams=gsp).shear(q=float(p["q_bulge"]), beta=beta)  # fmt: skip
    disk = galsim.Exponential(half_light_radius=float(p["r_disk_arcsec"]), gsparams=gsp)
    disk = disk.shear(q=float(p["q_disk"]), beta=beta)
    offset = galsim.PositionD(float(p["dx"]), float(p["dy"]))
    out = np.zeros((cfg.image_size, cfg.image_size, len(BANDS)), dtype=np.float32)
    for k, (band, fb) in enumerate(zip(BANDS, bulge_fractions(float(p["bulge_frac"])))):
        total = max(float(fluxes[k]), 0.0)
        gal = galsim.Add([bulge.withFlux(fb * total), disk.withFlux((1 - fb) * total)])
        psf = galsim.Moffat(beta=MOFFAT_BETA, fwhm=float(p[f"psf_fwhm_{band}"]), gsparams=gsp)
        img = galsim.Convolve(gal, psf, gsparams=gsp).drawImage(
            nx=cfg.image_size, ny=cfg.image_size, scale=cfg.pixel_scale, offset=offset
        )
        out[..., k] = img.array
    return out


def add_image_noise(
    image: np.ndarray, sky_sigma: np.ndarray, gain: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Noisy (H, W, 3) float32 image: source photon noise plus sky noise.

    ``image`` is the noiseless source in nanomaggies, ``sky_sigma`` the per-band sky noise
    (nanomaggies) and ``gain`` the photo-electrons per nanomaggy; the source's electrons
    are Poisson, so a pixel's variance is sky_sigma**2 + image / gain.
    """
    image = np.asarray(image, np.float32)
    gain = np.asarray(gain, np.float64)
    expected = np.maximum(image, 0.0).astype(np.float64) * gain  # FFT ringing can dip < 0
    counts = rng.poisson(expected)
    sky = rng.standard_normal(image.shape, dtype=np.float32)  # float32, as the image is
    sky *= np.asarray(sky_sigma, np.float32)
    # image + (counts - expected) / gain: the positive part of the image becomes its counts.
    sky += np.minimum(image, 0.0)
    sky += counts / gain
    return sky
