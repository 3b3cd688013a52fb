"""The page registry: every module under ``app/pages`` (but the landing page) is a page."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

import app.pages

REQUIRED = ("SLUG", "TITLE", "DESCRIPTION", "ORDER", "page")
# optional: ``warm_up()``, slow preparation the server runs once at start in a thread


@cache
def discover_pages() -> tuple[ModuleType, ...]:
    """Page modules under ``app/pages`` (the landing page excluded), in ``ORDER``."""
    mods = []
    for info in pkgutil.iter_modules(app.pages.__path__):
        if info.name == "landing":
            continue
        mod = importlib.import_module(f"app.pages.{info.name}")
        missing = [n for n in REQUIRED if not hasattr(mod, n)]
        if missing:
            raise AttributeError(
                f"app/pages/{info.name}.py: missing {missing} (see app/registry.py)"
            )
        mods.append(mod)
    return tuple(sorted(mods, key=lambda m: m.ORDER))
