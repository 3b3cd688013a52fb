"""The galaxy explorer's plots, built from data alone (no widgets, no session state).

- ``map_frame``: both modalities' UMAP points with the columns the map colours by and its
  tooltips show (built once per catalog, shared by every session);
- ``umap_plot``: the datashaded map; a numeric colouring gets a colour bar titled with the
  property and its unit, the categorical "modality" colouring a legend; the tooltip shows
  the galaxy under the pointer (HoloViews' datashader ``selector``: target id, modality,
  redshift, ...) and nothing over empty pixels;
- ``spectrum_plot``: a spectrum with its lines marked at a redshift: thin light markers
  behind the data and short labels staggered over a few heights so they never overlap;
- ``grid_html``: neighbours as a grid of thumbnails with rank, score, id and redshift.
"""

from __future__ import annotations

import html
from functools import lru_cache

import holoviews as hv
import holoviews.plotting.bokeh  # loads the backend whose plot options are set here
import numpy as np
import pandas as pd

from scifm.astroclip.display import SPECTRAL_LINES, data_url

# label -> (catalog property, colour bar title); "modality" is categorical (a legend)
COLOR_BY = {
    "redshift": ("redshift", "redshift z"),
    "log stellar mass": ("log_mstar", "log₁₀ M* / M☉"),
    "log sSFR": ("log_ssfr", "log₁₀ sSFR / yr⁻¹"),
    "modality (image / spectrum)": ("modality", None),
}
MODALITY_COLORS = {"image": "#1f77b4", "spectrum": "#ff7f0e"}
TOOLTIPS = [("target id", "targetid"), ("modality", "modality"), ("redshift", "redshift"),
            ("log M*", "log_mstar"), ("log sSFR", "log_ssfr")]  # fmt: skip
UMAP_AXES = ("UMAP 1 (unitless)", "UMAP 2 (unitless)")
# short labels: a long one ("[OIII]5007") spans ~500 A of a 6000 A wide plot
LINE_LABELS = {"[OII]": "[OII]", "Hbeta": "Hβ", "[OIII]4959": "[OIII]", "[OIII]5007": "[OIII]",
               "Halpha": "Hα", "[NII]6583": "[NII]", "[SII]": "[SII]", "Ca K": "K",
               "Ca H": "H"}  # fmt: skip
# HoloViews' datashader hover (``selector``) fills the tooltip from the server after each
# pointer move, so for a moment it can hold the last pixel's values, or an empty pixel's
# (NaN, or row -1); show "…" then instead of NaN, undefined or a wrong id
TOOLTIP_JS = """export default ({hover_model, attr}) => {
  const data = hover_model.data ?? {}, value = data[attr];
  if (data["__index__"] == null || data["__index__"] == -1 || value == null || value === "-"
      || (typeof value == "number" && !isFinite(value))) return "…";
  return typeof value == "number" ? Bokeh.require("core/util/templating").get_formatter()(value)
                                  : String(value);
}"""
FLUX_LABEL = "flux (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹)"


@lru_cache(maxsize=2)
def map_frame(explorer) -> pd.DataFrame:
    """(2N rows) x, y, modality, target id (a string: 17 digits are beyond JS numbers), row
    and properties of both modalities' UMAP points (``explorer``: a scifm Explorer)."""
    cat = explorer.catalog
    parts = []
    for m in ("image", "spectrum"):
        df = pd.DataFrame({"x": cat.umap[m][:, 0], "y": cat.umap[m][:, 1]})
        df["modality"] = pd.Categorical([m] * len(df), categories=list(MODALITY_COLORS))
        df["is_spectrum"] = np.float32(m == "spectrum")
        df["targetid"] = cat.targetid.astype(str)
        df["row"] = np.arange(len(cat), dtype=np.int64)
        for p in ("redshift", "log_mstar", "log_ssfr"):
            if p in cat.props:
                df[p] = np.round(cat.props[p].astype(np.float64), 3)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def umap_plot(df: pd.DataFrame, color_by: str, *, height: int = 480):
    """(the datashaded map, the map with its legend) coloured by ``color_by`` (a key of
    ``COLOR_BY``); the first is the source of tap events, the second is shown."""
    import datashader as ds
    from holoviews.operation.datashader import dynspread, rasterize

    col, clabel = COLOR_BY[color_by]
    value = "is_spectrum" if col == "modality" else col
    tips = [t for t in TOOLTIPS if t[1] in df.columns]
    vdims = [value] + [c for _, c in tips if c != value]
    points = hv.Points(df, [hv.Dimension("x", label=UMAP_AXES[0]),
                            hv.Dimension("y", label=UMAP_AXES[1])], vdims)  # fmt: skip
    raster = rasterize(points, aggregator=ds.mean(value), selector=ds.first(value))
    opts = dict(
        tools=["hover", "tap"], hover_tooltips=tips, responsive=True, height=height,
        title="UMAP of image and spectrum embeddings", xlabel=UMAP_AXES[0],
        ylabel=UMAP_AXES[1], xticks=0, yticks=0, selector_in_hovertool=False,
        hooks=[_tooltip_placeholders],
    )  # fmt: skip
    if clabel is None:  # categorical: two colours, no colour bar, a legend
        shaded = dynspread(raster, threshold=0.6).opts(
            cmap=list(MODALITY_COLORS.values()), clim=(0, 1), colorbar=False, **opts)  # fmt: skip
        keys = [hv.Points([(np.nan, np.nan)], label=m).opts(color=c, size=9)
                for m, c in MODALITY_COLORS.items()]  # fmt: skip
        shown = shaded
        for key in keys:
            shown = shown * key
        return shaded, shown.opts(legend_position="top_left", show_legend=True)
    shaded = dynspread(raster, threshold=0.6).opts(cmap="viridis", colorbar=True, clabel=clabel,
                                                   **opts)  # fmt: skip
    return shaded, shaded


def _tooltip_placeholders(plot, element) -> None:
    """A HoloViews hook: the map tooltip's values through ``TOOLTIP_JS``."""
    from bokeh.models import CustomJS

    tips = getattr(plot.handles.get("hover"), "tooltips", None)
    for span in getattr(tips, "children", []):
        for value in getattr(span, "children", []):
            fmt = getattr(value, "formatter", None)
            if isinstance(fmt, CustomJS) and "hover_model" in fmt.args:
                fmt.code = TOOLTIP_JS


def label_levels(
    waves: list[float],
    labels: list[str],
    x_range: tuple[float, float],
    *,
    width_px: float = 600.0,
    char_px: float = 7.5,
    n_levels: int = 4,
) -> list[int]:
    """Height level (0 = lowest) of each label so that no two overlap, or -1 to leave a label
    out; labels are centred on ``waves`` (sorted), ``width_px`` a conservative plot width."""
    per_px = (x_range[1] - x_range[0]) / width_px
    ends = [-np.inf] * n_levels
    out = []
    for w, text in zip(waves, labels):
        half = 0.5 * (len(text) * char_px + 8) * per_px
        level = next((i for i, e in enumerate(ends) if e < w - half), -1)
        if level >= 0:
            ends[level] = w + half
        out.append(level)
    return out


def spectrum_plot(
    wave: np.ndarray,
    flux: np.ndarray,
    z: float | None,
    *,
    title: str,
    xlabel: str = "observed wavelength (Å)",
    height: int = 260,
) -> hv.Overlay:
    """``flux`` against ``wave`` with the lines of ``SPECTRAL_LINES`` inside the plotted range
    marked at redshift ``z`` (none when ``z`` is None)."""
    good = np.isfinite(flux)
    lo, top = (float(np.min(flux[good])), float(np.max(flux[good]))) if good.any() else (0, 1)
    span = max(top - lo, 1e-6)
    curve = hv.Curve((wave, flux), hv.Dimension("wave", label=xlabel),
                     hv.Dimension("flux", label=FLUX_LABEL)).opts(
        color="black", line_width=1, tools=["hover"], responsive=True, height=height,
        xlim=(float(wave[0]), float(wave[-1])))  # fmt: skip
    lines = []
    if z is not None and np.isfinite(z):
        lines = sorted((w * (1 + z), LINE_LABELS.get(n, n)) for n, w in SPECTRAL_LINES.items()
                       if wave[0] < w * (1 + z) < wave[-1])  # fmt: skip
    levels = label_levels([w for w, _ in lines], [t for _, t in lines], (wave[0], wave[-1]))
    step, n_used = 0.12 * span, max(levels, default=-1) + 1
    marks = hv.VLines([w for w, _ in lines]).opts(color="#9e9e9e", alpha=0.45, line_width=1,
                                                  line_dash="dotted")  # fmt: skip
    labels = hv.Labels([(w, top + step * (0.4 + lv), t) for (w, t), lv in zip(lines, levels)
                        if lv >= 0], ["wave", "flux"], "text").opts(
        text_font_size="8pt", text_color="#444444", text_baseline="bottom")  # fmt: skip
    curve = curve.opts(ylim=(lo - 0.02 * span, top + step * (0.5 + n_used)))
    return (marks * curve * labels).opts(title=title, xlabel=xlabel, ylabel=FLUX_LABEL)


def grid_html(explorer, table, title: str) -> str:
    """The neighbours in ``table`` (an ``Explorer`` result) as a grid of thumbnails."""
    cells = [
        f"<figure class='gx'><img src='{data_url(explorer.thumbnail(rec.row))}' width=96 "
        f"height=96 alt='{rec.targetid}'><figcaption>#{rec.rank} · {rec.score:.3f}<br>"
        f"{rec.targetid}<br>z={rec.redshift:.3f}</figcaption></figure>"
        for rec in table.itertuples()
    ]
    return f"<div class='gx-grid'><b>{html.escape(title)}</b><br>{''.join(cells)}</div>"
