"""The ``scifm`` command: ``serve``, ``info``, and one group per idea.

Each idea registers its own group (``register(subparsers)`` in its ``cli`` module);
this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

# group name -> module providing ``register(subparsers)``
GROUPS = {
    "xval": "scifm.xval.cli",
    "pde": "scifm.mpp.pde.cli",
    "mpp": "scifm.mpp.cli",
    "survey": "scifm.astroclip.survey.cli",
    "astroclip": "scifm.astroclip.cli",
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package has not landed either
        return False


def _serve(args: argparse.Namespace) -> int:
    from scifm.core.paths import app_dir

    sys.path.insert(0, str(app_dir().parent))
    from app.serve import serve

    serve(address=args.address, port=args.port, show=args.show)
    return 0


def _info(args: argparse.Namespace) -> int:
    from scifm.info import collect, render

    print(render(collect(), as_json=args.json))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scifm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the web app (landing, numbers, physics, galaxies)")
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=_serve)
    p = sub.add_parser("info", help="versions, device and shipped assets")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    for module in GROUPS.values():
        if _available(module):  # groups land one by one
            importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
