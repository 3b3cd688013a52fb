"""The ``scifm`` command: ``serve``, ``info``, and one group per engine and idea.

Each engine and idea registers its own group (``register(subparsers)`` in its
``cli`` module); this file only wires them together. Errors a user can act on
(a missing or corrupt file, a bad value) print one line, ``scifm: error: ...``,
and exit with status 1; ``--debug`` (or ``SCIFM_DEBUG=1``) shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# group name -> module providing ``register(subparsers)``
GROUPS = {
    "xval": "scifm.xval.cli",
    "pde": "scifm.pde.cli",
    "mpp": "scifm.mpp.cli",
    "survey": "scifm.survey.cli",
    "astroclip": "scifm.astroclip.cli",
}

# Errors that come from what the user gave (files, ids, numbers): one line, no traceback.
# A diverged training loss (core.train's FloatingPointError, which names the step) is one
# too: its cause is the data or the settings given. Anything else is a bug of ours and
# keeps its traceback.
USER_ERRORS = (ValueError, LookupError, OSError, FloatingPointError)


def error_message(exc: BaseException) -> str:
    """The one line printed for a user error (KeyError's quotes dropped)."""
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}"
    return " ".join(str(msg).split()) or type(exc).__name__


def _serve(args: argparse.Namespace) -> int:
    from scifm.core.paths import app_dir

    sys.path.insert(0, str(app_dir().parent))
    from app.serve import serve

    serve(
        address=args.address, port=args.port, show=args.show,
        allow_websocket_origin=args.allow_websocket_origin, use_xheaders=args.use_xheaders,
    )  # fmt: skip
    return 0


def _info(args: argparse.Namespace) -> int:
    from scifm.info import collect, render

    print(render(collect(), as_json=args.json))
    return 0


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``scifm: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"scifm: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="scifm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the web app (landing, numbers, physics, galaxies)")
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument(
        "--allow-websocket-origin", action="append", metavar="HOST[:PORT]",
        help="public host of a reverse proxy (repeatable); default: the listening address",
    )  # fmt: skip
    p.add_argument(
        "--use-xheaders", action="store_true",
        help="trust X-Forwarded-For/-Proto from a reverse proxy",
    )  # fmt: skip
    p.set_defaults(func=_serve)
    p = sub.add_parser("info", help="versions, device and shipped assets")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    for module in GROUPS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("SCIFM_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"scifm: error: {error_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
