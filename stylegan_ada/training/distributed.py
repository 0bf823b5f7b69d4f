"""Several processes, one per GPU (or CPU processes with gloo, for tests): rank, all-reduce, broadcast.

Gradients are all-reduced once per phase as one flat tensor and averaged, as the reference's later release
(StyleGAN3) does; every rank then applies the same Adam step, so the weights stay identical on all ranks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def init_process_group(backend: str, *, rank: int | None = None, world_size: int | None = None,
                       init_method: str | None = None) -> DistContext:
    """Join the process group (from torchrun's environment when rank/world_size are None)."""
    if rank is None:
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        init_method = init_method or "env://"
    else:
        local_rank = rank
    if world_size is None or world_size < 1:
        raise ValueError("world_size must be >= 1")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of ``t`` over all processes (a new tensor; ``t`` itself when single-process)."""
    if not ctx.enabled:
        return t
    out = t.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def average_gradients(params: Sequence[torch.nn.Parameter], ctx: DistContext) -> None:
    """Average ``.grad`` over processes (one flat all-reduce), then replace NaN/inf as the reference does."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if ctx.enabled:
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= ctx.world_size
        torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
    else:
        for g in grads:
            torch.nan_to_num(g, nan=0, posinf=1e5, neginf=-1e5, out=g)


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; only for small, trusted, in-process objects)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank if ``flag`` is true on at least one (used for stop requests)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device(ctx))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _collective_device(ctx: DistContext) -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", ctx.local_rank)
    return torch.device("cpu")


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
