"""bagpipes' model galaxy with its slow numerical steps vectorised, to the same numbers.

bagpipes (Carnall et al. 2018) spends most of a model update in Python loops that
numpy does at once: resampling onto the observed wavelengths with spectres (a loop
over the 7781 output pixels, ~35 ms), and summing the stellar and nebular grids
over the star-formation history with ``np.sum`` of strided temporaries (~4 ms).
Here the resampling is ``resample_flux`` (spectres' arithmetic, vectorised) and the
sums are matrix-vector products; everything else is bagpipes' own code, and the
model's numbers equal bagpipes' to round-off (``tests/survey/test_speed.py``
compares them with ``bagpipes.model_galaxy``). Written against bagpipes 1.3.
"""

from __future__ import annotations

import functools
import types

import numpy as np


def fast_model_galaxy(model_components: dict, *, spec_wavs: np.ndarray):
    """A ``bagpipes.model_galaxy`` for ``model_components`` with the fast steps in place."""
    model = _fast_class()(model_components, spec_wavs=spec_wavs)
    model.stellar.spectrum = types.MethodType(_stellar_spectrum, model.stellar)
    if model.nebular:
        model.nebular._interpolate_grid = types.MethodType(_nebular_grid_sum, model.nebular)
    model.update(model_components)  # the first galaxy too through the fast steps
    return model


def resample_flux(new_wavs: np.ndarray, old_wavs: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Flux-conserving resampling of ``flux`` (on ``old_wavs``) onto ``new_wavs``, 0 outside.

    The arithmetic of ``spectres.spectres(new_wavs, old_wavs, flux, fill=0)`` (Carnall 2017),
    which bagpipes uses, without its Python loop over the 7781 output pixels (~35 ms per
    galaxy): each new bin is the width-weighted mean of the old bins it overlaps, the first
    and last of them counted by the share they overlap. Equal to spectres to round-off
    (``tests/survey/test_speed.py``). Both grids must increase.
    """
    old_edges, old_widths = _bin_edges(np.asarray(old_wavs, np.float64))
    new_edges, _ = _bin_edges(np.asarray(new_wavs, np.float64))
    flux = np.asarray(flux, np.float64)
    lo, hi = new_edges[:-1], new_edges[1:]  # (n_new,)
    inside = (lo >= old_edges[0]) & (hi <= old_edges[-1])
    lo, hi = np.where(inside, lo, old_edges[0]), np.where(inside, hi, old_edges[0])
    start = np.searchsorted(old_edges[1:], lo, side="right")  # first old bin overlapped
    stop = np.maximum(np.searchsorted(old_edges[1:], hi, side="left"), start)  # last one
    start_factor = (old_edges[start + 1] - lo) / (old_edges[start + 1] - old_edges[start])
    end_factor = (hi - old_edges[stop]) / (old_edges[stop + 1] - old_edges[stop])
    weighted, total = np.zeros(lo.shape), np.zeros(lo.shape)
    for d in range(int((stop - start).max(initial=0)) + 1):  # old bins overlapped, in order
        i = np.minimum(start + d, stop)
        w = old_widths[i] * np.where(d == 0, start_factor, 1.0)
        w = np.where(i == stop, old_widths[i] * end_factor, w)
        w = np.where(start + d <= stop, w, 0.0)
        weighted += w * flux[i]
        total += w
    single = stop == start  # the new bin lies inside one old bin: its value, unweighted
    out = np.where(single, flux[start], weighted / np.where(single, 1.0, total))
    return np.where(inside, out, 0.0)


def _bin_edges(wavs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges (n + 1,) and widths (n,) around the centres ``wavs``, as spectres makes them."""
    edges = np.empty(wavs.shape[0] + 1)
    edges[0] = wavs[0] - (wavs[1] - wavs[0]) / 2
    edges[-1] = wavs[-1] + (wavs[-1] - wavs[-2]) / 2
    edges[1:-1] = (wavs[1:] + wavs[:-1]) / 2
    widths = np.empty(wavs.shape[0])
    widths[:-1] = edges[1:-1] - edges[:-2]
    widths[-1] = wavs[-1] - wavs[-2]
    return edges, widths


@functools.cache
def _fast_class() -> type:
    """``model_galaxy`` with the observed-spectrum step done by ``resample_flux``, no UVJ.

    The step is bagpipes' own ``_calculate_spectrum`` (bagpipes 1.3): a Gaussian velocity
    broadening on the model's R = 1000 grid, then flux-conserving resampling onto the
    requested wavelengths, with spectres' loop replaced by the vectorised equivalent. The
    rest-frame UVJ magnitudes, which the survey does not use, are not computed.
    """
    import bagpipes
    from bagpipes import config as bagpipes_config

    class FastSpectrumModel(bagpipes.model_galaxy):
        def _calculate_spectrum(self, model_comp: dict) -> None:
            if "R_curve" in model_comp or self.spec_units != "ergscma":
                raise ValueError(
                    "FastSpectrumModel: R_curve and spec_units other than 'ergscma' are not "
                    "supported; use bagpipes.model_galaxy"
                )
            zplusone = model_comp["redshift"] + 1.0
            spectrum, redshifted_wavs = self.spectrum_full, zplusone * self.wavelengths
            if "veldisp" in model_comp:
                vres = 3 * 10**5 / bagpipes_config.R_spec / 2.0
                sigma_pix = model_comp["veldisp"] / vres
                k_size = 4 * int(sigma_pix + 1)
                x_kernel_pix = np.arange(-k_size, k_size + 1)
                kernel = np.exp(-(x_kernel_pix**2) / (2 * sigma_pix**2))
                kernel /= np.trapezoid(kernel)
                spectrum = np.convolve(self.spectrum_full, kernel, mode="valid")
                redshifted_wavs = zplusone * self.wavelengths[k_size:-k_size]
            fluxes = resample_flux(self.spec_wavs, redshifted_wavs, spectrum)
            self.spectrum = np.c_[self.spec_wavs, fluxes]

        def _calculate_uvj_mags(self) -> None:
            self.uvj = np.full(3, np.nan)

    return FastSpectrumModel


def _stellar_spectrum(self, sfh_ceh: np.ndarray, t_bc: float = 0.0):
    """``bagpipes.models.stellar_model.stellar.spectrum`` with its sums as matrix products.

    The in-place reweighting of ``sfh_ceh`` (and its undoing) is kept as bagpipes does it:
    the nebular model reads the same array afterwards.
    """
    from bagpipes import config

    t_bc *= 10**9
    spectrum_young = np.zeros_like(self.wavelengths)
    spectrum = np.zeros_like(self.wavelengths)
    index = config.age_bins[config.age_bins < t_bc].shape[0]
    old_weight = (config.age_bins[index] - t_bc) / config.age_widths[index - 1]
    if index == 0:
        index += 1
    for i in range(config.metallicities.shape[0]):
        if sfh_ceh[i, :index].sum() > 0.0:
            sfh_ceh[:, index - 1] *= 1.0 - old_weight
            spectrum_young += self.grid[:, i, :index] @ sfh_ceh[i, :index]
            sfh_ceh[:, index - 1] /= 1.0 - old_weight
        if sfh_ceh[i, index - 1 :].sum() > 0.0:
            sfh_ceh[:, index - 1] *= old_weight
            spectrum += self.grid[:, i, index - 1 :] @ sfh_ceh[i, index - 1 :]
            sfh_ceh[:, index - 1] /= old_weight
    if t_bc == 0.0:
        return spectrum
    return spectrum_young, spectrum


def _nebular_grid_sum(self, grid: np.ndarray, sfh_ceh: np.ndarray, t_bc: float, logU: float):
    """``bagpipes.models.nebular_model.nebular._interpolate_grid`` with matrix products."""
    from bagpipes import config

    t_bc *= 10**9
    if logU == config.logU[0]:
        logU += 10**-10
    spectrum_low_logU = np.zeros_like(grid[:, 0, 0, 0])
    spectrum_high_logU = np.zeros_like(grid[:, 0, 0, 0])
    logU_ind = config.logU[config.logU < logU].shape[0]
    logU_weight = (config.logU[logU_ind] - logU) / (
        config.logU[logU_ind] - config.logU[logU_ind - 1]
    )
    index = config.age_bins[config.age_bins < t_bc].shape[0]
    weight = 1 - (config.age_bins[index] - t_bc) / config.age_widths[index - 1]
    for i in range(config.metallicities.shape[0]):
        if sfh_ceh[i, :index].sum() > 0.0:
            sfh_ceh[:, index - 1] *= weight
            spectrum_low_logU += grid[:, i, logU_ind - 1, :index] @ sfh_ceh[i, :index]
            spectrum_high_logU += grid[:, i, logU_ind, :index] @ sfh_ceh[i, :index]
            sfh_ceh[:, index - 1] /= weight
    return spectrum_high_logU * (1 - logU_weight) + spectrum_low_logU * logU_weight
