"""Argument types shared by every ``scifm`` command group (clear one-line errors)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}; expected a positive integer (>= 1)")
    return value


def frame_count(text: str) -> int:
    """argparse ``type=`` for frames per trajectory: an integer >= 2 (one step needs two)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value}; expected at least 2 frames")
    return value
