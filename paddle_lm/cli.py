"""Entry-point helpers shared by the scripts: quiet start-up and one-line errors."""

from __future__ import annotations

import os
import sys
import warnings


def gpu_build() -> bool:
    """Is the installed Paddle the CUDA build (``paddlepaddle-gpu``)? Read from package metadata, no import."""
    from importlib import metadata

    try:
        metadata.distribution("paddlepaddle-gpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def quiet_startup() -> None:
    """Before Paddle loads: MKL's fast path on AMD CPUs; with the CPU build, silence Paddle's and third-party
    import-time chatter (with the CUDA build, Paddle's CUDA / NCCL warnings stay visible)."""
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if not gpu_build():
        os.environ.setdefault("GLOG_minloglevel", "2")
        warnings.filterwarnings("ignore", category=UserWarning)


def _on_cpu() -> bool:
    paddle = sys.modules.get("paddle")
    return paddle is None or not str(paddle.get_device()).startswith("gpu")


def run_main(fn) -> None:
    """Run `fn()`; a UserError becomes one line on stderr (`error: ...`) and its exit status (2 for bad input)."""
    from paddle_lm.errors import UserError

    code = 0
    try:
        fn()
    except UserError as e:
        print(f"{e.prefix}{e}", file=sys.stderr, flush=True)
        code = e.exit_code
    except KeyboardInterrupt:  # Ctrl-C before training started (the loop itself turns it into a save)
        print("interrupted; nothing was saved", file=sys.stderr, flush=True)
        code = 130
    if int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1 and _on_cpu():
        # A launched CPU rank whose work is done (checkpoints written, final barrier passed) leaves without
        # interpreter teardown: under load, Paddle 3.3.1's CPU/gloo teardown at exit occasionally aborts
        # (SIGABRT, nothing printed) after a successful run, which the launcher reports as a failure.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        sys.exit(code)
