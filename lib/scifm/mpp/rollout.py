"""Autoregressive rollout: feed predictions back as input for any number of steps.

The MPP paper evaluates next-step and short (5-step) rollouts and names long rollouts an
open question; this module measures both by sliding the T-frame window forward.
"""

from __future__ import annotations

import warnings
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
    returns a fresh tensor each call. Inference only (no autograd), in fp32 as captured (to
    capture under ``torch.autocast``, its weight cache must be off: ``cache_enabled=False``).

    The graph replays the device addresses it saw: the model must not change after capture
    (``.half()``, ``.to()`` and ``add_fields`` replace its tensors; ``load_state_dict`` copies
    into them, which the graph then uses). The step checks at every call and refuses to replay
    a model whose tensors were replaced; capture a new one.
    """
    if example.device.type != "cuda":
        raise ValueError(f"example is on {example.device}: CUDA graphs need a CUDA tensor")
    if isinstance(field_index, torch.Tensor):
        raise ValueError("field_index: give the slots as a list for a captured step")
    if warmup < 1:  # the first call checks the field slots on the host: not capturable
        raise ValueError(f"warmup={warmup}: at least one eager step must precede the capture")
    slots = list(field_index)
    step = model_step(model, slots, periodic)
    with torch.cuda.device(example.device):
        static_in = example.detach().clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(warmup):
                step(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = step(static_in)
    # what the graph reads, held here so that no cache eviction frees it under the graph: the
    # model's own tensors (checked at every call) and the field-slot tensor the model caches
    held = [*model.parameters(), *model.buffers()]
    pointers = [t.data_ptr() for t in held]
    field_slots = getattr(model, "field_slots", None)
    held_slots = field_slots(slots, example.shape[2], example.device) if field_slots else None

    def replay(window: torch.Tensor) -> torch.Tensor:
        if window.shape != static_in.shape or window.dtype != static_in.dtype:
            raise ValueError(
                f"window: {tuple(window.shape)} {window.dtype}; this captured step takes "
                f"{tuple(static_in.shape)} {static_in.dtype}"
            )
        now = [*model.parameters(), *model.buffers()]
        if len(now) != len(pointers) or any(t.data_ptr() != p for t, p in zip(now, pointers)):
            raise RuntimeError(
                "the model's tensors changed after the CUDA graph was captured (.half(), "
                ".to(), add_fields, new weights): capture a new step with cuda_graph_step"
            )
        static_in.copy_(window)
        graph.replay()
        return static_out.clone()

    replay.holds = (held, held_slots, static_in, static_out, graph)  # alive as long as the step
    return replay


def fast_model_step(
    model: torch.nn.Module,
    field_index: Sequence[int] | torch.Tensor,
    periodic: bool,
    example: torch.Tensor,
) -> Predictor:
    """The fastest one-step predictor for windows shaped like ``example`` (B, T, C, H, W).

    On a CUDA device the step is captured once as a CUDA graph (:func:`cuda_graph_step`: a
    small AViT step is bound by kernel launches there, 6-11x faster at batch 1 on an H200,
    ``benchmarks/results/gpu.md``); anywhere else, or if the capture fails (a warning says
    why), the eager :func:`model_step`. Both give the same frames.
    """
    if example.device.type == "cuda":
        slots = field_index.tolist() if isinstance(field_index, torch.Tensor) else field_index
        try:
            return cuda_graph_step(model, [int(i) for i in slots], periodic, example)
        except (RuntimeError, ValueError) as e:  # eager is always right, only slower
            warnings.warn(f"CUDA graph capture failed ({e}); stepping eagerly", stacklevel=2)
    return model_step(model, field_index, periodic)


def persistence_step(window: torch.Tensor) -> torch.Tensor:
    """Baseline: the next frame equals the last one."""
    return window[:, -1]
