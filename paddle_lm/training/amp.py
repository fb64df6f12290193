"""Mixed precision (`--amp`): Paddle's O1 autocast (float32 weights and optimizer state; matmuls and
convolutions in bf16 / fp16) and, for fp16, a dynamic loss scaler.

Whether autocast does anything is probed, not assumed: a matmul under `paddle.amp.auto_cast` on the run's device
must come back in the low precision. Paddle 3.3.1's CPU build returns float32 there (and has no CPU bf16 matmul
kernel), so on a CPU the run says that `--amp` is a no-op and trains in float32.

The loss scaler is ours rather than `paddle.amp.GradScaler` for two reasons: the row-wise softmax's gradients
live outside the Paddle optimizer that GradScaler unscales, and GradScaler switches itself off on a CPU, where
the tests run. Its scheme is GradScaler's: the loss is multiplied by the scale before backward; a step whose
gradients overflow is skipped and the scale halved; after `GROWTH_INTERVAL` finite steps in a row it doubles.
"""

from __future__ import annotations

import warnings

import paddle

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
INIT_SCALE = 2.0**15
GROWTH_INTERVAL = 1000
MIN_SCALE = 1.0  # below this the gradients overflow at any scale: the run has diverged


def autocast_works(dtype: str) -> bool:
    """Whether `paddle.amp.auto_cast(dtype=dtype)` runs a matmul in `dtype` on the current device."""
    a = paddle.ones([8, 8])
    try:
        with warnings.catch_warnings():  # Paddle's "amp_guard ... makes no effect": the caller says it in one line
            warnings.simplefilter("ignore")
            with paddle.amp.auto_cast(dtype=dtype, level="O1"):
                out = paddle.matmul(a, a)
    except (RuntimeError, ValueError, NotImplementedError):
        return False
    return out.dtype == getattr(paddle, dtype)


def resolve_amp(mode: str, device: str) -> tuple[str | None, str]:
    """(autocast dtype or None, a note for the start-up line or "") for `--amp mode` on `device`."""
    if mode == "off":
        return None, ""
    dtype = DTYPES[mode]
    if not autocast_works(dtype):
        return None, (f"--amp {mode} is a no-op on {device}: Paddle's autocast runs {dtype} matmuls only on a GPU "
                      f"(checked at start-up), so this run trains in float32")
    return dtype, ""


class LossScaler:
    """Dynamic loss scaling for fp16 (see the module docstring). State: the scale, the finite-step streak and
    the number of steps skipped so far."""

    def __init__(self, scale: float | None = None):
        self.scale, self.streak, self.skipped = float(scale or INIT_SCALE), 0, 0

    def update(self, finite: bool) -> bool:
        """After a step's gradients were checked: whether to apply it. Halves the scale on overflow, doubles it
        after GROWTH_INTERVAL finite steps."""
        if not finite:
            self.scale, self.streak, self.skipped = self.scale / 2.0, 0, self.skipped + 1
            return False
        self.streak += 1
        if self.streak == GROWTH_INTERVAL:
            self.scale, self.streak = self.scale * 2.0, 0
        return True

    def state_dict(self) -> dict:
        return {"scale": self.scale, "streak": self.streak, "skipped": self.skipped}

    def set_state_dict(self, state: dict) -> None:
        self.scale, self.streak, self.skipped = float(state["scale"]), int(state["streak"]), int(state["skipped"])
