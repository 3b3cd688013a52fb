"""Distributed data parallel set-up: torchrun sets the environment, nothing else changes.

``python train.py`` runs in one process; ``torchrun --nproc_per_node N train.py`` runs
N ranks that each take a shard of the same global batch, with gloo on CPU and
nccl on CUDA.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int  # this process's global rank
    world_size: int  # number of processes taking part
    local_rank: int  # rank on this host (selects the CUDA device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (no-op when not launched by torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
        # A group left open at interpreter exit can abort a rank from gloo's C++
        # threads ("terminate called without an active exception", exit -6) after
        # its work is done; close the group this function opened before that.
        atexit.register(close_distributed)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def close_distributed() -> None:
    """Destroy the default process group if one is open (idempotent)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for_rank(device: torch.device, info: DistInfo) -> torch.device:
    """On CUDA each rank drives its own GPU; elsewhere the device is shared."""
    if device.type == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return device


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
