"""The dashboards' one stylesheet (``scifm.css``, shipped as package data)."""

from __future__ import annotations

from importlib.resources import files

STYLESHEET: str = files("scifm.dashboards").joinpath("scifm.css").read_text(encoding="utf-8")
