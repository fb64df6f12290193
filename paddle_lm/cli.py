"""Entry-point helpers shared by the scripts: quiet start-up and one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
import warnings


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error as the project's other errors are: one ``error:`` line (exit 2) and one line
    saying where the usage is, instead of the whole usage block (42 lines for run_pretrain.py). Subcommand
    parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\nsee `{self.prog} --help`\n")


def gpu_build() -> bool:
    """Is the installed Paddle the CUDA build (``paddlepaddle-gpu``)? Read from package metadata, no import."""
    from importlib import metadata

    try:
        metadata.distribution("paddlepaddle-gpu")
    except metadata.PackageNotFoundError:
        return False
    return True


#: glibc malloc: serve blocks up to this size from the heap, and never give freed heap memory back (see
#: `tune_malloc`).
MMAP_THRESHOLD = 2**30


def tune_malloc() -> bool:
    """Keep freed host memory for reuse instead of returning it to the OS; True where glibc took the setting.

    By default glibc maps every block over 32 MiB afresh and unmaps it on free, so each large tensor Paddle
    allocates on the CPU (a [1120, 10000] float32 logits array is 45 MB) is page-faulted in again at every use:
    measured on this project's 2-vCPU box, an out-of-place add of two such arrays took 21.5 ms and a
    `paddle.zeros` 24.6 ms, against 4.5 and 1.8 ms with this setting. The cost is that the process keeps its
    peak heap (the resident set does not shrink after a peak). `PADDLE_LM_MALLOC_TUNING=0` leaves glibc alone.
    """
    if os.environ.get("PADDLE_LM_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(libc.mallopt(m_trim_threshold,
                                                                                           2**31 - 1))
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False


def quiet_startup() -> None:
    """Before Paddle loads: MKL's fast path on AMD CPUs, glibc malloc tuned for large tensors (`tune_malloc`);
    with the CPU build, silence Paddle's and third-party import-time chatter (with the CUDA build, Paddle's
    CUDA / NCCL warnings stay visible)."""
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    tune_malloc()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if not gpu_build():
        os.environ.setdefault("GLOG_minloglevel", "2")
        warnings.filterwarnings("ignore", category=UserWarning)


def _on_cpu() -> bool:
    paddle = sys.modules.get("paddle")
    return paddle is None or not str(paddle.get_device()).startswith("gpu")


def run_main(fn, interrupted: str = "interrupted; nothing was saved") -> None:
    """Run `fn()`; a UserError becomes one line on stderr (`error: ...`) and its exit status (2 for bad input).
    SIGTERM and SIGINT before a training loop takes them over print `interrupted` (or what the trainer set
    since: `training.signals.guard_startup`) and exit 128 + the signal number."""
    from paddle_lm.errors import StartupInterrupted, UserError
    from paddle_lm.training.signals import startup_guard  # no Paddle import

    code = 0
    try:
        with startup_guard(interrupted):
            fn()
    except UserError as e:
        print(f"{e.prefix}{e}", file=sys.stderr, flush=True)
        code = e.exit_code
    except StartupInterrupted as e:
        print(e, file=sys.stderr, flush=True)
        code = e.exit_code
    except KeyboardInterrupt:  # Ctrl-C after a command replaced the guard
        print(interrupted, file=sys.stderr, flush=True)
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
