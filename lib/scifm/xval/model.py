"""The xVal transformer (Golkar et al. 2023, arXiv:2310.02989).

Input embedding ``h = token_embedding(ids) * x_num[..., None] + position_embedding``:
the value multiplies the ``[NUM]`` embedding *before* the position is added (the
reference once multiplied after, a bug it later fixed). ``x_num`` is 1 at every
non-number position, so digit schemes see ordinary embeddings and use the very
same network with the number head unused.

Post-norm blocks with biases and two heads that are MLPs ``d -> d_ffn -> out``
(the token head without bias), as in the reference; with the "paper" preset and
a 100-token vocabulary this counts 48,422,401 parameters. Padding (id 0) is
masked out of attention; ``mode="ar"`` adds an explicit lower-triangular mask
(not ``is_causal``, which current PyTorch rejects with a mask or ignores in eval).

``num_bias`` (on in every preset) adds a learned vector ``b`` at each ``[NUM]``:
``x * e_NUM + b``. Without it a value scaled to exactly 0 -- the training mean of
its field -- enters as a zero vector (a "dead zone"); with it no value is special.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from scifm.xval.config import XvalConfig

PAD_ID = 0  # "[PAD]" is the first token of every xVal vocabulary


class Block(nn.Module):
    """Post-norm transformer block (the reference's ``nn.TransformerEncoderLayer``)."""

    def __init__(self, *, d_model: int, n_heads: int, d_ffn: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, d_ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ffn, d_model)
        )
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # x: (B, T, d); allowed: (B, 1, T, T) bool, True where a query may attend a key
        q, k, v = rearrange(
            self.qkv(x), "b t (three h e) -> three b h t e", three=3, h=self.n_heads
        )
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        x = self.norm1(x + self.drop(self.proj(rearrange(a, "b h t e -> b t (h e)"))))
        return self.norm2(x + self.drop(self.ffn(x)))


class Model(nn.Module):
    """xVal transformer; ``forward(ids, x_num) -> (logits (B,T,V), numbers (B,T))``.

    With ``select`` (a (B, T) bool mask) both heads run only at the selected
    positions, which saves most of the vocabulary projection in masked-LM training.
    """

    def __init__(self, config: XvalConfig) -> None:
        super().__init__()
        c = self.config = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.position_embedding = nn.Embedding(c.max_len, c.d_model)
        self.blocks = nn.ModuleList(
            Block(d_model=c.d_model, n_heads=c.n_heads, d_ffn=c.d_ffn, dropout=c.dropout)
            for _ in range(c.n_layers)
        )
        out = c.d_model if c.tie_token_head else c.vocab_size
        self.token_head = nn.Sequential(
            nn.Linear(c.d_model, c.d_ffn, bias=False),
            nn.GELU(),
            nn.Linear(c.d_ffn, out, bias=False),
        )
        self.number_head = nn.Sequential(
            nn.Linear(c.d_model, c.d_ffn), nn.GELU(), nn.Linear(c.d_ffn, 1)
        )
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        self.num_id = c.num_id  # -1 for the digit schemes: no [NUM], no bias
        if c.num_bias and self.num_id >= 0:
            self.number_bias = nn.Parameter(torch.randn(c.d_model) * 0.02)  # (d,)

    def attention_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, T) bool: keys that are not padding, and not in the future in AR mode."""
        b, t = ids.shape
        allowed = (ids != PAD_ID)[:, None, None, :].expand(b, 1, t, t)
        if self.config.mode == "ar":
            allowed = allowed & torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        # a padding query may see nothing; let it see itself so softmax stays finite
        return allowed | torch.eye(t, dtype=torch.bool, device=ids.device)

    def embed(self, ids: torch.Tensor, x_num: torch.Tensor) -> torch.Tensor:
        """(B, T, d) input: token embedding times value, THEN plus position embedding."""
        t = ids.shape[1]
        if t > self.config.max_len:
            raise ValueError(f"sequence of {t} tokens: longer than max_len={self.config.max_len}")
        pos = torch.arange(t, device=ids.device)
        h = self.token_embedding(ids) * x_num.to(self.token_embedding.weight.dtype)[..., None]
        if hasattr(self, "number_bias"):
            h = h + (ids == self.num_id)[..., None] * self.number_bias  # (B, T, d)
        return h + self.position_embedding(pos)[None]

    def forward(
        self, ids: torch.Tensor, x_num: torch.Tensor, select: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # ids: (B, T) long; x_num: (B, T) float, scaled value at [NUM], 1 elsewhere
        # select: optional (B, T) bool; heads then run only there -> (N, V), (N,)
        h = self.embed(ids, x_num)
        allowed = self.attention_mask(ids)
        for block in self.blocks:
            h = block(h, allowed)
        if select is not None:
            h = h[select]  # (N, d): a masked LM needs the heads at its targets only
        logits = self.token_head(h)
        if self.config.tie_token_head:
            logits = logits @ self.token_embedding.weight.T  # (B, T, V)
        return logits, self.number_head(h).squeeze(-1)  # (B, T, V), (B, T) or (N, V), (N,)
