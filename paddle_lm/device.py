"""Device set-up and host-to-device conversion, shared by training, evaluation and the embedder."""

from __future__ import annotations

import numpy as np
import paddle

from paddle_lm.errors import UserError


def resolve_device(device: str) -> str:
    """``auto`` -> ``gpu`` when this Paddle is built with CUDA and sees a GPU, else ``cpu``; others unchanged."""
    if device != "auto":
        return device
    return "gpu" if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else "cpu"


def set_device(device: str) -> str:
    """``paddle.set_device(device)`` (``auto`` resolved) with one-line errors for an unknown device or a CPU-only
    build; returns the device used."""
    device = resolve_device(device)
    if device.startswith("gpu") and not paddle.is_compiled_with_cuda():
        raise UserError(f"device {device!r}: this Paddle build has no CUDA; install paddlepaddle-gpu (see README) "
                        f"or use cpu")
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"device {device!r} is not usable here ({e}); use 'cpu' or 'gpu'") from None
    return device


def to_tensors(batch: dict[str, np.ndarray]) -> dict[str, paddle.Tensor]:
    return {k: paddle.to_tensor(v) for k, v in batch.items()}
