"""Explicit, minimal distribution: world size from the launcher's env, gloo/NCCL init only when > 1."""

from __future__ import annotations

import os

import numpy as np


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) as set by `paddle.distributed.launch` (0, 1 when run directly)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0")), int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def init(world_size: int) -> None:
    if world_size > 1:
        import paddle.distributed as dist

        dist.init_parallel_env()


def all_reduce_sum(values: list[float], world_size: int) -> list[float]:
    """Sum a few floats over ranks (a no-op on one rank)."""
    if world_size == 1:
        return values
    import paddle
    import paddle.distributed as dist

    t = paddle.to_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(t)
    return [float(v) for v in t.numpy()]


def gather_rows(arrays: list[np.ndarray], world_size: int) -> list[np.ndarray]:
    """Concatenate each batch-first array over ranks, in rank order (identity on one rank)."""
    if world_size == 1:
        return arrays
    import paddle
    import paddle.distributed as dist

    out = []
    for a in arrays:
        parts: list = []
        dist.all_gather(parts, paddle.to_tensor(a))
        out.append(np.concatenate([p.numpy() for p in parts], axis=0))
    return out


def barrier(world_size: int) -> None:
    if world_size > 1:
        import paddle.distributed as dist

        dist.barrier()


def broadcast_text(text: str, world_size: int, size: int = 4096) -> str:
    """Rank 0's `text` on every rank (UTF-8, at most `size` bytes; identity on one rank)."""
    if world_size == 1:
        return text
    import paddle
    import paddle.distributed as dist

    raw = text.encode()[: size - 1]
    buf = np.zeros(size, dtype=np.uint8)
    buf[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    t = paddle.to_tensor(buf)
    dist.broadcast(t, src=0)
    return bytes(t.numpy()).rstrip(b"\0").decode(errors="replace")


def all_gather_ragged(tensors: list, world_size: int) -> list[list]:
    """Every rank's `tensors` (same dtypes on every rank, lengths along axis 0 that may differ), as one list
    per rank in rank order: ``out[r][i]`` is rank r's ``tensors[i]``. One size exchange, then one all-gather
    per tensor of the rows padded to the longest."""
    if world_size == 1:
        return [tensors]
    import paddle
    import paddle.distributed as dist

    sizes: list = []
    dist.all_gather(sizes, paddle.to_tensor([tensors[0].shape[0]], dtype="int64"))
    sizes = [int(s) for s in sizes]  # a small host read: the shapes below depend on it
    longest = max(sizes)
    out: list[list] = [[] for _ in range(world_size)]
    for t in tensors:
        pad = longest - t.shape[0]
        if pad:
            t = paddle.concat([t, paddle.zeros([pad, *t.shape[1:]], dtype=t.dtype)], axis=0)
        parts: list = []
        dist.all_gather(parts, t)
        for r, part in enumerate(parts):
            out[r].append(part[: sizes[r]])
    return out
