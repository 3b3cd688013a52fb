"""Five number encodings behind one interface: xVal and the four Charton (2021) schemes.

Text that is not a number is tokenized one character per token (printable ASCII,
newline, tab); any other character becomes ``[UNK]`` -- never silently dropped.
Numbers (found by ``numbers.split_numbers``) become:

==========  ====================  ===========  ===========================
scheme      602 becomes           tokens/num   numeric vocabulary
==========  ====================  ===========  ===========================
``xval``    ``[NUM]`` (value 602)  1            1
``p10``     ``<+> <6> <0> <2> <E0>``  5        2 signs + 10 digits + exps
``p1000``   ``<+> <602> <E0>``     3           2 + 901 mantissas + exps
``b1999``   ``<+602> <E0>``        2           1801 signed mantissas + exps
``fp15``    ``<+602E0>``           1           1800 x exps + 1
==========  ====================  ===========  ===========================

The digit schemes write a number as ``sign, mantissa, exponent`` with
``sig_digits`` significant digits (3, as in the xVal paper): value = ±m·10^e with
m in [100, 999] (or 0). Exponents outside ``[exp_min, exp_max]`` cannot be written:
too small becomes 0 (status "underflow"), too large is clipped to ±999e{exp_max}
("overflow"). xVal keeps every number exactly (float64 here; scaled to float32
only inside the model).
"""

from __future__ import annotations

import functools
import math
import string
from dataclasses import dataclass, field

import numpy as np

from scifm.xval.numbers import format_number, join_segments, split_numbers

PAD, UNK, MASK, EOS, NUM = "[PAD]", "[UNK]", "[MASK]", "[EOS]", "[NUM]"
SPECIALS = (PAD, UNK, MASK, EOS)
TEXT_CHARS = tuple(c for c in string.printable if c not in "\r\x0b\x0c")  # 97 characters
SCHEMES = ("xval", "p10", "p1000", "b1999", "fp15")


@dataclass(frozen=True)
class Rounded:
    """How a digit scheme represents one value."""

    value: float  # the represented value
    sign: str  # "+" or "-"
    mantissa: int  # 0 or in [10**(sig-1), 10**sig - 1]
    exponent: int  # value = sign * mantissa * 10**exponent
    status: str  # "exact", "rounded", "underflow" or "overflow"


@dataclass(frozen=True)
class Encoding:
    """One text as token ids, with the value of every number kept beside it."""

    tokens: list[str]  # token strings, one per position
    ids: list[int]  # token ids, one per position
    values: np.ndarray  # float64 (T,): the number's value at [NUM], 1.0 elsewhere
    number_spans: list[tuple[int, int]]  # [start, end) token positions of each number
    numbers: list[float]  # each number as written in the text
    represented: list[float]  # each number as the scheme represents it
    status: list[str] = field(default_factory=list)  # per number: exact/rounded/...

    def __len__(self) -> int:
        return len(self.ids)


class Tokenizer:
    """Base class: character tokens for text, ``number_tokens`` for numbers (per scheme)."""

    name = "base"
    tokens_per_number = 1

    def __init__(self, *, sig_digits: int = 3, exp_min: int = -8, exp_max: int = 7) -> None:
        if not 1 <= sig_digits <= 4:
            raise ValueError(f"sig_digits={sig_digits}: expected 1..4")
        if exp_min > exp_max:
            raise ValueError(f"exp_min={exp_min} > exp_max={exp_max}: empty exponent range")
        self.sig_digits, self.exp_min, self.exp_max = sig_digits, exp_min, exp_max
        self.vocab: tuple[str, ...] = SPECIALS + TEXT_CHARS + tuple(self._numeric_vocab())
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        if len(self.token_to_id) != len(self.vocab):
            raise AssertionError(f"{self.name}: duplicate token spellings in the vocabulary")
        self.numeric_ids = frozenset(range(len(SPECIALS) + len(TEXT_CHARS), len(self.vocab)))

    # -- per scheme -------------------------------------------------------------------
    def _numeric_vocab(self) -> list[str]:
        raise NotImplementedError

    def number_tokens(self, value: float) -> list[str]:
        raise NotImplementedError

    def parse_number(self, tokens: list[str]) -> float | None:
        """Value of one number's tokens, or None if they do not form a number."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def _mant_lo(self) -> int:
        return 10 ** (self.sig_digits - 1)

    def _exps(self) -> range:
        return range(self.exp_min, self.exp_max + 1)

    def represent(self, value: float) -> Rounded:
        """Round ``value`` to ``sig_digits`` significant digits inside the exponent range."""
        sign = "-" if math.copysign(1.0, value) < 0 else "+"
        mag = abs(value)
        if mag == 0:
            return Rounded(0.0, sign, 0, min(max(0, self.exp_min), self.exp_max), "exact")
        exp = math.floor(math.log10(mag)) - (self.sig_digits - 1)
        mant = round(mag / 10.0**exp)
        if mant >= 10**self.sig_digits:  # 999.6 rounds up to 1000
            mant, exp = mant // 10, exp + 1
        elif mant < self._mant_lo:  # log10 landed just below a power of ten
            mant, exp = round(mag / 10.0 ** (exp - 1)), exp - 1
        if exp < self.exp_min:
            return Rounded(0.0, sign, 0, self.exp_min, "underflow")
        if exp > self.exp_max:
            mant, exp, status = 10**self.sig_digits - 1, self.exp_max, "overflow"
        else:
            status = ""
        rep = float(f"{sign}{mant}e{exp}")
        status = status or ("exact" if rep == value else "rounded")
        return Rounded(rep, sign, mant, exp, status)

    def _text_tokens(self, text: str) -> list[str]:
        return [c if c in self.token_to_id else UNK for c in text]

    def encode(self, text: str) -> Encoding:
        """Tokenize ``text``; raises ValueError for a number that overflows float64."""
        tokens: list[str] = []
        values: list[float] = []
        spans, numbers, represented, status = [], [], [], []
        for seg in split_numbers(text):
            if seg.value is None:
                chars = self._text_tokens(seg.text)
                tokens += chars
                values += [1.0] * len(chars)
                continue
            start = len(tokens)
            num_toks = self.number_tokens(seg.value)
            tokens += num_toks
            rep = self.represent_or_exact(seg.value)
            values += [seg.value if t == NUM else 1.0 for t in num_toks]
            spans.append((start, len(tokens)))
            numbers.append(seg.value)
            represented.append(rep.value)
            status.append(rep.status)
        ids = [self.token_to_id[t] for t in tokens]
        return Encoding(
            tokens, ids, np.asarray(values, dtype=np.float64), spans, numbers, represented, status
        )

    def represent_or_exact(self, value: float) -> Rounded:
        return self.represent(value)

    def decode(self, ids: list[int], values: np.ndarray | list[float] | None = None) -> str:
        """Text of ``ids`` (``values`` gives the numbers at ``[NUM]``; needed for xVal)."""
        pieces: list[tuple[str, str | None]] = []
        pending: list[str] = []

        def flush() -> None:
            k = self.tokens_per_number
            for j in range(0, len(pending), k):
                v = self.parse_number(pending[j : j + k])
                pieces.append((format_number(v), "num") if v is not None else ("\ufffd", None))
            pending.clear()

        for pos, i in enumerate(ids):
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"ids[{pos}]={i}: outside the vocabulary [0, {len(self.vocab)})")
            tok = self.vocab[i]
            if i in self.numeric_ids and tok != NUM:
                pending.append(tok)
                continue
            flush()
            if tok == NUM:
                if values is None:
                    raise ValueError("decode: ids contain [NUM] but no values were given")
                pieces.append((format_number(float(values[pos])), "num"))
            elif tok == PAD:
                continue
            elif tok in SPECIALS:
                pieces.append(("\ufffd" if tok == UNK else "", None))
            else:
                pieces.append((tok, None))
        flush()
        return join_segments(pieces)

    def format_value(self, value: float) -> str:
        """How this scheme writes ``value`` back (after its rounding)."""
        return format_number(self.represent(value).value)


class XvalTokenizer(Tokenizer):
    """Every number is the single token ``[NUM]``; its value rides along (Golkar et al.)."""

    name = "xval"
    tokens_per_number = 1

    def _numeric_vocab(self) -> list[str]:
        return [NUM]

    def number_tokens(self, value: float) -> list[str]:
        return [NUM]

    def represent_or_exact(self, value: float) -> Rounded:
        return Rounded(value, "+" if value >= 0 else "-", 0, 0, "exact")

    def parse_number(self, tokens: list[str]) -> float | None:
        return None  # [NUM] carries no digits; its value comes from ``values``

    def format_value(self, value: float) -> str:
        return format_number(value)


class P10Tokenizer(Tokenizer):
    """``<+> <6> <0> <2> <E0>``: sign, one token per digit, exponent."""

    name = "p10"

    @property
    def tokens_per_number(self) -> int:  # type: ignore[override]
        return self.sig_digits + 2

    def _numeric_vocab(self) -> list[str]:
        return ["<+>", "<->"] + [f"<{d}>" for d in range(10)] + [f"<E{e}>" for e in self._exps()]

    def number_tokens(self, value: float) -> list[str]:
        r = self.represent(value)
        digits = f"{r.mantissa:0{self.sig_digits}d}"
        return [f"<{r.sign}>", *[f"<{d}>" for d in digits], f"<E{r.exponent}>"]

    def parse_number(self, tokens: list[str]) -> float | None:
        if len(tokens) != self.tokens_per_number:
            return None
        s, *ds, e = [t[1:-1] for t in tokens]
        if s not in "+-" or not all(d.isdigit() and len(d) == 1 for d in ds):
            return None
        if not e.startswith("E") or (ds[0] == "0" and any(d != "0" for d in ds)):
            return None
        return float(f"{s}{''.join(ds)}e{e[1:]}")


class P1000Tokenizer(Tokenizer):
    """``<+> <602> <E0>``: sign, the mantissa as one token, exponent."""

    name = "p1000"
    tokens_per_number = 3

    def _mantissas(self) -> list[str]:
        zero = "0" * self.sig_digits
        return [zero] + [str(m) for m in range(self._mant_lo, 10**self.sig_digits)]

    def _numeric_vocab(self) -> list[str]:
        mants = [f"<{m}>" for m in self._mantissas()]
        return ["<+>", "<->", *mants] + [f"<E{e}>" for e in self._exps()]

    def number_tokens(self, value: float) -> list[str]:
        r = self.represent(value)
        return [f"<{r.sign}>", f"<{r.mantissa:0{self.sig_digits}d}>", f"<E{r.exponent}>"]

    def parse_number(self, tokens: list[str]) -> float | None:
        if len(tokens) != 3:
            return None
        s, m, e = (t[1:-1] for t in tokens)
        if s not in ("+", "-") or not m.isdigit() or not e.startswith("E"):
            return None
        return float(f"{s}{m}e{e[1:]}")


class B1999Tokenizer(P1000Tokenizer):
    """``<+602> <E0>``: signed mantissa as one token, exponent."""

    name = "b1999"
    tokens_per_number = 2

    def _numeric_vocab(self) -> list[str]:
        m = self._mantissas()
        mants = [f"<+{m[0]}>"] + [f"<{s}{x}>" for s in "+-" for x in m[1:]]
        return mants + [f"<E{e}>" for e in self._exps()]

    def number_tokens(self, value: float) -> list[str]:
        r = self.represent(value)
        sign = "+" if r.mantissa == 0 else r.sign
        return [f"<{sign}{r.mantissa:0{self.sig_digits}d}>", f"<E{r.exponent}>"]

    def parse_number(self, tokens: list[str]) -> float | None:
        if len(tokens) != 2:
            return None
        m, e = (t[1:-1] for t in tokens)
        if m[:1] not in ("+", "-") or not m[1:].isdigit() or not e.startswith("E"):
            return None
        return float(f"{m}e{e[1:]}")


class FP15Tokenizer(P1000Tokenizer):
    """``<+602E0>``: the whole rounded number is one token (a float-like vocabulary)."""

    name = "fp15"
    tokens_per_number = 1

    def _numeric_vocab(self) -> list[str]:
        m = self._mantissas()
        zero = f"<+{m[0]}E{min(max(0, self.exp_min), self.exp_max)}>"
        return [zero] + [f"<{s}{x}E{e}>" for s in "+-" for x in m[1:] for e in self._exps()]

    def number_tokens(self, value: float) -> list[str]:
        r = self.represent(value)
        if r.mantissa == 0:
            return [self.vocab[min(self.numeric_ids)]]
        return [f"<{r.sign}{r.mantissa}E{r.exponent}>"]

    def parse_number(self, tokens: list[str]) -> float | None:
        if len(tokens) != 1 or not tokens[0].startswith("<") or "E" not in tokens[0]:
            return None
        try:
            return float(tokens[0][1:-1])
        except ValueError:
            return None


_CLASSES = {
    c.name: c for c in (XvalTokenizer, P10Tokenizer, P1000Tokenizer, B1999Tokenizer, FP15Tokenizer)
}


@functools.lru_cache(maxsize=32)
def get_tokenizer(
    scheme: str, *, sig_digits: int = 3, exp_min: int = -8, exp_max: int = 7
) -> Tokenizer:
    """The tokenizer called ``scheme`` (one of ``SCHEMES``); cached, treat as read-only."""
    if scheme not in _CLASSES:
        raise ValueError(f"scheme {scheme!r}: unknown; expected one of {list(SCHEMES)}")
    return _CLASSES[scheme](sig_digits=sig_digits, exp_min=exp_min, exp_max=exp_max)
