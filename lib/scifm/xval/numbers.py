"""Finding the numbers in a text, and writing them back (xVal, Golkar et al. 2023).

The reference xVal code finds numbers with one regular expression that reads a
subtraction minus as a sign (``3-2=1`` gives ``3, -2, 1``), takes digits inside
identifiers (``t1``) as numbers, splits ``1,000`` and loses the dot of ``.5``.
The scanner here follows these rules instead:

- a number is ``123``, ``1.5``, ``.5`` or any of those with an exponent
  (``6.02e23``, ``1E-9``); a trailing dot (``5.``) is punctuation, not part of it;
- digits that follow a letter, digit, underscore or dot-after-identifier
  (``t1``, ``planet0``, ``x_2``) stay text;
- ``+``/``-`` directly before a number is its sign only where no operand ends just
  before it (ignoring spaces): at the start, after ``( [ { , : = < >`` or another
  operator. So ``3-2=1`` has the numbers 3, 2, 1 and ``3*-2`` has 3, -2;
- **documented choice:** a comma always separates. ``1,000`` is the two numbers
  1 and 0 (scientific records are JSON-like lists, where ``[1,200]`` is two
  numbers); write one thousand as ``1000`` or ``1e3``;
- ``nan``/``inf`` are words, not numbers; a number that overflows float64
  (``1e400``) is an error naming it.

Values are Python floats (float64); nothing here rounds to float16.
"""

from __future__ import annotations

import decimal
import math
import re
from dataclasses import dataclass

_UNSIGNED = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = set("0123456789")
_IDENT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_OPERAND_END = _IDENT | set(")]}.'\"")


@dataclass(frozen=True)
class Segment:
    """A piece of text: plain text (``value is None``) or one number and its spelling."""

    text: str  # the characters as written in the input
    value: float | None = None  # the number's value, None for plain text

    @property
    def is_number(self) -> bool:
        return self.value is not None


def _sign_allowed(text: str, sign_pos: int) -> bool:
    """Is the ``+``/``-`` at ``sign_pos`` a sign (no operand ends before it)?"""
    j = sign_pos - 1
    while j >= 0 and text[j] in " \t":
        j -= 1
    return j < 0 or text[j] not in _OPERAND_END


def split_numbers(text: str) -> list[Segment]:
    """Split ``text`` into alternating text and number segments (concatenation == text)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    out: list[Segment] = []
    buf_start, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        starts = c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS)
        if starts and (i == 0 or text[i - 1] not in _IDENT):
            m = _UNSIGNED.match(text, i)
            if m is not None:
                start = i
                if i > 0 and text[i - 1] in "+-" and _sign_allowed(text, i - 1):
                    start = i - 1
                spelled = text[start : m.end()]
                value = float(spelled)
                if not math.isfinite(value):
                    raise ValueError(
                        f"number {spelled!r} at character {start}: overflows float64 "
                        "(|value| must be below ~1.8e308)"
                    )
                if start > buf_start:
                    out.append(Segment(text[buf_start:start]))
                out.append(Segment(spelled, value))
                i = buf_start = m.end()
                continue
        i += 1
    if buf_start < n:
        out.append(Segment(text[buf_start:]))
    return out


def find_numbers(text: str) -> list[float]:
    """The values of the numbers in ``text``, in order."""
    return [s.value for s in split_numbers(text) if s.value is not None]


def format_number(value: float) -> str:
    """Shortest spelling of ``value`` that reads back to the same float64."""
    if not math.isfinite(value):
        raise ValueError(f"value {value!r}: only finite numbers can be written")
    if value == int(value) and abs(value) < 1e16:
        return str(int(value)) if not (value == 0 and math.copysign(1, value) < 0) else "-0"
    return repr(float(value))


def _scientific(spelled: str) -> str:
    """Rewrite a plain spelling with an exponent (same value): ``1500`` -> ``1.5e+3``."""
    d = decimal.Decimal(spelled)
    return format(d, "e") if d != 0 else spelled + "e0"


_EXTENDS_DOT = re.compile(r"\.[0-9]")
_EXTENDS_EXP = re.compile(r"[eE][+-]?[0-9]")


def join_segments(pieces: list[tuple[str, str | None]]) -> str:
    """Join ``(text, None)`` / ``(spelled_number, "num")`` pieces so they re-split the same.

    A number written as ``1`` followed by the text ``.5`` would read back as 1.5;
    such a number is written ``1.0`` (or with an exponent before ``e5``). A number
    after text that ends in ``.`` (``..5`` is the text ``.`` and 0.5) is written with
    a leading dot, ``.5``, since ``.0.5`` would read back as 0.0 and 5. An unsigned number
    after text ending in a ``+``/``-`` that would read as its sign (the text ``-`` and 0, from
    ``--0`` through a scheme with one zero token) is written with its own ``+``: ``-+0``.
    Works right to left so each number sees exactly what follows it.
    """
    out = ""
    for i in range(len(pieces) - 1, -1, -1):
        spelled, kind = pieces[i]
        if kind is not None:
            if _EXTENDS_DOT.match(out) and not re.search(r"[.eE]", spelled):
                spelled = spelled + ".0"
            if _EXTENDS_EXP.match(out) and not re.search(r"[eE]", spelled):
                spelled = _scientific(spelled)
            before = pieces[i - 1] if i > 0 else ("", None)
            if before[1] is None and before[0].endswith(".") and spelled[:1].isdigit():
                spelled = _leading_dot(spelled, need_exp=bool(_EXTENDS_EXP.match(out)))
            if spelled[:1] not in ("+", "-"):
                left = "".join(text for text, _ in pieces[:i])
                if left[-1:] in ("+", "-") and _sign_allowed(left, len(left) - 1):
                    spelled = "+" + spelled  # else the text's sign would become the number's
        out = spelled + out
    return out


def _leading_dot(spelled: str, need_exp: bool) -> str:
    """The same value spelled ``.ddd[e±k]`` (digits after the dot): ``0.5`` -> ``.5``."""
    sign, digits, exp = decimal.Decimal(spelled).as_tuple()
    e = int(exp) + len(digits)
    body = "." + "".join(map(str, digits))
    return ("-" if sign else "") + body + (f"e{e}" if e or need_exp else "")
