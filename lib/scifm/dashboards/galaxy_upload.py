"""The galaxies page's answer to an uploaded real spectrum: two redshift estimates.

For up to three objects of a DESI coadd or SDSS spec file, the page shows at once the
k-NN redshift (the similarity-weighted mean redshift of the nearest simulated galaxies,
Parker et al. 2024), the spectrum and those neighbours. The neighbours come from the
catalog's redshift index when it has one (``astroclip/redshift_index.py``: the SpecFormer's
tokens pooled in 32 wavelength segments, 64 principal components; it agrees with the
template redshift far more often than the aligned AstroCLIP embedding, which keeps
redshift poorly), else from the aligned spectrum embedding. The
template-fit redshift (``scifm.survey.redshift``: DESI's redrock with our templates, with
its error, flag and Delta chi^2) takes about a second, and several in a process that has
not fitted yet, so it runs in a worker thread and fills in its own line when done
("template fit running…" until then): outside the catalogue's redshift range it says so
(and, when the file carries no redshift of its own, withdraws the k-NN number, which is a
mean of catalogue redshifts and always lies inside it); inside, whether the k-NN redshift
agrees within 0.01 (1 + z) (issue 14 item 5). Each answer carries the number of the
upload it belongs to, so a fit that ends after a newer upload is dropped; a fit that
fails says so in one line and leaves the k-NN answer as it is.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field

import numpy as np
import panel as pn
import torch

from scifm.astroclip.display import display_binned
from scifm.astroclip.explore import Explorer, knn_redshift
from scifm.astroclip.redshift_index import RedshiftIndex, knn_of_vectors
from scifm.dashboards.galaxy_plots import grid_html, spectrum_plot
from scifm.dashboards.style import STYLESHEET

log = logging.getLogger(__name__)
MAX_OBJECTS = 3  # objects of one file shown
RUNNING = "template fit running…"


@dataclass
class UploadedObject:
    """One shown object of an uploaded file and the panes that show it."""

    targetid: int
    knn_z: float  # the k-NN redshift, whether or not the page shows it
    file_z: float  # the file's own pipeline redshift, NaN when it has none
    verdict: pn.pane.Alert  # the k-NN line
    template: pn.pane.Alert  # the template-fit line
    plot: pn.pane.HoloViews  # the spectrum in the observed frame
    wave: np.ndarray  # (M,) display wavelengths of ``plot``
    flux: np.ndarray  # (M,) display flux of ``plot``
    title: str  # "<file> object <targetid>", the start of the plot's title


@dataclass
class UploadAnswer:
    """The page's answer to one upload (``objects`` empty when the file was refused)."""

    upload: int  # which upload of the session this answers: a fit for an older one is dropped
    filename: str
    z_range: tuple[float, float]  # the catalogue's redshift range
    panes: list  # what the page shows, in order
    objects: list[UploadedObject] = field(default_factory=list)
    flux: np.ndarray | None = None  # (n, 7781) of ``objects``, row i of objects[i], for the fit
    ivar: np.ndarray | None = None  # (n, 7781), None when the file carries none


def answer_upload(explorer: Explorer, model: torch.nn.Module | None, data: bytes,
                  filename: str, *, upload: int = 0, k: int = 16,
                  redshift_index: RedshiftIndex | None = None) -> UploadAnswer:  # fmt: skip
    """The k-NN part of the answer (template lines say ``RUNNING``): read ``data`` as the
    file ``filename``, embed its spectra with ``model`` and search ``explorer``'s catalog
    (through ``redshift_index`` when given and made with ``model``'s SpecFormer)."""
    from scifm.astroclip.realspec import (
        OUT_OF_RANGE,
        embed_real_spectra,
        read_uploaded_spectra,
        redshift_verdict,
    )

    z_all = explorer.catalog.props["redshift"]
    z_range = (float(np.nanmin(z_all)), float(np.nanmax(z_all)))
    answer = UploadAnswer(upload, filename, z_range, [])
    try:
        spectra = read_uploaded_spectra(data, filename)
    except ValueError as exc:
        answer.panes.append(pn.pane.Alert(html.escape(str(exc)), alert_type="danger"))
        return answer
    except (OSError, KeyError, TypeError, AttributeError) as exc:  # a reader tripped on the file
        log.exception("reading the upload %r failed", filename)  # a reader bug stays visible
        text = (f"Could not read {filename}: {type(exc).__name__}: {exc}; expected a DESI "
                "coadd or an SDSS spec FITS file.")  # fmt: skip
        answer.panes.append(pn.pane.Alert(html.escape(text), alert_type="danger"))
        return answer
    if model is None:
        text = "No AstroCLIP model given: uploads need the model that embedded this catalog."
        answer.panes.append(pn.pane.Alert(text, alert_type="danger"))
        return answer
    n = min(len(spectra), MAX_OBJECTS)
    emb = embed_real_spectra(model, spectra)
    zvec, z_index, grid_title = None, None, "Nearest simulated"
    if redshift_index is not None:
        try:
            zvec = redshift_index.query(model, spectra.flux[:n])
            z_index = knn_of_vectors(redshift_index, zvec, k=k)  # as scifm astroclip redshift
            grid_title = (
                "Nearest catalog spectra (SpecFormer tokens in wavelength segments; the k-NN "
                f"redshift reads all {len(redshift_index):,} indexed simulated galaxies)"
            )
        except ValueError as exc:  # an index made with other weights: say so, use the embedding
            text = f"{html.escape(str(exc))}. The k-NN redshift below uses the aligned embedding."
            answer.panes.append(pn.pane.Alert(text, alert_type="warning"))
    name = html.escape(filename)
    placed = []  # rows of the shown objects: the template fit pairs its rows with them
    for i in range(n):
        if not np.isfinite(emb[i]).all() or (zvec is not None and not np.isfinite(zvec[i]).all()):
            text = f"**{name}** object {spectra.targetid[i]}: {OUT_OF_RANGE}."
            answer.panes.append(pn.pane.Alert(text, alert_type="warning"))
            continue
        placed.append(i)
        if zvec is not None:
            res = explorer.search_redshift_index(redshift_index, zvec[i], k)
        else:
            res = explorer.search_embedding(emb[i], "spectrum", k)
        knn_z = float(z_index[i]) if z_index is not None else knn_redshift(res)
        file_z, tid = float(spectra.redshift[i]), spectra.targetid[i]
        v = redshift_verdict(knn_z, file_z, z_range)
        wave, flux = display_binned(spectra.flux[i])
        title = f"{filename} object {tid}"
        zt = f"lines at the k-NN redshift {v.z:.3f}" if v.z is not None else "no lines"
        ob = UploadedObject(
            int(tid), knn_z, file_z,
            verdict=pn.pane.Alert(f"**{name}** object {tid}: {v.text}.",
                                  alert_type="success" if v.ok else "warning"),
            template=pn.pane.Alert(f"**{name}** object {tid}: {RUNNING}", alert_type="info"),
            plot=pn.pane.HoloViews(spectrum_plot(wave, flux, v.z, title=f"{title} ({zt})"),
                                   sizing_mode="stretch_width", height=280),
            wave=wave, flux=flux, title=title,
        )  # fmt: skip
        grid = pn.pane.HTML(grid_html(explorer, res.table, grid_title),
                            stylesheets=[STYLESHEET], sizing_mode="stretch_width")  # fmt: skip
        answer.objects.append(ob)
        answer.panes += [ob.verdict, ob.template, ob.plot, grid]
    answer.flux = spectra.flux[placed]
    answer.ivar = spectra.ivar[placed] if spectra.ivar is not None else None
    return answer


def fit_templates(answer: UploadAnswer) -> list | str:
    """The template-fit redshifts (``RedshiftFit``) of the answer's objects, or one sentence
    saying why there are none. Slow (seconds): the page calls it in a worker thread."""
    from scifm.survey.redshift import fit_redshifts

    if answer.ivar is None:
        return "no template redshift: the file carries no inverse variance to fit with."
    try:
        return fit_redshifts(answer.flux, answer.ivar)
    except Exception as exc:  # whatever went wrong, one line, and the k-NN answer stays
        lines = str(exc).strip().splitlines()
        return f"the template fit failed ({lines[0] if lines else type(exc).__name__})."


def show_templates(answer: UploadAnswer, fits: list | str) -> None:
    """Fill in the answer's template lines from ``fit_templates``'s result; when a fit
    (flag ok) lies outside the catalogue's range and the file has no redshift of its own,
    the k-NN line says so too and the spectrum's lines move to the template redshift."""
    from scifm.astroclip.realspec import redshift_verdict, template_verdict

    if not isinstance(fits, str) and len(fits) != len(answer.objects):
        raise ValueError(
            f"{len(fits)} template fits for {len(answer.objects)} shown objects of "
            f"{answer.filename}: expected one fit per object (answer.flux's rows)"
        )
    name = html.escape(answer.filename)
    for i, ob in enumerate(answer.objects):
        head = f"**{name}** object {ob.targetid}: "
        if isinstance(fits, str):
            ob.template.object, ob.template.alert_type = head + html.escape(fits), "danger"
            continue
        fit = fits[i]
        v = template_verdict(fit, ob.knn_z, answer.z_range)
        ob.template.object = f"{head}{v.text}."
        ob.template.alert_type = "success" if v.ok else "warning"
        if np.isfinite(ob.file_z) or not fit.ok:
            continue
        kv = redshift_verdict(ob.knn_z, fit.z, answer.z_range, "the template redshift")
        if kv.z is None:  # beyond the catalogue: no k-NN number
            ob.verdict.object, ob.verdict.alert_type = f"{head}{kv.text}.", "warning"
            ob.plot.object = spectrum_plot(ob.wave, ob.flux, fit.z, title=f"{ob.title} (lines "
                                           f"at the template redshift {fit.z:.3f})")  # fmt: skip
