"""Galaxy explorer: an AstroCLIP catalog as an interactive map (Parker et al. 2024).

A datashaded UMAP of both modalities' embeddings; click it, search a target id or press
"random galaxy" to see a galaxy's image, spectrum (emission lines marked at its redshift)
and its top-k neighbours in one of four search modes, as an image grid and a
CSV-downloadable table; upload a real DESI/SDSS spectrum to find its nearest simulated
galaxies, its k-NN redshift and its template-fit redshift (``galaxy_upload``). The page
opens on ``DEFAULT_ROW`` with its neighbours shown. It takes a catalog (a ``Catalog``, or a
``catalog.h5``) and optionally the model that embedded it;
``from_survey`` embeds a survey file with a model first. Compute lives in ``scifm.astroclip``,
the plots in ``galaxy_plots``.
"""

from __future__ import annotations

import asyncio
import html
import os
import time
from functools import lru_cache
from io import StringIO
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import param
import torch

from scifm.astroclip.catalog import Catalog
from scifm.astroclip.config import AstroClipConfig
from scifm.astroclip.display import data_url
from scifm.astroclip.explore import MODES as SEARCH
from scifm.astroclip.explore import Explorer
from scifm.astroclip.redshift_index import RedshiftIndex
from scifm.core import load_model
from scifm.core.paths import assets_dir
from scifm.dashboards.galaxy_plots import COLOR_BY, grid_html, map_frame, spectrum_plot, umap_plot
from scifm.dashboards.galaxy_upload import (
    UploadAnswer,
    answer_upload,
    fit_templates,
    show_templates,
)
from scifm.dashboards.style import STYLESHEET

FILTERED = ("redshift", "log_mstar", "log_ssfr")
DEFAULT_ROW = 0  # the galaxy the page opens on: the catalog's first row (fixed, not random)
INTRO = """Each galaxy appears twice on the map: once for its **image** embedding and once
for its **spectrum** embedding (one UMAP of both). Contrastive training pulls the pairs
together, yet the two modalities keep apart in separate regions (the *modality gap* of
CLIP-style models; colour by modality). Click the map, search an id or pick a random
galaxy to see its nearest neighbours in the chosen mode (a click follows the modality
of the point clicked). Map axes are UMAP coordinates, which have no unit."""
SHOWN = ("targetid", "redshift", "log_mstar", "log_ssfr", "log_z", "age", "av", "mag_r",
         "r_half_arcsec", "ew_halpha", "spec_snr", "is_test")  # fmt: skip
MODES = ("image → image", "spectrum → spectrum", "image → spectrum", "spectrum → image")


def default_assets() -> Path:
    """The shipped catalog and model (``SCIFM_GALAXIES_ASSETS`` overrides)."""
    return Path(os.environ.get("SCIFM_GALAXIES_ASSETS", assets_dir() / "astroclip"))


@lru_cache(maxsize=2)
def load_explorer(path: str) -> Explorer:
    """An Explorer over the catalog file at ``path``, once per process (sessions share it)."""
    return Explorer(Catalog.load(path))


@lru_cache(maxsize=2)
def load_redshift_index(path: str) -> RedshiftIndex:
    """The catalog's redshift index (``astroclip/redshift_index.py``), once per process."""
    return RedshiftIndex.load(path)


@lru_cache(maxsize=2)
def load_astroclip(path: str) -> torch.nn.Module:
    """The AstroCLIP model of a checkpoint (or run) folder, once per process."""
    return load_model(path, "cpu", expect_config=AstroClipConfig)[1]


class GalaxyExplorer(pn.viewable.Viewer):
    """Map, selected galaxy, neighbours and spectrum upload over one catalog."""

    color_by = param.Selector(objects=list(COLOR_BY), default="redshift")
    uploads = param.Integer(default=0, doc="spectrum uploads answered in this session")
    max_upload_mb = param.Number(default=10, bounds=(0.01, None), constant=True,
                                 doc="largest upload, refused in the browser (the app passes "
                                     "its server's limit)")  # fmt: skip
    mode = param.Selector(default="image → image", objects=list(MODES))
    k = param.Integer(default=16, bounds=(4, 64), doc="neighbours shown")
    row = param.Integer(default=None, allow_None=True, doc="selected catalog row")
    neighbour_rows = param.List(default=[], doc="rows of the shown neighbours")

    def __init__(
        self,
        catalog: Catalog | Explorer | str | Path,
        *,
        model: torch.nn.Module | str | Path | None = None,
        redshift_index: RedshiftIndex | str | Path | None = None,
        **params,
    ) -> None:
        """``catalog``: a Catalog (``make_catalog``), an Explorer over one, or a catalog file;
        ``model``: the AstroCLIP model (or its checkpoint folder) for spectrum uploads;
        ``redshift_index``: the catalog's ``RedshiftIndex`` (or its file) that the uploads'
        k-NN redshift searches (without one: the aligned spectrum embedding)."""
        super().__init__(**params)
        self.model = model
        self.redshift_index: RedshiftIndex | None = None
        self.message = pn.pane.Alert("", alert_type="info", visible=False)
        self.image_pane = pn.pane.HTML("", width=200, height=200)
        self.props_pane = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.spectrum_pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", height=280)
        self.galaxy = pn.Column(pn.Row(self.image_pane, self.props_pane), self.spectrum_pane,
                                sizing_mode="stretch_width")  # fmt: skip
        self.grid = pn.pane.HTML("", sizing_mode="stretch_width", min_height=60,
                                 stylesheets=[STYLESHEET])  # fmt: skip
        self.timing = pn.pane.Markdown("")
        self.id_input = pn.widgets.TextInput(label="Target id", placeholder="e.g. 396000...")
        self.search_button = pn.widgets.Button(label="Show", color="primary")
        self.random_button = pn.widgets.Button(label="Random galaxy", color="success")
        # FileDropper, not FileInput: it refuses a file over max_file_size in the browser
        # (a FileInput sends it whole and the server drops the connection), sends chunks, and
        # fires for every upload, identical bytes included
        self.upload = pn.widgets.FileDropper(
            max_file_size=f"{self.max_upload_mb:g}MB", chunk_size=2**21, layout="compact",
            sizing_mode="stretch_width",
        )  # fmt: skip
        self.upload_out = pn.Column(sizing_mode="stretch_width")
        self.map_pane = pn.pane.HoloViews(None, sizing_mode="stretch_width")
        self._rng = np.random.default_rng()
        self.last_seconds: float | None = None
        try:
            self.explorer = self._explorer(catalog)
        except (FileNotFoundError, OSError, KeyError) as exc:
            self.explorer = None
            self._say(f"The galaxy catalog could not be loaded: {exc}", "danger")
            return
        props = self.explorer.catalog.props
        self.filters = {
            p: pn.widgets.RangeSlider(
                label=p, start=float(np.nanmin(props[p])), end=float(np.nanmax(props[p])),
                value=(float(np.nanmin(props[p])), float(np.nanmax(props[p]))), step=0.01)
            for p in FILTERED if p in props
        }  # fmt: skip
        self.table = pn.widgets.Tabulator(
            self.explorer.describe(np.zeros(0, np.int64)), height=300, disabled=True,
            sizing_mode="stretch_width", show_index=False, pagination=None,
        )  # fmt: skip
        self.download = pn.widgets.FileDownload(
            callback=self._csv, filename="neighbours.csv", label="Download neighbours (CSV)",
            color="light",
        )  # fmt: skip
        # Show sends the box's text with the click, in one message: callbacks run in a pool
        # of threads, so a click handled apart from the box's last keystroke raced it (the
        # page said "target id '' is not an integer"); Enter's own event carries the text
        self._shown_text = pn.widgets.TextInput(visible=False)
        self.search_button.js_on_click(
            args={"box": self.id_input, "out": self._shown_text},
            code="out.value = box.value_input + '\\u0001' + Date.now()",
        )
        self._shown_text.param.watch(lambda e: self.select_id(e.new.split("\x01")[0]), "value")
        self.id_input.param.watch(lambda e: self.select_id(self._typed_id()), "enter_pressed")
        self.random_button.on_click(lambda e: self.select_random())
        self.upload.param.watch(self._on_upload, "value")
        for w in self.filters.values():
            w.param.watch(lambda e: self._refresh(), "value_throttled")
        self.select_row(min(DEFAULT_ROW, len(self.explorer.catalog) - 1))
        if redshift_index is not None:  # after select_row, which clears the message line
            self._use_redshift_index(redshift_index)

    def _use_redshift_index(self, index: RedshiftIndex | str | Path) -> None:
        """Keep ``index`` for uploads if it indexes this catalog's galaxies; else say why not
        (uploads then use the aligned embedding)."""
        try:
            if not isinstance(index, RedshiftIndex):
                index = load_redshift_index(str(index))
            self.explorer.indexed_in_catalog(index)  # it indexes this catalog's galaxies
        except (FileNotFoundError, OSError, ValueError) as exc:
            self._say(f"The redshift index is not used ({exc}); uploads' k-NN redshift comes "
                      "from the aligned spectrum embedding.", "warning")  # fmt: skip
            return
        self.redshift_index = index

    @staticmethod
    def _explorer(catalog: Catalog | Explorer | str | Path) -> Explorer:
        if isinstance(catalog, Explorer):
            return catalog
        if isinstance(catalog, Catalog):
            return Explorer(catalog)
        return load_explorer(str(catalog))

    # ----- constructors -----
    @classmethod
    def from_assets(cls, root: str | Path | None = None, **params) -> GalaxyExplorer:
        """The shipped catalog (``assets/astroclip/catalog.h5``), model and redshift index."""
        root = Path(root if root is not None else default_assets())
        index = root / "redshift_index.h5"
        return cls(root / "catalog.h5", model=root / "model",
                   redshift_index=index if index.exists() else None, **params)  # fmt: skip

    @classmethod
    def from_survey(cls, survey: str | Path, model: torch.nn.Module | str | Path, *,
                    n: int | None = None, seed: int = 0, **params) -> GalaxyExplorer:  # fmt: skip
        """Embed ``survey`` (a ``scifm survey generate`` file, or ``toy:N``) with an AstroCLIP
        model (or its checkpoint folder), project it with one UMAP and explore it."""
        from scifm.astroclip.pipeline import default_split, make_catalog, prepare, survey_fetcher

        net = model if isinstance(model, torch.nn.Module) else load_astroclip(str(model))
        fetch, n_all = survey_fetcher(survey)
        data = prepare(fetch, min(n or n_all, n_all), net.config, progress=False)
        _, test_idx = default_split(len(data), seed)
        catalog = make_catalog(net, data, test_idx=test_idx, seed=seed,
                               device=next(net.parameters()).device)  # fmt: skip
        return cls(catalog, model=net, **params)

    # ----- actions (also what the tests drive) -----
    def _say(self, text: str, kind: str = "info") -> None:
        self.message.object, self.message.alert_type = text, kind
        self.message.visible = bool(text)

    def select_row(self, row: int, modality: str | None = None) -> None:
        """Show galaxy ``row``; ``modality`` (clicked on the map) becomes the query modality."""
        self._say("")
        mode = self._mode_from(modality) if modality else self.mode
        if mode != self.mode:
            self.param.update(row=int(row), mode=mode)  # the mode's watcher refreshes once
        else:
            self.row = int(row)
            self._refresh()

    def _mode_from(self, modality: str) -> str:
        """The search mode whose query is ``modality``: same-modality search stays within a
        modality, cross-modal stays cross-modal (the neighbours land in the clicked lobe for
        the same-modality modes)."""
        query, target = SEARCH[self.mode]
        if query == modality:
            return self.mode
        other = "spectrum" if modality == "image" else "image"
        return f"{modality} → {modality if query == target else other}"

    def select_id(self, text: str) -> None:
        try:
            self.select_row(self.explorer.row_of(text))
        except ValueError as exc:
            self._say(str(exc), "warning")

    def _typed_id(self) -> str:
        return self.id_input.value_input or self.id_input.value

    def select_random(self) -> None:
        self.select_row(self.explorer.random_row(self._rng))

    def select_xy(self, x: float | None, y: float | None) -> None:
        """Select the UMAP point nearest (x, y), in its own modality's lobe."""
        if x is None or y is None:
            return
        self.select_row(*self.nearest(x, y))

    def nearest(self, x: float, y: float) -> tuple[int, str]:
        """(row, modality) of the UMAP point nearest (x, y) over both modalities."""
        um = self.explorer.catalog.umap
        best = []
        for m in ("image", "spectrum"):
            r = self.explorer.nearest_row(x, y, m)
            best.append((float(np.hypot(*(um[m][r] - (x, y)))), r, m))
        _, row, modality = min(best)
        return row, modality

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Property filters that actually restrict (full-range sliders are ignored)."""
        out = {}
        for p, w in self.filters.items():
            if w.value[0] > w.start + 1e-9 or w.value[1] < w.end - 1e-9:
                out[p] = tuple(w.value)
        return out

    @param.depends("mode", "k", watch=True)
    def _refresh(self) -> None:
        if self.explorer is None or self.row is None:
            return
        t0 = time.perf_counter()
        ex = self.explorer
        res = ex.neighbours(self.row, self.mode, self.k, self.ranges())
        self.table.value = res.table.astype({"targetid": str})  # 17 digits: beyond JS ints
        self.grid.object = grid_html(ex, res.table, f"Top {len(res.table)} · {self.mode}")
        self._show_galaxy(self.row)
        self.neighbour_rows = [int(r) for r in res.table["row"]]
        self.last_seconds = time.perf_counter() - t0
        self.timing.object = (
            f"search {1e3 * res.seconds:.1f} ms · server total "
            f"{1e3 * self.last_seconds:.1f} ms · {len(ex.catalog):,} galaxies"
        )
        if len(res.table) == 0:
            self._say("No galaxy passes the property filters; widen them.", "warning")

    def _csv(self) -> StringIO:
        return StringIO(self.table.value.to_csv(index=False))

    # ----- views -----
    def _show_galaxy(self, row: int) -> None:
        """Image, properties and spectrum (lines marked at its redshift) of one galaxy."""
        ex = self.explorer
        d = ex.describe(np.array([row])).to_dict("records")[0]
        z = float(d["redshift"])
        wave, flux = ex.spectrum(row)
        self.image_pane.object = (f"<img src='{data_url(ex.thumbnail(row))}' width=192 "
                                  f"height=192 alt='galaxy {d['targetid']}'>")  # fmt: skip
        self.props_pane.object = "  \n".join(f"**{k}**: {d[k]}" for k in SHOWN if k in d)
        self.spectrum_pane.object = spectrum_plot(
            wave, flux, z, title=f"galaxy {d['targetid']}, z = {z:.3f} (observed frame)"
        )

    def map_view(self) -> pn.pane.HoloViews:
        """The UMAP pane; rebuilt when ``color_by`` changes (a colour bar or a legend)."""
        self._draw_map()
        self.param.watch(lambda e: self._draw_map(), "color_by")
        return self.map_pane

    def _draw_map(self) -> None:
        shaded, plot = umap_plot(map_frame(self.explorer), self.color_by)
        tap = hv.streams.Tap(source=shaded)
        tap.add_subscriber(lambda x, y: self.select_xy(x, y))
        marks = hv.DynamicMap(self._marks, streams=[hv.streams.Params(self, ["neighbour_rows"])])
        self.map_pane.object = plot * marks

    def _marks(self, neighbour_rows: list) -> hv.Points:
        ex = self.explorer
        rows = ([self.row] if self.row is not None else []) + list(neighbour_rows)
        df = ex.describe(np.array(rows, np.int64)).astype({"targetid": str})
        q_mod, t_mod = SEARCH[self.mode]
        xy = [ex.catalog.umap[q_mod if i == 0 else t_mod][r] for i, r in enumerate(rows)]
        df["x"], df["y"] = np.array(xy).reshape(-1, 2).T
        df["kind"] = ["selected"] + ["neighbour"] * (len(rows) - 1) if rows else []
        df["modality"] = [q_mod] + [t_mod] * (len(rows) - 1) if rows else []
        vd = ["targetid", "kind", "modality", "redshift"]
        vd += [c for c in ("log_mstar", "log_ssfr") if c in df]
        return hv.Points(df, ["x", "y"], vd).opts(
            color="kind", cmap={"selected": "red", "neighbour": "white"}, size=8,
            line_color="black", tools=["hover"], show_legend=False,
            hover_tooltips=[("target id", "targetid"), *vd[1:]],
        )  # fmt: skip

    # ----- real spectrum upload (galaxy_upload.py) -----
    async def _on_upload(self, event) -> None:
        """Answer with the k-NN redshift, then fill in the template fit: both in worker
        threads, so the server keeps answering meanwhile."""
        if not event.new:
            return
        name, data = list(event.new.items())[-1]
        with param.parameterized.discard_events(self.upload):
            self.upload.value, self.upload.mime_type = {}, {}  # the next upload is new again
        data = data.encode() if isinstance(data, str) else data  # FileDropper decodes text/*
        self.uploads += 1
        answer = await asyncio.to_thread(self.answer_upload, data, name, self.uploads)
        if answer.upload != self.uploads:
            return  # a newer upload arrived meanwhile: its answer is the one shown
        self.upload_out.objects = [
            pn.pane.Markdown(f"### Uploaded spectrum {answer.upload}: {html.escape(name)}"),
            *answer.panes,
        ]
        await self.fill_templates(answer)

    def _model(self) -> torch.nn.Module | None:
        if self.model is None or isinstance(self.model, torch.nn.Module):
            return self.model
        return load_astroclip(str(self.model))

    def answer_upload(self, data: bytes, filename: str = "upload.fits",
                      upload: int | None = None) -> UploadAnswer:  # fmt: skip
        """The k-NN answer to an uploaded spectrum file (its template lines say "template
        fit running…"), tagged with ``upload`` (default: the session's latest)."""
        upload = self.uploads if upload is None else upload
        return answer_upload(self.explorer, self._model(), data, filename, upload=upload,
                             k=self.k, redshift_index=self.redshift_index)  # fmt: skip

    def handle_upload(self, data: bytes, filename: str = "upload.fits") -> list:
        """The panes of ``answer_upload``: for up to three objects, a verdict on the k-NN
        redshift, the template-fit line, the spectrum in the observed frame (lines at the k-NN
        redshift) and the nearest simulated galaxies."""
        return self.answer_upload(data, filename).panes

    async def fill_templates(self, answer: UploadAnswer) -> bool:
        """Fit the answer's objects with templates in a worker thread and show the result,
        unless a newer upload replaced the answer (False)."""
        if not answer.objects or answer.upload != self.uploads:
            return False
        fits = await asyncio.to_thread(fit_templates, answer)
        return self.show_templates(answer, fits)

    def show_templates(self, answer: UploadAnswer, fits: list | str) -> bool:
        """Fill in the template lines of ``answer``; a result for an older upload than the
        session's latest is dropped (False)."""
        if answer.upload != self.uploads:
            return False
        show_templates(answer, fits)
        return True

    def main(self) -> pn.viewable.Viewable:
        if self.explorer is None:
            return pn.Column(self.message)
        controls = pn.Row(
            pn.widgets.Select.from_param(self.param.color_by, label="Colour by", width=260),
            pn.widgets.Select.from_param(self.param.mode, label="Search mode", width=200),
            pn.widgets.IntSlider.from_param(self.param.k, label="Neighbours", width=200),
        )  # fmt: skip
        return pn.Column(
            pn.pane.Markdown(INTRO, sizing_mode="stretch_width"), self.message, self.upload_out,
            controls, self.map_view(), self.galaxy, self.timing, self.grid, self.download,
            self.table, sizing_mode="stretch_width",
        )  # fmt: skip

    def sidebar(self) -> list:
        if self.explorer is None:
            return []
        return [
            pn.pane.Markdown("### Find a galaxy"), self.id_input, self.search_button,
            self._shown_text,
            self.random_button, pn.pane.Markdown("### Filter neighbours"),
            *self.filters.values(),
            pn.pane.Markdown("### Real spectrum\nA DESI coadd or SDSS spec FITS file, at most "
                             f"{self.max_upload_mb:g} MB; the result opens above the map."),
            self.upload,
        ]  # fmt: skip

    def __panel__(self) -> pn.viewable.Viewable:
        controls = self.sidebar()
        if not controls:
            return self.main()
        return pn.Row(pn.Column(*controls, width=280), self.main(), sizing_mode="stretch_width")
