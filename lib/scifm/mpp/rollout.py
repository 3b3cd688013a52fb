"""Autoregressive rollout: feed predictions back as input for any number of steps.

The MPP paper evaluates next-step and short (5-step) rollouts and names long rollouts an
open question; this module measures both by sliding the T-frame window forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from scifm.mpp.metrics import nmse_per_field

Predictor = Callable[[torch.Tensor], torch.Tensor]  # (B, T, C, H, W) -> (B, C, H, W)


@torch.no_grad()
def rollout(
    step_fn: Predictor,
    context: torch.Tensor,
    n_steps: int,
    *,
    truth: torch.Tensor | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predict ``n_steps`` frames after ``context`` (B, T, C, H, W).

    Returns the predictions (B, n_steps, C, H, W) and, when ``truth`` (B, >=n_steps, C, H, W)
    is given, the NRMSE of each step (n_steps,) averaged over samples and fields.
    """
    if context.ndim != 5:
        raise ValueError(f"context: shape {tuple(context.shape)}; expected (B, T, C, H, W)")
    if n_steps < 1:
        raise ValueError(f"n_steps={n_steps}: expected >= 1")
    if truth is not None and (truth.shape[1] < n_steps or truth.shape[2:] != context.shape[2:]):
        raise ValueError(
            f"truth: shape {tuple(truth.shape)}; expected (B, >= {n_steps}, "
            f"{', '.join(map(str, context.shape[2:]))})"
        )
    window = context
    preds, errors = [], []
    for k in range(n_steps):
        nxt = step_fn(window).to(context.dtype)  # (B, C, H, W)
        preds.append(nxt)
        if truth is not None:
            errors.append(nmse_per_field(nxt, truth[:, k].to(nxt.device)).sqrt().mean())
        window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)
        if callback is not None:
            callback(k + 1)
    err = torch.stack(errors).cpu() if errors else None
    return torch.stack(preds, dim=1), err


def model_step(
    model: torch.nn.Module, field_index: Sequence[int] | torch.Tensor, periodic: bool = False
) -> Predictor:
    """Wrap an AViT as a one-step predictor for :func:`rollout`."""
    return lambda window: model(window, field_index, periodic)


@torch.no_grad()
def cuda_graph_step(
    model: torch.nn.Module,
    field_index: Sequence[int],
    periodic: bool,
    example: torch.Tensor,
    *,
    warmup: int = 3,
) -> Predictor:
    """The one-step predictor of :func:`model_step`, captured once as a CUDA graph.

    At batch 1 a small AViT step is bound by kernel launches, not arithmetic; replaying one
    captured graph launches them all at once. ``example`` (B, T, C, H, W) on a CUDA device
    fixes the shapes: the returned step accepts windows of exactly that shape and dtype and
    returns a fresh tensor each call. Inference only (no autograd).
    """
    if example.device.type != "cuda":
        raise ValueError(f"example is on {example.device}: CUDA graphs need a CUDA tensor")
    if isinstance(field_index, torch.Tensor):
        raise ValueError("field_index: give the slots as a list for a captured step")
    step = model_step(model, list(field_index), periodic)
    static_in = example.detach().clone()
    side = torch.cuda.Stream(example.device)
    side.wait_stream(torch.cuda.current_stream(example.device))
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for _ in range(warmup):
            step(static_in)
    torch.cuda.current_stream(example.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = step(static_in)

    def replay(window: torch.Tensor) -> torch.Tensor:
        if window.shape != static_in.shape or window.dtype != static_in.dtype:
            raise ValueError(
                f"window: {tuple(window.shape)} {window.dtype}; this captured step takes "
                f"{tuple(static_in.shape)} {static_in.dtype}"
            )
        static_in.copy_(window)
        graph.replay()
        return static_out.clone()

    return replay


def persistence_step(window: torch.Tensor) -> torch.Tensor:
    """Baseline: the next frame equals the last one."""
    return window[:, -1]
