"""Distributed data parallel training on PyTorch's own engine: ``torchrun`` + DDP.

``torchrun --standalone --nproc_per_node=2 -m deepnotes train ...`` starts two processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; the train command
calls :func:`init_from_env` and the :class:`~deepnotes.train.Trainer` then does the rest (see its
module docstring). Backends: ``gloo`` (CPU), ``nccl`` (one GPU per process), ``auto`` picks nccl
when CUDA is available.

Two details that make the distributed run equal to a single-process run with the same global
batch: rank ``r`` of ``W`` takes positions ``r, r + W, …`` of the epoch's permutation, so its
``k``-th mini-batch of ``B / W`` samples and the other ranks' together are exactly positions
``[kB, (k + 1)B)`` — the single process's ``k``-th batch — and DDP averages the ranks' gradients,
which averages the mean losses of equal-sized shards. (``DistributedSampler`` pads the last round
by repeating samples when ``N`` is not divisible by ``W``; training tolerates that, evaluation here
does not use it.)
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from deepnotes.core.checks import check_choice, check_int
from deepnotes.core.seeding import make_generator, worker_init_fn

BACKENDS = ("auto", "gloo", "nccl")


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (or anything else that sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment torchrun sets."""
    try:
        rank = int(os.environ["RANK"])
        world = int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers set by torchrun: {exc}") from exc
    check_int("WORLD_SIZE", world, min=1)
    check_int("RANK", rank, min=0, max=world - 1)
    return rank, world, local


def resolve_backend(backend: str) -> str:
    """Validate ``backend`` (``auto``, ``gloo``, ``nccl``) and resolve ``auto``."""
    backend = check_choice("backend", backend, BACKENDS)
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA GPUs; use 'gloo' on CPU")
    return backend


def check_world_size(world_size: int, n_samples: int) -> None:
    """Every rank must get at least one training sample."""
    if world_size > n_samples:
        raise ValueError(f"world size {world_size} is larger than the training set ({n_samples} samples)")


def init_from_env(backend: str = "auto", timeout_s: float = 300.0) -> tuple[int, int, torch.device]:
    """Join the process group torchrun prepared; returns ``(rank, world_size, device)``.

    With nccl each process uses GPU ``LOCAL_RANK``; with gloo the CPU.
    """
    backend = resolve_backend(backend)
    rank, world, local = env_world()
    device = torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))
    return rank, world, device


def cleanup() -> None:
    """Leave the process group; every rank waits for the others first (a rank tearing gloo down
    while another still uses it aborts the process)."""
    if is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_and_world(distributed: bool | None) -> tuple[int, int]:
    if distributed is False:
        return 0, 1
    if is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if distributed:
        raise ValueError("distributed=True needs an initialized process group (run under torchrun)")
    return 0, 1


def distributed_loader(
    data: Dataset, global_batch: int, rank: int, world_size: int, *, seed: int = 0, num_workers: int = 0,
    collate_fn=None,
) -> DataLoader:
    """A loader of ``global_batch / world_size`` samples per step from this rank's shard."""
    check_world_size(world_size, len(data))
    if global_batch % world_size:
        raise ValueError(f"batch_size (the global batch) {global_batch} must be divisible by the world size {world_size}")
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False)
    return DataLoader(
        data,
        batch_size=global_batch // world_size,
        sampler=sampler,
        generator=make_generator(seed),  # unused for the order, kept so checkpoints look the same
        num_workers=num_workers,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
        collate_fn=collate_fn,
    )


def wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(data: Dataset, rank: int, world_size: int) -> Dataset:
    """Samples ``rank, rank + W, …`` of ``data``: the shards partition it, with no padding."""
    return Subset(data, range(rank, len(data), world_size))


def all_reduce_sums(values: list[float], device: torch.device) -> list[float]:
    """Sum each number over the ranks (float64, so counts below 2**53 stay exact)."""
    # nccl reduces only GPU tensors; gloo CPU ones
    on = device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=on)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_reduce_mean(t: torch.Tensor) -> float:
    on = t.device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = t.detach().to(on, torch.float64).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.item() / dist.get_world_size()


def all_gather_object(obj):
    """Every rank's picklable ``obj``, in rank order."""
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics), in place."""
    on_gpu = dist.get_backend() == "nccl"
    for buf in module.buffers():
        if on_gpu or buf.device.type == "cpu":
            dist.broadcast(buf, src=0)
        else:
            tmp = buf.detach().cpu()
            dist.broadcast(tmp, src=0)
            buf.copy_(tmp)


def barrier() -> None:
    dist.barrier()
