"""Device set-up and host-to-device conversion, shared by training, evaluation and the embedder."""

from __future__ import annotations

import numpy as np
import paddle

from paddle_lm.errors import UserError


def set_device(device: str) -> None:
    """``paddle.set_device(device)`` with one-line errors for an unknown device or a CPU-only build."""
    if device.startswith("gpu") and not paddle.is_compiled_with_cuda():
        raise UserError(f"device {device!r}: this Paddle build has no CUDA; install paddlepaddle-gpu (see README) "
                        f"or use cpu")
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"device {device!r} is not usable here ({e}); use 'cpu' or 'gpu'") from None


def to_tensors(batch: dict[str, np.ndarray]) -> dict[str, paddle.Tensor]:
    return {k: paddle.to_tensor(v) for k, v in batch.items()}
