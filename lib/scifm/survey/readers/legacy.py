"""Legacy Surveys image cutouts (FITS) into the survey image layout (H, W, 3) g, r, z.

The Legacy Surveys cutout service returns either a 3 x H x W cube in the
primary HDU with ``BANDS = 'grz'`` (or ``BAND0..BAND2`` keywords), or one image
per band; images are in nanomaggies at 0.262"/pixel (Dey et al. 2019). Both
become (H, W, 3) float32 in g, r, z order; ``fit_cutout`` centres it on the
152 x 152 stamp AstroCLIP uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from scifm.survey.readers.grid import fits_error

BANDS = "grz"


def _cube_bands(header: fits.Header, n: int) -> str:
    if "BANDS" in header:
        return str(header["BANDS"]).strip()
    keys = [header.get(f"BAND{i}") for i in range(n)]
    if all(keys):
        return "".join(str(k).strip() for k in keys)
    return BANDS[:n]  # the cutout service's default order


def _plane_band(header: fits.Header) -> str | None:
    for key in ("BAND", "FILTER", "FILTERX"):
        if key in header:
            return str(header[key]).strip()[:1].lower()
    return None


def read_legacy_cutout(path: str | Path, bands: str = BANDS) -> np.ndarray:
    """(H, W, len(bands)) float32 nanomaggies from a cube or per-band-plane FITS file."""
    path = Path(path)
    try:
        hdul = fits.open(path)
    except OSError as e:
        raise fits_error("Legacy Surveys cutout", path.name, e) from e
    with hdul:
        kinds = fits.PrimaryHDU | fits.ImageHDU
        images = [(h.header, np.asarray(h.data, np.float32)) for h in hdul
                  if isinstance(h, kinds) and h.data is not None]  # fmt: skip
        if not images:
            raise ValueError(f"Legacy Surveys cutout {path.name}: no image data in any HDU")
        header, data = images[0]
        if data.ndim == 3:
            have = _cube_bands(header, data.shape[0])
            planes = {b: data[i] for i, b in enumerate(have)}
        elif data.ndim == 2:
            planes = {}
            for i, (h, d) in enumerate(images):
                if d.ndim != 2 or d.shape != data.shape:
                    raise ValueError(
                        f"Legacy Surveys cutout {path.name}: HDU {i} has shape {d.shape}; "
                        f"expected planes of {data.shape}"
                    )
                planes[_plane_band(h) or BANDS[i % 3]] = d
        else:
            raise ValueError(
                f"Legacy Surveys cutout {path.name}: image of shape {data.shape}; expected a "
                "3 x H x W cube or H x W planes"
            )
    missing = [b for b in bands if b not in planes]
    if missing:
        raise ValueError(
            f"Legacy Surveys cutout {path.name}: bands {missing} not found (file has "
            f"{sorted(planes)}); expected {list(bands)}"
        )
    return np.stack([planes[b] for b in bands], axis=-1)


def fit_cutout(image: np.ndarray, size: int = 152) -> np.ndarray:
    """Centre-crop (or zero-pad) an (H, W, C) image to (size, size, C)."""
    if image.ndim != 3:
        raise ValueError(f"fit_cutout: image of shape {image.shape}; expected (H, W, C)")
    out = np.zeros((size, size, image.shape[2]), np.float32)
    h, w = image.shape[:2]
    ch, cw = min(h, size), min(w, size)
    sy, sx = (h - ch) // 2, (w - cw) // 2
    dy, dx = (size - ch) // 2, (size - cw) // 2
    out[dy : dy + ch, dx : dx + cw] = image[sy : sy + ch, sx : sx + cw]
    return out
