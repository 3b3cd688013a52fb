"""Argument types shared by every ``scifm`` command group (clear one-line errors)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}; expected a positive integer (>= 1)")
    return value


MAX_FRAMES = 10_000  # PDEBench's longest 2-D trajectories have 1,000 frames


def frame_count(text: str) -> int:
    """argparse ``type=`` for frames per trajectory: an integer from 2 (one step needs two)
    to ``MAX_FRAMES``."""
    value = positive_int(text)
    if not 2 <= value <= MAX_FRAMES:
        raise argparse.ArgumentTypeError(f"{value}; expected 2 to {MAX_FRAMES:,} frames")
    return value


def count_upto(limit: int, unit: str) -> Callable[[str], int]:
    """argparse ``type=`` for a count with a ceiling: an integer from 1 to ``limit``.

    The ceiling keeps an absurd request (``--n-test 1e9``) a one-line error rather than a
    terabyte allocation and a traceback; ``unit`` names what is counted in the message.
    """

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{value} {unit}; expected at most {limit:,}")
        return value

    parse.__name__ = f"count of {unit}"  # argparse names the type in its own messages
    return parse
