"""``scifm info``: versions, the device that would be used, and which shipped assets exist."""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch", "numpy", "scipy", "panel", "holoviews", "bokeh", "datashader", "h5py",
    "astropy", "faiss-cpu", "umap-learn", "scikit-learn", "safetensors", "galsim",
    "bagpipes", "speclite", "specutils", "rebound", "the_well",
)  # fmt: skip


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _assets(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not root.is_dir():
        return out
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = [f for f in sub.rglob("*") if f.is_file()]
        manifest = sub / "MANIFEST.json"
        out[sub.name] = {
            "files": len(files),
            "bytes": sum(f.stat().st_size for f in files),
            "manifest": manifest.is_file(),
        }
    return out


def collect() -> dict[str, Any]:
    import torch

    from scifm import __version__
    from scifm.core.devices import pick_device
    from scifm.core.paths import assets_dir

    device = pick_device()
    return {
        "scifm": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "bf16": bool(device.type == "cuda" and torch.cuda.is_bf16_supported()),
        "torch_threads": torch.get_num_threads(),
        "packages": {name: _version(name) for name in PACKAGES},
        "assets_dir": str(assets_dir()),
        "assets": _assets(assets_dir()),
    }


def render(info: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(info, indent=2)
    lines = [
        f"scifm {info['scifm']} on Python {info['python']} ({info['platform']})",
        f"device: {info['device']}  (CUDA: {info['cuda_available']}, bf16: {info['bf16']})",
        "packages: " + ", ".join(f"{k} {v or '-'}" for k, v in info["packages"].items()),
        f"assets in {info['assets_dir']}:",
    ]
    if not info["assets"]:
        lines.append("  (none)")
    for name, a in info["assets"].items():
        mb = a["bytes"] / 1e6
        lines.append(f"  {name}: {a['files']} files, {mb:.1f} MB, manifest: {a['manifest']}")
    return "\n".join(lines)
