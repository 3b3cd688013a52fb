"""Configuration of the xVal transformer and of the tokenizer it is trained with.

The same ``XvalConfig`` builds the model for all five encodings (``scheme``), so a
comparison changes only the number encoding. The vocabulary size is derived from
the tokenizer (scheme, significant digits, exponent range), so a checkpoint's
config alone rebuilds both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from scifm.core import ConfigMixin
from scifm.xval.tokenizers import SCHEMES, Tokenizer, get_tokenizer

MODES = ("mlm", "ar")


@dataclass(frozen=True)
class XvalConfig(ConfigMixin):
    scheme: str = "xval"  # number encoding: xval, p10, p1000, b1999 or fp15
    sig_digits: int = 3  # significant digits of the digit schemes (the paper uses 3)
    exp_min: int = -8  # smallest exponent the digit schemes can write (m * 10**e)
    exp_max: int = 7  # largest exponent; 16 exponents give FP15 its ~28.8k tokens
    d_model: int = 64  # width of the residual stream
    n_heads: int = 4  # attention heads (d_model must divide evenly)
    n_layers: int = 2  # transformer blocks
    d_ffn: int = 256  # hidden width of each block's MLP and of both heads
    max_len: int = 128  # longest sequence (learned position embeddings)
    dropout: float = 0.0  # dropout in attention and MLPs (tiny CPU runs need none)
    mode: str = "mlm"  # "mlm": bidirectional masked-LM; "ar": causal next-token model
    tie_token_head: bool = False  # token head ends in the embedding matrix (saves V*d_ffn)
    mse_weight: float = 1.0  # weight of the number-head MSE next to token CE (paper: 1)
    # learned vector added at every [NUM] (x * e_NUM + b): without it a value the scaler
    # maps to 0 (the training mean) has a zero embedding -- the "dead zone". Every preset
    # turns it on; the default is off only so checkpoints written before it load unchanged.
    num_bias: bool = False

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"d_model": 32, "n_heads": 2, "n_layers": 1, "d_ffn": 64, "max_len": 64,
                 "num_bias": True},
        "small": {"d_model": 64, "n_heads": 4, "n_layers": 2, "d_ffn": 128, "max_len": 128,
                  "tie_token_head": True, "num_bias": True},
        # The reference model: 48,422,401 parameters with a 100-token vocabulary
        # (num_bias off there: the reference has no such vector).
        "paper": {"d_model": 768, "n_heads": 6, "n_layers": 6, "d_ffn": 3072, "max_len": 1024},
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"XvalConfig.scheme={self.scheme!r}: expected one of {SCHEMES}")
        if self.mode not in MODES:
            raise ValueError(f"XvalConfig.mode={self.mode!r}: expected one of {MODES}")
        for name in ("d_model", "n_heads", "n_layers", "d_ffn", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"XvalConfig.{name}={getattr(self, name)}: must be >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"XvalConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"XvalConfig.dropout={self.dropout}: expected [0, 1)")
        self.tokenizer  # validates sig_digits and the exponent range  # noqa: B018

    @property
    def tokenizer(self) -> Tokenizer:
        return get_tokenizer(
            self.scheme, sig_digits=self.sig_digits, exp_min=self.exp_min, exp_max=self.exp_max
        )

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def num_id(self) -> int:
        """Id of ``[NUM]`` (xVal), or -1 for the digit schemes."""
        return self.tokenizer.token_to_id.get("[NUM]", -1)
